"""What every command group shares: the root Typer app, the one way to report a user error, the exit codes, and
the help texts several groups use.

Exit codes (the same for every command):

* 0: done;
* 1: the work itself failed (an evaluation did not finish, the gate failed, the judge's eval failed) or an unexpected
  error (one line; the traceback with ``--debug``);
* 2: unusable input: a bad file, option or configuration, named in one line (`fail`);
* 130: interrupted (Ctrl-C, SIGTERM, SIGHUP).
"""

from __future__ import annotations

from typing import NoReturn

import typer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(
    help="warmeval: rerun the warm-persona reliability study on your own model. Add --debug (or set WARMEVAL_DEBUG=1) "
    "to see the traceback of an error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

INPUTS_HELP = (
    "Inspect log folders/files, authors'-release folders (<model>/<variant>/<dataset>_*_outputs.csv) or tables."
)
RULE_HELP = (
    "Refusal rule: paper (the released regex, quirks included) or improved. Default: the rule the logs were scored "
    "with (paper for inputs that record none); another rule than the logs' is an error."
)
PAPER_RESULTS_HELP = ("A folder holding the paper's released result tables under their own names (results_*.csv, "
                      "general_benchmark_results.csv, sociot_ft.csv). Default: the copy `warmeval stimuli results` "
                      "fetched, if any.")  # fmt: skip


def fail(error: Exception | str, code: int = EXIT_USAGE) -> NoReturn:
    """Report a user error on one line (``error: ...``, on stderr) and exit with ``code`` (2: unusable input)."""
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code)
