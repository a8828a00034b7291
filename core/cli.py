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


sociot_app = typer.Typer(
    help="SocioT warmth (GPT-2 likelihood under warm vs cold speaker contexts).", no_args_is_help=True
)
app.add_typer(sociot_app, name="sociot")

MODEL_HELP = "GPT-2 HF id or local folder (default: $WARMEVAL_SOCIOT_MODEL, else openai-community/gpt2)."


@sociot_app.command("score")
def sociot_score(
    files: list[Path] = typer.Argument(..., help="JSONL/CSV files, Inspect .eval logs or lm-eval samples_*.jsonl."),
    column: str = typer.Option("text", help="Column (CSV) or field (JSONL) holding the text."),
    out: Path = typer.Option(Path("sociot_scores.csv"), help="Where to write per-text scores (CSV)."),
    model: str | None = typer.Option(None, help=MODEL_HELP),
    mode: str = typer.Option("code", help="code (the authors' implementation) or paper."),
    dimension: str = typer.Option("warmth", help="warmth, humt, status, social_distance or gender."),
    batch_size: int | None = typer.Option(None, help="Sequences per forward pass (default: a token budget)."),
    device: str | None = typer.Option(None, help="Torch device (default: cuda if available, else cpu)."),
) -> None:
    """Score texts; write per-text scores and print the mean, standard error and bootstrap CI."""
    from warmeval.scorers.sociot import summarize
    from warmeval.scorers.sociot_io import TextInputError, read_texts, score_items, write_scores

    try:
        items = [item for file in files for item in read_texts(file, column)]
    except TextInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    scores = score_items(
        items,
        model=model,
        mode=mode,
        dimension=dimension,
        batch_size=batch_size,
        device=device,  # type: ignore[arg-type]
    )
    write_scores(out, items, scores)
    s = summarize(scores)
    typer.echo(f"SocioT {dimension} ({mode} mode): n={s.n} mean={s.mean:.6f} se={s.se:.6f} "
               f"95% bootstrap CI=[{s.ci_low:.6f}, {s.ci_high:.6f}]")  # fmt: skip
    typer.echo(f"per-text scores: {out}")


@sociot_app.command("trajectory")
def sociot_trajectory(
    checkpoints: list[str] = typer.Argument(..., help="EPOCH=FILE per checkpoint (LABEL@EPOCH=FILE also works)."),
    out: Path = typer.Option(Path("sociot_trajectory"), help="Output folder for the table and the PNG."),
    column: str = typer.Option("text", help="Column (CSV) or field (JSONL) holding the text."),
    model: str | None = typer.Option(None, help=MODEL_HELP),
    mode: str = typer.Option("code", help="code (the authors' implementation) or paper."),
    batch_size: int | None = typer.Option(None, help="Sequences per forward pass."),
    device: str | None = typer.Option(None, help="Torch device."),
) -> None:
    """Warmth of each checkpoint's generations: warmth_trajectory.csv and a PNG with error bars."""
    from warmeval.scorers.sociot_io import TextInputError, trajectory

    try:
        points = trajectory(checkpoints, out, column=column, model=model, mode=mode, batch_size=batch_size,  # type: ignore[arg-type]
                            device=device)  # fmt: skip
    except TextInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    for p in points:
        typer.echo(f"epoch {p.epoch:g} ({p.label}): n={p.summary.n} mean={p.summary.mean:.6f} se={p.summary.se:.6f}")
    typer.echo(f"table: {out / 'warmth_trajectory.csv'}  figure: {out / 'warmth_trajectory.png'}")


@sociot_app.command("lm-eval-path")
def sociot_lm_eval_path() -> None:
    """Print the folder of warmeval's lm-eval tasks, for `lm_eval --include_path`."""
    from warmeval.scorers.lm_eval_tasks import TASKS_DIR

    typer.echo(str(TASKS_DIR))


if __name__ == "__main__":
    app()
