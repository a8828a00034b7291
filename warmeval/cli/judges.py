"""``warmeval judges``: the judges (`warmeval.scorers.judges`) checked against the authors' grades (agreement).

`warmeval.agreement` does the work. ``warmeval grader ...`` is the same group under its earlier name (hidden, kept so
scripts keep working).
"""

from __future__ import annotations

from pathlib import Path

import typer

from warmeval.cli._common import EXIT_FAILED, RULE_HELP, app, fail

judges_app = typer.Typer(help="Judges (scorers/judges/): check the grader role against the paper authors' own grades.",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(judges_app, name="judges")
app.add_typer(judges_app, name="grader", hidden=True)  # the earlier name


@judges_app.command("agreement")
def grader_agreement_command(
    release: Path = typer.Option(..., help="Authors'-release folder (<model>/<variant>/<dataset>_*_outputs.csv)."),
    model_role: list[str] = typer.Option([], "--model-role", help="ROLE=MODEL (repeatable); grader=... is required."),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON instead of the table."),
    out: Path = typer.Option(
        Path("warmeval-agreement"), help="Output folder (disagreements.csv, agreement.json, logs/)."
    ),
    disagreements: Path | None = typer.Option(
        None, help="CSV of the disagreeing rows (default: OUT/disagreements.csv)."
    ),
    log_dir: Path | None = typer.Option(None, help="Inspect log folder (default: OUT/logs)."),
    max_connections: int | None = typer.Option(None, help="Concurrent judge requests (default: Inspect's)."),
) -> None:
    """Re-grade every released response with the grader role; report agreement and Cohen's kappa per dataset.

    Exit 0 when done, 2 on unusable input (the error names the file), 1 when the grading eval itself fails.
    """
    from warmeval.agreement import AgreementError, grader_agreement
    from warmeval.analysis.load import AnalysisInputError

    roles: dict[str, str] = {}
    for item in model_role:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            fail(ValueError(f"--model-role {item!r}: expected ROLE=MODEL, e.g. grader=warmeval-scripted/match"))
        roles[name.strip()] = spec.strip()
    try:
        result = grader_agreement(
            release, model_roles=roles, refusal_rule=refusal_rule or "paper", log_dir=log_dir or out / "logs",
            disagreements_path=disagreements or out / "disagreements.csv", max_connections=max_connections,
            display="none" if json_output else None,  # keep stdout machine-readable with --json
        )  # fmt: skip
    except AnalysisInputError as error:
        fail(error)
    except AgreementError as error:
        fail(error, EXIT_FAILED)
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement.json").write_text(result.to_json())
    # Inspect's display may leave the cursor mid-line: start the table on a fresh one.
    typer.echo(result.to_json() if json_output else "\n" + result.table())
