"""The ``warmeval`` command: one module per command group, as inspect_ai's ``_cli/``.

Map: `warmeval.cli._common` (the root app, `fail`, the exit codes), `options` (config dataclasses as options),
`demo`, `serve`, `run` (init, run, tasks), `training` (data, train), `sociot`, `stimuli`, `models`, `analysis`
(analyse, report, compare, gate), `judges` (also as `grader`, its earlier name).
"""

from __future__ import annotations

# Importing a group module registers its commands on the root app.
from warmeval.cli import analysis, demo, judges, models, run, serve, sociot, stimuli, training  # noqa: F401
from warmeval.cli._common import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """The ``warmeval`` command: errors end in one line (exit 1), the traceback only with ``--debug``.

    Args:
        argv: The arguments (default: the process's); the tests run the command in process this way.
    """
    import os
    import sys

    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("WARMEVAL_DEBUG", "") not in ("", "0")
    try:
        app(args=[arg for arg in args if arg != "--debug"], prog_name="warmeval")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # SystemExit (typer's own exits) passes through
        if debug:
            raise
        message = str(error).strip().split("\n")[0] or "(no message)"
        print(f"error: {type(error).__name__}: {message}\n(rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
