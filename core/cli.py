"""The ``warmeval`` command."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="warmeval: rerun the warm-persona reliability study on your own model.", no_args_is_help=True)


@app.command()
def demo(
    out: Path = typer.Option(Path("warmeval-demo"), help="Folder for the tiny model and the Inspect logs."),
    max_tokens: int = typer.Option(24, help="Tokens generated per answer by the tiny model."),
    n: int | None = typer.Option(None, help="Questions per task (default: all fixture questions)."),
) -> None:
    """Run the four tasks offline on a tiny random model with a scripted judge (the numbers mean nothing)."""
    from warmeval.demo import DISCLAIMER, format_results, run_demo

    results = run_demo(out, max_tokens=max_tokens, n=n)
    typer.echo("")
    typer.echo(format_results(results))
    typer.echo("")
    typer.echo(DISCLAIMER)
    typer.echo(f"Logs: {out.resolve() / 'logs'} (open with `inspect view --log-dir {out / 'logs'}`)")


@app.command("tasks")
def list_tasks() -> None:
    """List the Inspect tasks warmeval registers, with their -T arguments."""
    import inspect

    from warmeval.tasks._registry import TASKS

    for name, factory in TASKS.items():
        params = ", ".join(f"{p.name}={p.default!r}" for p in inspect.signature(factory).parameters.values())
        typer.echo(f"warmeval/{name}  -T {params}")


if __name__ == "__main__":
    app()
