"""``warmeval init``, ``run`` and ``tasks``: the experiment file and its run (`warmeval.experiment`), and the Inspect
tasks warmeval registers (`warmeval.tasks`)."""

from __future__ import annotations

from pathlib import Path

import typer

from warmeval.cli._common import EXIT_FAILED, EXIT_INTERRUPTED, app, fail


@app.command("init")
def init(
    path: Path = typer.Argument(Path("experiment.yaml"), help="Where to write the example experiment."),
    base_model: str | None = typer.Option(
        None,
        "--base-model",
        help="Base model to write: an HF id or folder, or 'smollm2' (the embedded model, "
        "prepared now). Default: the paper's Llama-3.1-8B-Instruct.",
    ),
) -> None:
    """Write a commented example experiment reproducing the paper's design."""
    from warmeval.experiment import EXAMPLE, PAPER_BASE_MODEL
    from warmeval.models import EMBEDDED, ModelPrepareError, prepare_model

    if path.exists():
        fail(FileExistsError(f"{path} exists; not overwriting it"))
    text = EXAMPLE
    if base_model in EMBEDDED:
        try:
            folder = prepare_model(base_model)
        except ModelPrepareError as error:
            fail(error)
        note = f"  # embedded {EMBEDDED[base_model].description}"
        text = text.replace(f"base_model: {PAPER_BASE_MODEL}", f"base_model: {folder}{note}", 1)
    elif base_model:
        text = text.replace(f"base_model: {PAPER_BASE_MODEL}", f"base_model: {base_model}", 1)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}: edit the adapters and judges, then `warmeval run {path}`")


@app.command("run")
def run(
    experiment: Path = typer.Argument(..., help="Experiment YAML (see `warmeval init`)."),
    plan: bool = typer.Option(False, "--plan", help="Print what the run will ask of the models and the judge "
                              "(samples, generations, judge calls, tokens, the judge's cost) and stop: no server, "
                              "no key, no network."),
    json_output: bool = typer.Option(False, "--json", help="With --plan: print the plan as JSON."),
) -> None:
    """Serve every variant from one vLLM server, run variants x tasks (resumable), then write the report."""
    from warmeval.experiment import ExperimentError, load_experiment, run_experiment
    from warmeval.serve import ServeError
    from warmeval.util.lock import OutputBusy

    if plan:
        from warmeval.experiment.plan import plan_experiment, plan_json

        try:
            counted = plan_experiment(load_experiment(experiment))
        except ExperimentError as error:
            fail(error)
        typer.echo(plan_json(counted) if json_output else counted.table())
        return
    try:
        result = run_experiment(load_experiment(experiment))
    except (ExperimentError, ServeError, OutputBusy) as error:
        fail(error)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM or SIGHUP: the server has been stopped
        typer.echo(f"interrupted ({interrupt or 'Ctrl-C'}); the server was stopped. Rerun the same command to resume: "
                   "finished evaluations are kept.", err=True)  # fmt: skip
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if not result.success:
        typer.echo("some evaluations did not finish; rerun the same command to resume:", err=True)
        for line in result.failed:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(EXIT_FAILED)
    typer.echo(f"report: {result.report}")
    for line in result.beside:
        typer.echo(line)
    typer.echo(result.verdict or "")


@app.command("tasks")
def list_tasks() -> None:
    """List the Inspect tasks warmeval registers, with their -T arguments."""
    import inspect

    from warmeval.tasks.catalog import ALL_TASKS

    for name, factory in ALL_TASKS.items():
        params = ", ".join(f"{p.name}={p.default!r}" for p in inspect.signature(factory).parameters.values())
        typer.echo(f"warmeval/{name}  -T {params}")
