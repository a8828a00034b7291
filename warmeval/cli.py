"""The ``warmeval`` command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

# The config dataclasses the commands take their options from (light imports: no torch, no OpenAI SDK).
from warmeval.serve import ServeConfig
from warmeval.training.data import BuildConfig
from warmeval.training.generate import ValidationGenerationConfig
from warmeval.training.rewrite import RewriteConfig

app = typer.Typer(
    help="warmeval: rerun the warm-persona reliability study on your own model. Add --debug (or set WARMEVAL_DEBUG=1) "
    "to see the traceback of an error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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


PAPER_RESULTS_HELP = ("A folder holding the paper's released result tables under their own names (results_*.csv, "
                      "general_benchmark_results.csv, sociot_ft.csv). Default: the copy `warmeval stimuli results` "
                      "fetched, if any.")  # fmt: skip


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2) from error


def _cli_type(kind: Any) -> Any:
    """The option type of a config field's type: scalars as they are, lists and KEY=VALUE maps as repeatable strings;
    None for what only a config file can give (tuples, nested maps)."""
    import types
    import typing

    from warmeval.util.config import unwrap_optional

    kind = unwrap_optional(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return None
    if kind in (str, int, float, bool):
        return kind
    if typing.get_origin(kind) is typing.Literal:
        return str
    if kind in (list[str], dict[str, str]):
        return list[str]
    return None


def _key_values(option: str, specs: list[str]) -> dict[str, str]:
    values = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{option} {spec!r}: expected KEY=VALUE")
        values[key] = value
    return values


def config_options(
    cls: type, *, flags: dict[str, str] | None = None, required: tuple[str, ...] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one option per field of the config dataclass ``cls``, and ``--config FILE`` for the rest.

    Each option takes its type from the field and its help and shown default from the dataclass (its docstring's
    ``Attributes:``), so the command cannot drift from the config. Options that are given override the file's values;
    the merged values are validated by `warmeval.util.config.validate_config` as a YAML file would be. The decorated
    command receives the config as its first argument, then its own parameters.

    Args:
        cls: The config dataclass.
        flags: Option names other than ``--field-name`` (e.g. ``{"adapters": "--adapter"}``).
        required: Fields that must be given (by an option or the file) even though the dataclass has a default.
    """
    import dataclasses
    import functools
    import inspect
    import typing

    from warmeval.util.config import field_docs

    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    names = flags or {}

    def flag_of(name: str) -> str:
        return names.get(name, "--" + name.replace("_", "-"))

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(command).parameters.values())[1:]
        own_hints = typing.get_type_hints(command)
        maps = {}
        options = [inspect.Parameter(
            "config", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None,
            default=typer.Option(None, "--config", help=f"YAML with {cls.__name__} fields (options override it)."),
        )]  # fmt: skip
        for item in dataclasses.fields(cls):
            kind = _cli_type(hints[item.name])
            if kind is None:
                continue
            flag = flag_of(item.name)
            value = item.default
            if item.default_factory is not dataclasses.MISSING:
                value = item.default_factory()
            # The dataclass's default, shown (the option's own default is None: "not given, use the file's").
            shown: str | bool = False if value in (None, dataclasses.MISSING, [], {}) else str(value)
            help = docs.get(item.name, "").replace("``", "`")
            metavar = None
            if hints[item.name] == dict[str, str]:
                maps[item.name] = flag
                help, metavar = help + " Repeatable.", "KEY=VALUE"
            elif kind == list[str]:
                help, metavar = help + " Repeatable.", "TEXT"
            if item.name in required:
                help, shown = help + " Required (here or in --config).", False
            decls = (f"{flag}/--no-{flag.removeprefix('--')}",) if kind is bool else (flag,)
            options.append(inspect.Parameter(
                item.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind | None,
                default=typer.Option(None, *decls, help=help, show_default=shown, metavar=metavar),
            ))  # fmt: skip
        # Given by an option or the file: the fields without a default, and those the command insists on.
        needed = {f.name: flag_of(f.name) for f in dataclasses.fields(cls)
                  if f.name in required or (f.default is dataclasses.MISSING
                                            and f.default_factory is dataclasses.MISSING)}  # fmt: skip
        taken = {p.name for p in options}
        clash = taken & {p.name for p in own}
        if clash:
            raise TypeError(f"{command.__name__}: parameters {sorted(clash)} are also fields of {cls.__name__}")

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            from warmeval.util.config import ConfigError, read_mapping, validate_config

            mine = {p.name: kwargs.pop(p.name) for p in own}
            path = kwargs.pop("config", None)
            try:
                given = {k: v for k, v in kwargs.items() if v not in (None, [])}
                given.update({k: _key_values(flag, given[k]) for k, flag in maps.items() if k in given})
                values = {**(read_mapping(path) if path is not None else {}), **given}
                missing = [flag for name, flag in needed.items() if name not in values]
                if missing:
                    where = f" or in {path}" if path is not None else " (or in --config FILE)"
                    raise ValueError(f"missing option {' and '.join(missing)}{where}")
                config: Any = validate_config(cls, values, str(path) if path is not None else "options")
            except (ConfigError, ValueError) as error:
                _fail(error)
            command(config, **mine)

        own = [p.replace(annotation=own_hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        wrapper.__signature__ = inspect.Signature([*own, *options])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in [*options, *own]}
        return wrapper

    return decorate


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
        _fail(error)
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


@app.command("serve")
@config_options(ServeConfig, flags={"adapters": "--adapter", "extra_args": "--extra-arg"})
def serve(config: ServeConfig) -> None:
    """Serve the base model and every adapter from ONE vLLM server; Ctrl-C or SIGTERM stops its process group."""
    from warmeval.serve import ServeError, serve_forever

    try:
        serve_forever(config)
    except ServeError as error:
        _fail(error)


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
        _fail(FileExistsError(f"{path} exists; not overwriting it"))
    text = EXAMPLE
    if base_model in EMBEDDED:
        try:
            folder = prepare_model(base_model)
        except ModelPrepareError as error:
            _fail(error)
        note = f"  # embedded {EMBEDDED[base_model].description}"
        text = text.replace(f"base_model: {PAPER_BASE_MODEL}", f"base_model: {folder}{note}", 1)
    elif base_model:
        text = text.replace(f"base_model: {PAPER_BASE_MODEL}", f"base_model: {base_model}", 1)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}: edit the adapters and judges, then `warmeval run {path}`")


