"""``warmeval models``: the embedded real instruct model (`warmeval.models`)."""

from __future__ import annotations

import typer

from warmeval.cli._common import app, fail

models_app = typer.Typer(help="The embedded real instruct model (no model hub needed).", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("prepare")
def models_prepare(
    name: str = typer.Argument("smollm2", help="Embedded model: smollm2 (SmolLM2-135M-Instruct)."),
    force: bool = typer.Option(False, "--force", help="Convert again even when a prepared checkpoint exists."),
) -> None:
    """Convert the embedded GGUF once to a verified safetensors checkpoint in the cache; print its folder."""
    from warmeval.models import EMBEDDED, ModelPrepareError, prepare_model

    try:
        folder = prepare_model(name, force=force)
    except ModelPrepareError as error:
        fail(error)
    typer.echo(f"{folder}  ({EMBEDDED[name].description})")
