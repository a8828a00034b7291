"""``warmeval data`` and ``warmeval train``: the training data and the warm and cold adapters (`warmeval.training`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from warmeval.cli._common import EXIT_FAILED, app, fail
from warmeval.cli.options import config_options
from warmeval.training.data import BuildConfig
from warmeval.training.generate import ValidationGenerationConfig
from warmeval.training.rewrite import RewriteConfig

data_app = typer.Typer(help="Training data: build the ShareGPT conversation set, rewrite it warm or cold.",
                       no_args_is_help=True)  # fmt: skip
app.add_typer(data_app, name="data")
train_app = typer.Typer(help="Warm and cold adapters: LoRA training, validation generations, OpenAI fine-tuning.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(train_app, name="train")


@data_app.command("build")
@config_options(BuildConfig)
def data_build(options: BuildConfig) -> None:
    """ShareGPT -> NSFW filter -> query types -> balanced sample -> <=20 turns, plus disjoint validation prompts."""
    from warmeval.training.data import BuildError, build_conversations

    try:
        manifest = build_conversations(options)
    except (BuildError, OSError) as error:
        fail(error)
    counts = manifest.counts
    typer.echo(f"train: {counts['train_conversations']} conversations {counts['train_by_type']}")
    typer.echo(f"validation: {counts['validation_prompts']} prompts; bad records {counts['bad_records']}; "
               f"NSFW dropped {counts['nsfw_dropped']}")  # fmt: skip
    typer.echo(f"manifest: {Path(options.out_dir) / 'manifest.json'}")
    if not counts["train_conversations"]:
        fail("no training conversations were produced (see the counts above and the manifest)", EXIT_FAILED)


@data_app.command("rewrite")
@config_options(RewriteConfig, required=("style",))
def data_rewrite(
    options: RewriteConfig,
    input: Path = typer.Option(..., "--input", help="Chat JSONL from `warmeval data build` (train.jsonl)."),
    output: Path = typer.Option(..., help="Chat JSONL to write (failures and manifest go beside it)."),
) -> None:
    """Rewrite every assistant turn warm or cold with the paper's prompt (if declared) or warmeval's.

    A turn that fails its fidelity checks keeps its last rewrite, as the paper excluded nothing, and is listed in the
    failures file; --drop-failed excludes its conversation instead.
    """
    from warmeval.training.rewrite import RewriteError, rewrite
    from warmeval.training.rewrite_checks import API_ERROR, REQUEST_REJECTED
    from warmeval.util.lock import OutputBusy, output_lock

    try:
        with output_lock(output, f"warmeval data rewrite --output {output}"):
            manifest = rewrite(input, output, options)
    except (RewriteError, OSError, ValueError, OutputBusy) as error:
        fail(error)
    counts = manifest.counts
    typer.echo(json.dumps({k: counts[k] for k in counts if not isinstance(counts[k], dict | list)}, indent=1))
    typer.echo(f"output: {output}")
    template = manifest.extra["template"]
    typer.echo(f"prompt: {template['source']} (sha256 {template['sha256'][:12]}, "
               f"{'the declared paper text' if template['paper'] else 'not the paper text'}), sent as the "
               f"{manifest.extra['role']} message")  # fmt: skip
    if counts["turns_kept_failed"]:
        typer.echo(f"{counts['turns_kept_failed']} turn(s) failed their fidelity checks and keep their last rewrite "
                   f"(the paper excluded nothing; --drop-failed excludes them); listed in "
                   f"{manifest.outputs['failures'].path}")  # fmt: skip
    failures = manifest.outputs["failures"].path if "failures" in manifest.outputs else "the failures file"
    if counts["conversations_in"] and not counts["conversations_out"]:
        fail(f"every one of the {counts['conversations_in']} conversations failed "
             f"({dict(counts.get('excluded_by_reason', {}))}); listed in {failures}", EXIT_FAILED)  # fmt: skip
    by_reason = counts.get("excluded_by_reason", {})
    lost = by_reason.get(API_ERROR, 0) + by_reason.get(REQUEST_REJECTED, 0)
    if lost and lost > options.allowed_api_failure_share * counts["conversations_in"]:
        fail(f"{lost} of {counts['conversations_in']} conversations were lost to API errors ({API_ERROR}: "
             f"{by_reason.get(API_ERROR, 0)}, {REQUEST_REJECTED}: {by_reason.get(REQUEST_REJECTED, 0)}), listed in "
             f"{failures}; rerun the same command to retry them (finished rewrites are cached), or allow a share "
             "with --allowed-api-failure-share", EXIT_FAILED)  # fmt: skip


@train_app.command("lora")
def train_lora_command(
    config: Path = typer.Argument(..., help="YAML recipe with LoraTrainConfig fields."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an output_dir that holds another run (deletes its checkpoints)."
    ),
) -> None:
    """Train a LoRA adapter (paper defaults); adapters are saved at exact epochs as epoch-<e>/ folders."""
    from warmeval.training.lora import LoraTrainConfig, summary, train_lora
    from warmeval.util.config import ConfigError, load_config

    try:
        options = load_config(LoraTrainConfig, config, overwrite=overwrite or None)
    except (ConfigError, ValueError) as error:
        fail(error)
    from warmeval.util.lock import OutputBusy

    try:
        manifest = train_lora(options)
    except (ValueError, OutputBusy) as error:  # bad data, a run that would save nothing, a busy output_dir
        fail(error)
    typer.echo(summary(manifest))
    for label, path in manifest.extra["adapters"].items():
        typer.echo(f"{label}: {path}")
    typer.echo(f"manifest: {Path(options.output_dir) / 'manifest.json'}")


@train_app.command("generate")
@config_options(ValidationGenerationConfig, flags={"prompts_file": "--prompts", "out_dir": "--out",
                                                   "adapters": "--adapter"})  # fmt: skip
def train_generate(options: ValidationGenerationConfig) -> None:
    """Responses of the base model and of every checkpoint to the validation prompts, in this process (transformers).

    Against a vLLM server, run the Inspect task instead: inspect eval warmeval/sociot_generations --model vllm/NAME
    -T prompts_file=PROMPTS (what `warmeval run` does).
    """
    from warmeval.training.generate import generate_validation

    try:
        manifest = generate_validation(options)
    except ValueError as error:
        fail(error)
    for label, info in manifest.outputs.items():
        typer.echo(f"{label}: {info.path}")


@train_app.command("openai")
def train_openai(config: Path = typer.Argument(..., help="YAML with OpenAIFineTuneConfig fields.")) -> None:
    """Fine-tune a hosted model through the OpenAI API; records the job and epoch checkpoints in a manifest."""
    from warmeval.training.finetune_openai import (
        FineTuneDataError,
        FineTuneJobError,
        OpenAIFineTuneConfig,
        run_openai_finetune,
    )
    from warmeval.util.config import load_config

    try:
        manifest = run_openai_finetune(load_config(OpenAIFineTuneConfig, config))
    except (FineTuneDataError, FineTuneJobError, ValueError) as error:
        fail(error)
    job = manifest.extra
    typer.echo(f"job {job['job_id']}: {job['status']} -> {job['fine_tuned_model']}")
    for checkpoint in manifest.extra.get("checkpoints", []):
        typer.echo(f"  step {checkpoint.get('step_number')}: {checkpoint.get('fine_tuned_model_checkpoint')}")
