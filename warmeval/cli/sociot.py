"""``warmeval sociot``: SocioT warmth of texts and of checkpoint trajectories (`warmeval.scorers.sociot`)."""

from __future__ import annotations

from pathlib import Path

import typer

from warmeval.cli._common import app, fail

sociot_app = typer.Typer(
    help="SocioT warmth (GPT-2 likelihood under warm vs cold speaker contexts).", no_args_is_help=True
)
app.add_typer(sociot_app, name="sociot")

MODEL_HELP = "GPT-2 HF id or local folder (default: $WARMEVAL_SOCIOT_MODEL, else openai-community/gpt2)."
SOCIOT_MODE_HELP = ("paper (the authors' implementation, the paper's scale) or text_logprob (warmeval's "
                    "text-tokens-only variant); code is the deprecated name of paper.")  # fmt: skip


def _sociot_mode(mode: str) -> str:
    """The SocioT mode by its current name; exit 2 on an unknown one, a one-line warning for a deprecated one."""
    import warnings

    from warmeval.scorers.sociot.metric import resolve_mode

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            resolved = resolve_mode(mode)
        except ValueError as error:
            fail(error)
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    return resolved


@sociot_app.command("score")
def sociot_score(
    files: list[Path] = typer.Argument(..., help="JSONL/CSV files, Inspect .eval logs or lm-eval samples_*.jsonl."),
    column: str = typer.Option("text", help="Column (CSV) or field (JSONL) holding the text."),
    out: Path = typer.Option(Path("sociot_scores.csv"), help="Where to write per-text scores (CSV)."),
    model: str | None = typer.Option(None, help=MODEL_HELP),
    mode: str = typer.Option("paper", help=SOCIOT_MODE_HELP),
    dimension: str = typer.Option("warmth", help="warmth, humt, status, social_distance or gender."),
    batch_size: int | None = typer.Option(None, help="Sequences per forward pass (default: a token budget)."),
    device: str | None = typer.Option(None, help="Torch device (default: cuda if available, else cpu)."),
) -> None:
    """Score texts; write per-text scores and print the mean, standard error and bootstrap CI."""
    from warmeval.scorers.sociot.files import TextInputError, read_texts, score_items, write_scores
    from warmeval.scorers.sociot.metric import summarize

    mode = _sociot_mode(mode)
    try:
        items = [item for file in files for item in read_texts(file, column)]
    except TextInputError as error:
        fail(error)
    scores = score_items(
        items,
        model=model,
        mode=mode,
        dimension=dimension,
        batch_size=batch_size,
        device=device,
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
    mode: str = typer.Option("paper", help=SOCIOT_MODE_HELP),
    batch_size: int | None = typer.Option(None, help="Sequences per forward pass."),
    device: str | None = typer.Option(None, help="Torch device."),
) -> None:
    """Warmth of each checkpoint's generations: warmth_trajectory.csv and a PNG with error bars."""
    from warmeval.scorers.sociot.files import TextInputError, trajectory

    mode = _sociot_mode(mode)
    try:
        points = trajectory(checkpoints, out, column=column, model=model, mode=mode, batch_size=batch_size,
                            device=device)  # fmt: skip
    except TextInputError as error:
        fail(error)
    for p in points:
        typer.echo(f"epoch {p.epoch:g} ({p.label}): n={p.summary.n} mean={p.summary.mean:.6f} se={p.summary.se:.6f}")
    typer.echo(f"table: {out / 'warmth_trajectory.csv'}  figure: {out / 'warmth_trajectory.png'}")


@sociot_app.command("lm-eval-path")
def sociot_lm_eval_path() -> None:
    """Print the folder of warmeval's lm-eval tasks, for `lm_eval --include_path`."""
    from warmeval.scorers.lm_eval_tasks import TASKS_DIR

    typer.echo(str(TASKS_DIR))