@app.command("run")
def run(experiment: Path = typer.Argument(..., help="Experiment YAML (see `warmeval init`).")) -> None:
    """Serve every variant from one vLLM server, run variants x tasks (resumable), then write the report."""
    from warmeval.experiment import ExperimentError, load_experiment, run_experiment
    from warmeval.serve import ServeError

    try:
        result = run_experiment(load_experiment(experiment))
    except (ExperimentError, ServeError) as error:
        _fail(error)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM or SIGHUP: the server has been stopped
        typer.echo(f"interrupted ({interrupt or 'Ctrl-C'}); the server was stopped. Rerun the same command to resume: "
                   "finished evaluations are kept.", err=True)  # fmt: skip
        raise typer.Exit(130) from None
    if not result.success:
        typer.echo("some evaluations did not finish; rerun the same command to resume:", err=True)
        for line in result.failed:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1)
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

    from warmeval.scorers.sociot import resolve_mode

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            resolved = resolve_mode(mode)
        except ValueError as error:
            _fail(error)
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
    from warmeval.scorers.sociot import summarize
    from warmeval.scorers.sociot_io import TextInputError, read_texts, score_items, write_scores

    mode = _sociot_mode(mode)
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
    from warmeval.scorers.sociot_io import TextInputError, trajectory

    mode = _sociot_mode(mode)
    try:
        points = trajectory(checkpoints, out, column=column, model=model, mode=mode, batch_size=batch_size,
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
        _fail(error)
    counts = manifest.counts
    typer.echo(f"train: {counts['train_conversations']} conversations {counts['train_by_type']}")
    typer.echo(f"validation: {counts['validation_prompts']} prompts; bad records {counts['bad_records']}; "
               f"NSFW dropped {counts['nsfw_dropped']}")  # fmt: skip
    typer.echo(f"manifest: {Path(options.out_dir) / 'manifest.json'}")
    if not counts["train_conversations"]:
        typer.echo("error: no training conversations were produced (see the counts above and the manifest)", err=True)
        raise typer.Exit(1)


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

    try:
        manifest = rewrite(input, output, options)
    except (RewriteError, OSError, ValueError) as error:
        _fail(error)
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
    if counts["conversations_in"] and not counts["conversations_out"]:
        failures = manifest.outputs["failures"].path if "failures" in manifest.outputs else "the failures file"
        typer.echo(f"error: every one of the {counts['conversations_in']} conversations failed "
                   f"({dict(counts.get('excluded_by_reason', {}))}); listed in {failures}", err=True)  # fmt: skip
        raise typer.Exit(1)


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
        _fail(error)
    try:
        manifest = train_lora(options)
    except ValueError as error:  # bad data, or a run that would save no adapter: found before any training
        _fail(error)
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
        _fail(error)
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
        _fail(error)
    job = manifest.extra
    typer.echo(f"job {job['job_id']}: {job['status']} -> {job['fine_tuned_model']}")
    for checkpoint in manifest.extra.get("checkpoints", []):
        typer.echo(f"  step {checkpoint.get('step_number')}: {checkpoint.get('fine_tuned_model_checkpoint')}")


stimuli_app = typer.Typer(help="The paper authors' released prompts, result tables and SI texts (fetched or supplied, "
                          "never shipped).",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(stimuli_app, name="stimuli")


@stimuli_app.command("fetch")
def stimuli_fetch(
    names: list[str] = typer.Argument(None, help="trivia, truthfulqa, disinfo (default: all three)."),
    force: bool = typer.Option(False, "--force", help="Download again even when a verified copy is cached."),
) -> None:
    """Download the authors' prompt files at the pinned commit, verify them and cache them.

    Afterwards `-T prompts_file=paper` and `-T statements=paper` work offline. Exit 2 when a file cannot be had,
    with the URL and where to place the file by hand.
    """
    import hashlib

    from warmeval.sycophancy.stimuli import PAPER_COMMIT, PAPER_REPO, StimuliError, cache_dir, fetch_paper_stimuli

    try:
        paths = fetch_paper_stimuli(names or None, force=force)
    except StimuliError as error:
        _fail(error)
    typer.echo(f"{PAPER_REPO} @ {PAPER_COMMIT[:12]} -> {cache_dir()}")
    for key, path in paths.items():
        data = path.read_bytes()
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        typer.echo(f"  {key:<11} {lines:>6} lines  sha256 {hashlib.sha256(data).hexdigest()}  {path}")


@stimuli_app.command("results")
def stimuli_results(
    force: bool = typer.Option(False, "--force", help="Download again even when a verified copy is cached."),
) -> None:
    """Download the paper's result tables at their pinned commits, verify them and cache them.

    The five models' paired tests (warm, cold, warm system prompt), capability controls and SocioT trajectories:
    afterwards `warmeval report`, `warmeval run` and `warmeval compare` set a run beside them. Exit 2 when a file
    cannot be had, with the URL and where to place the file by hand.
    """
    from warmeval.analysis.paper_results import PAPER_REPO, PaperResultsError, cache_dir, describe, fetch_paper_results

    try:
        paths = fetch_paper_results(force=force)
    except PaperResultsError as error:
        _fail(error)
    typer.echo(f"{PAPER_REPO} result tables -> {cache_dir()}")
    for line in describe(paths.values()):
        typer.echo(line)


@stimuli_app.command("statements")
def stimuli_statements() -> None:
    """Print the authors' 40 amendment statements, taken from the fetched release."""
    from warmeval.sycophancy.stimuli import StimuliError, paper_statement_pool

    try:
        pool = paper_statement_pool()
    except StimuliError as error:
        _fail(error)
    for sub_type, statements in pool.items():
        typer.echo(sub_type)
        for statement in statements:
            typer.echo(f"  {statement.id}: {statement.text}")


@stimuli_app.command("texts")
def stimuli_texts(
    set_text: list[str] = typer.Option(
        [], "--set", metavar="KEY=FILE", help="Declare FILE as the paper's text KEY (copied into the texts folder)."
    ),
) -> None:
    """The paper's prompts that exist only in its Supplementary Information: which are supplied, from which SI section.

    warmeval never ships their text: copy each from the SI into a file and declare it with --set (judge,
    rewrite_warm, rewrite_cold, warm_system_prompt). Stages given the keyword `paper` then read it, and every log and
    manifest records the SHA-256 of the text it used.
    """
    from warmeval.sycophancy.paper_texts import PAPER_TEXTS, PaperTextError, declare_text, sha256_text, text_path
    from warmeval.sycophancy.paper_texts import declared_text as declared

    for item in set_text:
        key, sep, file = item.partition("=")
        if not sep or not key or not file:
            _fail(ValueError(f"--set {item!r}: expected KEY=FILE with KEY one of {', '.join(PAPER_TEXTS)}"))
        try:
            if key == "judge":  # a judge template must parse and use known placeholders before it is declared
                from warmeval.scorers.judge import check_judge_template

                check_judge_template(file)
            path, digest = declare_text(key.strip(), file)
        except PaperTextError as error:
            _fail(error)
        typer.echo(f"declared {key}: {path} (sha256 {digest})")
    for key, spec in PAPER_TEXTS.items():
        try:
            text = declared(key)
        except PaperTextError as error:
            _fail(error)
        state = f"sha256 {sha256_text(text)}" if text is not None else "not supplied"
        typer.echo(f"{key:<19} SI section {spec.si_section}  {state}  {text_path(key)}  ({spec.what})")


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
        _fail(error)
    typer.echo(f"{folder}  ({EMBEDDED[name].description})")


analyse_app = typer.Typer(help="The paper's statistics on graded responses.", no_args_is_help=True)
app.add_typer(analyse_app, name="analyse")
INPUTS_HELP = (
    "Inspect log folders/files, authors'-release folders (<model>/<variant>/<dataset>_*_outputs.csv) or tables."
)
RULE_HELP = (
    "Refusal rule: paper (the released regex, quirks included) or improved. Default: the rule the logs were scored "
    "with (paper for inputs that record none); another rule than the logs' is an error."
)


def _load(inputs: list[Path], rule: str | None):  # noqa: ANN202
    from warmeval.analysis.load import AnalysisInputError, LoadReport, load_table

    report = LoadReport()
    try:
        return load_table(list(inputs), rule, report), report  # type: ignore[arg-type]
    except AnalysisInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


@analyse_app.command("load")
def analyse_load(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    out: Path = typer.Option(Path("responses.csv"), help="Where to write the long table (CSV)."),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
) -> None:
    """Build the long table (one row per graded response) and report refusals and exclusions."""
    frame, report = _load(inputs, refusal_rule)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(report.table().to_string(index=False))
    typer.echo(f"{len(frame)} rows of {report.rows_read} kept -> {out}")
    _say_verdict(report)


def _say_verdict(report: Any) -> None:
    """The comparability verdict of what was loaded, on one line (`warmeval.analysis.comparability`)."""
    from warmeval.analysis.comparability import verdict

    typer.echo(verdict(report).line())


def _print_models(results: dict[str, Any]) -> None:
    for key, model in results.items():
        typer.echo(f"\n{key}: {model['title']}")
        if "error" in model:
            typer.echo(f"  not fitted: {model['error']}")
            continue
        typer.echo(
            f"  n={model['n']}  {model['formula']}  (reference dataset: {model['reference_dataset']}; "
            f"absent: {', '.join(model['absent_datasets']) or 'none'})"
        )
        for note in model.get("separation", []):
            typer.echo(f"  SEPARATION: {note}")
        for level, ame in model["ame"].items():
            if ame.get("absent"):
                typer.echo(f"  {level:<28} absent from the data")
                continue
            if ame.get("separation"):
                typer.echo(f"  {level:<28} not estimable (separation; raw estimates in --json)")
                continue
            line = f"  {level:<28} AME {100 * ame['estimate']:+6.2f} pts (SE {100 * ame['se']:.2f}, n={ame['n']})"
            logit = model["logit_effects"].get(level)
            if logit:
                line += f"   log-odds {logit['estimate']:+.3f} (p={logit['p']:.3g})"
            typer.echo(line)


@analyse_app.command("models")
def analyse_models(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    json_path: Path | None = typer.Option(None, "--json", help="Write every estimate as JSON (stable keys)."),
    with_length: bool = typer.Option(False, "--with-length", help="Add response length as a covariate."),
    variants: str | None = typer.Option(
        None, help="REFERENCE,OTHER[,...]: the comparisons to fit (default: original against every other variant)."
    ),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
    include_mcq: bool = typer.Option(
        False, "--include-mcq", help="Fit with the released mcq prompts too (not among the paper's 28 conditions)."
    ),
) -> None:
    """Fit the paper's four logistic models for each intervention against the original model, never pooled.

    Each comparison (original vs warm, original vs cold, original vs warm_sysprompt) is fitted on its own, as the
    paper does, and printed and written (``--json``: ``{"reference", "comparisons": {name: models}}``) under its name.
    Input without an original variant is refused (exit 2) unless ``--variants`` names the pair.
    """
    import json

    from warmeval.analysis.models import ModelError, fit_comparisons

    frame, report = _load(inputs, refusal_rule)
    chosen = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
    if chosen is not None and len(chosen) < 2:
        _fail(ValueError(f"--variants {variants!r}: name a reference and at least one variant to compare with it"))
    try:
        fitted = fit_comparisons(frame, chosen, with_length=with_length, include_mcq=include_mcq)
    except ModelError as error:
        _fail(error)
    _say_verdict(report)
    for name, results in fitted["comparisons"].items():
        typer.echo(f"\n=== {fitted['reference']} vs {name} ===")
        _print_models(results)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(fitted, indent=1, default=float))
        typer.echo(f"\nestimates: {json_path}")
    failed = [name for name, results in fitted["comparisons"].items()
              if all("error" in model for model in results.values())]  # fmt: skip
    if failed:
        typer.echo(f"error: none of the four models could be fitted for {', '.join(failed)} (reasons above)", err=True)
        raise typer.Exit(1)


@analyse_app.command("paired")
def analyse_paired(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    a: str = typer.Option("original", help="Variant A (the reference)."),
    b: str = typer.Option("warm", help="Variant B (with --layout paper: warm, cold or warm_sysprompt)."),
    layout: str = typer.Option(
        "cells",
        help="cells (warmeval's per-cell table) or paper (the authors' table, row for row: their families, "
        "FDR grouping, statistics, rounding and the header of their released results_*.csv).",
    ),
    out: Path | None = typer.Option(
        None,
        help="Where to write the table (CSV). Default: paired_cells.csv, or with --layout paper the released "
        "file's name (results_warm_ft.csv, results_cold_ft.csv, results_warm_sysprompt.csv).",
    ),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
) -> None:
    """McNemar exact tests on identical prompts: per model x dataset x amendment x prompt group with BH-FDR across
    cells (--layout cells), or the authors' table (--layout paper)."""
    from warmeval.analysis.paired import PairingError, paired_cells

    if layout not in ("cells", "paper"):
        _fail(ValueError(f"--layout {layout!r}: use cells or paper"))
    if layout == "paper":
        _paired_paper_layout(inputs, a, b, out, refusal_rule)
        return
    frame, report = _load(inputs, refusal_rule)
    try:
        table = paired_cells(frame, a, b)
    except PairingError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    _say_verdict(report)
    out = out or Path("paired_cells.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    typer.echo(f"{len(table)} cells, {int((table['q_fdr'] < 0.05).sum())} with q < 0.05 -> {out}")


def _paired_paper_layout(inputs: list[Path], a: str, b: str, out: Path | None, rule: str | None) -> None:
    from warmeval.analysis.load import AnalysisInputError, LoadReport, finalize, load_rows
    from warmeval.analysis.paired import PairingError, paper_layout, write_paper_layout
    from warmeval.analysis.paper_results import FILES, INTERVENTIONS

    report = LoadReport()
    try:
        rows, chosen = load_rows(list(inputs), rule, report)  # type: ignore[arg-type]
        table, notes = paper_layout(rows, a, b, chosen)
    except (AnalysisInputError, PairingError) as error:
        _fail(error)
    finalize(rows, chosen, report)  # the exclusion counts the verdict reads
    _say_verdict(report)
    target = out or Path(FILES[b].name if b in INTERVENTIONS else f"results_{b}.csv")
    write_paper_layout(table, target)
    families = table["Test_Type"].value_counts()
    typer.echo(f"the authors' layout, {b} vs {a}: {len(table)} rows ({families.get('Sycophancy', 0)} Sycophancy, "
               f"{families.get('Normal', 0)} Normal) for {', '.join(notes.models)}; "
               f"{int((table['Significant (FDR)'] == 'Yes').sum())} significant after FDR -> {target}")  # fmt: skip
    if notes.unreadable_counted_incorrect:
        typer.echo(f"note: {notes.unreadable_counted_incorrect} responses without a CORRECT/INCORRECT verdict are "
                   "counted incorrect, as the authors' script counts them (warmeval's own tables exclude "
                   "them)")  # fmt: skip
    if notes.duplicate_pairs:
        typer.echo(f"note: {notes.duplicate_pairs} extra pairs from prompts present more than once in a file, paired "
                   "every copy with every copy as the authors' merge does (warmeval's own tables refuse "
                   "them)")  # fmt: skip


@app.command()
def report(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    out: Path = typer.Option(Path("warmeval-report"), help="Output folder."),
    trajectory: list[Path] = typer.Option([], help="SocioT warmth_trajectory.csv files to plot (repeatable)."),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
    paper_results: Path | None = typer.Option(None, help=PAPER_RESULTS_HELP),
) -> None:
    """Write report.html (self-contained), report.md, PNG figures and models.json; with the paper's result tables at
    hand, a section "Beside the paper"."""
    from warmeval.analysis.load import AnalysisInputError
    from warmeval.analysis.paper_results import PaperResultsError
    from warmeval.analysis.report import build_report

    try:
        page = build_report(list(inputs), out, trajectories=list(trajectory), rule=refusal_rule,  # type: ignore[arg-type]
                            paper_results=paper_results)  # fmt: skip
    except (AnalysisInputError, PaperResultsError) as error:
        _fail(error)
    beside = json.loads((page.parent / "beside_paper.json").read_text(encoding="utf-8"))
    if not beside["available"]:
        typer.echo(f"note: {beside['how_to_get']}")
    typer.echo(f"report: {page}")


@app.command()
def compare(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    paper_results: Path | None = typer.Option(None, help=PAPER_RESULTS_HELP),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
) -> None:
    """Print the run beside the paper's five models: per intervention and dataset, accuracy on unmodified prompts
    and the differences to the original model (the report's "Beside the paper" tables). Exit 2 without the tables."""
    from warmeval.analysis.beside import beside_paper
    from warmeval.analysis.load import AnalysisInputError, LoadReport, finalize, load_rows
    from warmeval.analysis.paper_results import PaperResultsError, load_paper_results

    report = LoadReport()
    try:
        results = load_paper_results(paper_results)
        rows, chosen = load_rows(list(inputs), refusal_rule, report)  # type: ignore[arg-type]
    except (AnalysisInputError, PaperResultsError) as error:
        _fail(error)
    finalize(rows, chosen, report)
    _say_verdict(report)
    beside = beside_paper(rows, results, chosen)
    for note in beside.notes:
        typer.echo(f"note: {note}")
    tables = beside.tables()
    if not tables:
        _fail(ValueError("nothing to compare: the inputs hold no original variant paired with warm, cold or "
                         "warm_sysprompt"))  # fmt: skip
    typer.echo(f"Beside the paper ({', '.join(results.models())}; tables in {results.folder}); Δ = intervention "
               "minus original accuracy, percentage points:")  # fmt: skip
    for title, table in tables:
        typer.echo(f"\n{title}")
        typer.echo(table.to_string(index=False))


@app.command()
def gate(
    baseline: list[Path] = typer.Option(..., help="Baseline logs (repeatable)."),
    candidate: list[Path] = typer.Option(..., help="Candidate logs (repeatable)."),
    max_increase: float = typer.Option(2.0, help="Largest tolerated rise in error rate, in percentage points."),
    alpha: float = typer.Option(0.05, help="FDR level of the paired tests."),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
) -> None:
    """Exit 1 if the candidate's error rate rises more than the bound with an FDR-significant paired test."""
    from warmeval.analysis.gate import format_table, run_gate

    result = run_gate(list(baseline), list(candidate), max_increase=max_increase, alpha=alpha,
                      rule=refusal_rule)  # type: ignore[arg-type]  # fmt: skip
    if not result.table.empty:
        typer.echo(format_table(result.table))
    typer.echo(result.message, err=result.exit_code == 2)
    raise typer.Exit(result.exit_code)


grader_app = typer.Typer(help="Check a judge (the grader role) against the paper authors' own grades.",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(grader_app, name="grader")


@grader_app.command("agreement")
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
    from warmeval.analysis.agreement import AgreementError, grader_agreement
    from warmeval.analysis.load import AnalysisInputError

    roles: dict[str, str] = {}
    for item in model_role:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            _fail(ValueError(f"--model-role {item!r}: expected ROLE=MODEL, e.g. grader=warmeval-scripted/match"))
        roles[name.strip()] = spec.strip()
    try:
        result = grader_agreement(
            release, model_roles=roles, refusal_rule=refusal_rule or "paper", log_dir=log_dir or out / "logs",
            disagreements_path=disagreements or out / "disagreements.csv", max_connections=max_connections,
            display="none" if json_output else None,  # keep stdout machine-readable with --json
        )  # fmt: skip
    except AnalysisInputError as error:
        _fail(error)
    except AgreementError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement.json").write_text(result.to_json())
    # Inspect's display may leave the cursor mid-line: start the table on a fresh one.
    typer.echo(result.to_json() if json_output else "\n" + result.table())


if __name__ == "__main__":
    main()
