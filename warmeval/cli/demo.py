"""``warmeval demo``: the whole study offline on the embedded model (`warmeval.demo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from warmeval.cli._common import PAPER_RESULTS_HELP, app, fail


@app.command()
def demo(
    out: Path = typer.Option(Path("warmeval-demo"), help="Folder for data, adapters, logs and the report."),
    max_tokens: int = typer.Option(64, help="Tokens generated per answer to a task question."),
    n: int = typer.Option(4, help="Questions per task (Disinfo: all six demo claims) and items per control."),
    paper_results: Path | None = typer.Option(None, help=PAPER_RESULTS_HELP),
) -> None:
    """The whole study offline on the embedded SmolLM2: data, rewrites, adapters, one server, tasks, warmth, report."""
    from warmeval.analysis.paper_results import PaperResultsError, locate
    from warmeval.demo import DISCLAIMER, format_results, run_demo

    try:
        locate(paper_results)  # a bad folder stops the demo before anything runs
    except PaperResultsError as error:
        fail(error)
    result = run_demo(out, max_tokens=max_tokens, n=n, paper_results=paper_results)
    typer.echo("")
    typer.echo(
        "Accuracy by task and variant (judge: warmeval-scripted/match, an offline string matcher of gold answers):"
    )
    typer.echo(format_results(result.results))
    typer.echo("")
    typer.echo(result.warmth.format())
    typer.echo("")
    for row in result.experiment.controls:
        value = "n/a" if row.value is None else f"{row.value:.3f}"
        typer.echo(f"control {row.control:<9} {row.variant:<9} {row.metric} {value} (n={row.n})")
    typer.echo("")
    for line in result.experiment.beside:
        typer.echo(line)
    typer.echo("")
    typer.echo(DISCLAIMER)
    typer.echo(result.experiment.verdict or "")
    typer.echo(f"Experiment file: {result.experiment_file}")
    typer.echo(f"Logs: {result.experiment.logs} (open with `inspect view --log-dir {result.experiment.logs}`)")
    typer.echo(f"Report: {result.experiment.report}")
