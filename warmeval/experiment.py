"""One experiment file: the base model, its variants, the tasks and the judges; `run_experiment` runs all of it.

The YAML (``warmeval init`` writes a commented example) is validated before anything starts: an unknown key or a
missing file is an error naming its key path (``variants.warm.adapter``). `run_experiment` serves every variant (and
every checkpoint of the SocioT trajectory) from one vLLM server (or uses ``base_url``), then, stage by stage:

1. variants x tasks (and the AdvBench safety control) through Inspect's ``eval_set`` (logs in ``output_dir/logs``;
   rerunning resumes: finished logs are kept, unfinished samples are redone, nothing is duplicated);
2. the capability controls, MMLU and GSM8K, per variant through lm-eval's ``local-chat-completions`` model on the same
   server (``output_dir/controls/<variant>/``; a finished result is kept on rerun);
3. validation generations of the base model and of every checkpoint (``output_dir/sociot/generations``; complete
   files are kept on rerun), then the server stops and SocioT scores them into one warmth trajectory per series;
4. the report (``output_dir/report/report.html``), which opens with the comparability verdict, one line
   ``Paper-comparable: yes|no`` with every departure from the paper's protocol (`warmeval.analysis.comparability`);
   `warmeval run` prints it too.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from inspect_ai.model import GenerateConfig

from warmeval.util.config import read_mapping, validate_config, validate_model
from warmeval.util.files import safe_name, write_atomic

if TYPE_CHECKING:
    import pandas as pd

DATA_ARGS = ("data_path", "prompts_file", "distractors")
# Capability controls run through lm-eval, not Inspect; `warmeval.scorers.capability.run_capability_control` runs one.
CAPABILITY_CONTROLS = ("mmlu", "gsm8k")
CAPABILITY_FIXED = {"name", "base_url", "model", "output_dir", "system_instruction"}

PAPER_BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
EXAMPLE = """\
# warmeval experiment: the design of Ibrahim, Hafner & Rocher (Nature 2026) on one base model.
# Run with: warmeval run experiment.yaml   (rerunning resumes where it stopped)
# Every default below is the paper's protocol; `warmeval run` prints, and the report opens with, a line
# "Paper-comparable: yes|no" naming every departure from it.
name: warm-study
base_model: meta-llama/Llama-3.1-8B-Instruct   # HF id or local folder, served by vLLM
served_name: base                             # the base model's name on the server
# base_url: http://127.0.0.1:8000/v1          # use a server you started yourself (warmeval serve) instead
server:                                       # options of the vLLM server warmeval starts
  host: 127.0.0.1
  port: 8000
  max_model_len: 4096
  tensor_parallel_size: 1                     # GPUs per model for large models
  # extra_args: [--enforce-eager]             # more `vllm serve` options
  # env: {VLLM_CPU_KVCACHE_SPACE: "4"}        # the server's environment variables
variants:                                     # each name is one row of the analysis
  original: {}
  warm: {adapter: adapters/warm/epoch-2}      # LoRA folders from `warmeval train lora`; the paper evaluated epoch 2
  cold: {adapter: adapters/cold/epoch-2}
  # The warm system-prompt control with the paper's warmth instructions (SI section 1.2; supply them once with
  # `warmeval stimuli texts --set warm_system_prompt=FILE`), or `warm` for warmeval's own wording.
  warm_sysprompt: {system_prompt: paper}
tasks:                                        # -T arguments of each Inspect task; {} is the paper's design:
  # the 28 conditions on the authors' released prompts (fetched once: `warmeval stimuli fetch`), and for MedQA (no
  # released file) 500 questions rebuilt by the paper's rules with its 40 statements. A small run: {design: quick}
  # (4 conditions on 50 questions); to build prompts from a local dataset: {data_path: FILE}.
  triviaqa: {}
  truthfulqa: {}
  disinfo: {}
  medqa_conv: {}
controls:                                     # on the same server, per variant; the paper's sizes:
  advbench: {}                                # safety: all 520 prompts, refusal judged by the grader role
  mmlu: {}                                    # capability: the whole test set (14,042), zero-shot, temperature 0.2
  gsm8k: {}                                   # the whole test set (1,319), zero-shot chain of thought
  # A small run: advbench: {n: 100}, mmlu: {n: 500}, gsm8k: {n: 500} (the verdict then says "no").
sociot:                                       # SocioT warmth of every checkpoint's validation generations
  prompts: data/conversations/validation_prompts.jsonl   # from `warmeval data build`
  n: 1500                                     # the paper's 1,500 validation prompts (a small run: 300)
  checkpoints: {warm: adapters/warm, cold: adapters/cold}  # folders of epoch-<e>/ adapters, served with the rest
  model: gpt2                                 # SocioT's language model (HF id or local folder)
roles:                                        # Inspect model roles, pinned to the snapshot the paper names
  grader: openai/gpt-4o-2024-08-06            # the paper's judge (temperature 0); needs OPENAI_API_KEY
  distractor: openai/gpt-4o-2024-08-06        # TriviaQA wrong answers, when prompts are built from a dataset
generation: {max_tokens: 300, temperature: 0.8, max_retries: 5, timeout: 600}  # the paper's; any GenerateConfig key
max_connections: 32
# max_tasks: 4                                # task runs at once (default: Inspect's; 1 on vllm-cpu, see the README)
epochs: 1
refusal_rule: paper                           # paper (the released regex) | improved; scoring and analysis alike
# paper_results: paper-results/                # the paper's result tables (default: `warmeval stimuli results`' copy)
output_dir: runs/warm-study
"""


class ExperimentError(ValueError):
    """A bad experiment file: the message names the key path."""


@dataclass
class ControlResult:
    """One control's figure for one variant: the AdvBench refusal rate, or an lm-eval accuracy.

    Attributes:
        control: ``advbench``, ``mmlu`` or ``gsm8k``.
        variant: The variant.
        metric: ``judged_refusal_rate`` or ``accuracy``.
        value: The figure (None when nothing was scored).
        stderr: Its standard error.
        n: Items scored.
        unparseable: lm-eval answers with no extractable letter or number (None for AdvBench).
    """

    control: str
    variant: str
    metric: str
    value: float | None
    stderr: float | None
    n: int
    unparseable: int | None = None


@dataclass
class ExperimentResult:
    """What `run_experiment` did.

    Attributes:
        success: Every evaluation finished (otherwise rerun to resume; ``failed`` says which did not).
        logs: The Inspect log folder.
        samples: Samples scored.
        failed: ``task (model): status`` of each unfinished evaluation.
        report: The HTML report (when every evaluation finished).
        controls: One result per control and variant.
        trajectories: The SocioT ``warmth_trajectory.csv`` of each checkpoint series.
        verdict: The report's comparability line (``Paper-comparable: yes`` or ``no: <deviations>``).
        beside: Lines setting the run's warm-minus-original differences beside the paper's range per dataset (or one
            line saying how to get the paper's tables).
    """

    success: bool
    logs: str
    samples: int
    failed: list[str] = field(default_factory=list)
    report: str | None = None
    controls: list[ControlResult] = field(default_factory=list)
    trajectories: list[str] = field(default_factory=list)
    verdict: str | None = None
    beside: list[str] = field(default_factory=list)


# The experiment file's schema: checked by `warmeval.util.config.validate_config` (unknown keys, missing ones and bad
# values name their key path) before any path is resolved or any server starts. A setting left out (None) takes the
# default of the code it goes to (`ServeConfig`, Inspect's generation config), never a copy of it kept here.


class _Section:
    """A section whose unset (None) settings are left to the code they go to."""

    def given(self) -> dict[str, Any]:
        """The settings the file gives, by name."""
        return {k: v for k, v in asdict(self).items() if v is not None}  # type: ignore[call-overload]


# What `run_experiment` sets itself: the base model, its served name and the adapters come from the file's top level
# and its variants, and the server's log goes to <output_dir>/vllm.log.
SET_BY_EXPERIMENT = ("base_model", "adapters", "served_name", "log_path")


def optional_section(config: type, name: str, exclude: tuple[str, ...], doc: str) -> type[_Section]:
    """A `_Section` with every field of ``config`` (a dataclass or a pydantic model) but ``exclude``, each optional.

    The section is derived, not copied, so that a new option of the code it goes to is at once a key of the file.
    A pydantic model's fields are typed ``Any`` here: its own validators, which a copy of the field types would lose,
    check the values (`load_experiment` runs `validate_model`).
    """
    import typing
    from dataclasses import make_dataclass

    if hasattr(config, "model_fields"):  # pydantic
        types = {n: Any for n in config.model_fields}
    else:
        hints = typing.get_type_hints(config)
        types = {f.name: hints[f.name] for f in fields(config)}
    derived = [(n, t | None, field(default=None)) for n, t in types.items() if n not in exclude]
    section = make_dataclass(name, derived, bases=(_Section,), namespace={"__doc__": doc})
    section.__module__ = __name__
    return section


if TYPE_CHECKING:
    # Type checkers see the base class; the fields, made at import time below, are those of the code each goes to.
    ServerSection = _Section
    GenerationSection = _Section
else:
    from warmeval.serve import ServeConfig

    ServerSection = optional_section(
        ServeConfig, "ServerSection", SET_BY_EXPERIMENT,
        "``server:``: options of the vLLM server warmeval starts: every `warmeval.serve.ServeConfig` field but "
        f"{', '.join(SET_BY_EXPERIMENT)}.",
    )  # fmt: skip
    # max_connections is a top-level key of the file.
    GenerationSection = optional_section(
        GenerateConfig, "GenerationSection", ("max_connections",),
        "``generation:``: Inspect's generation settings (`inspect_ai.model.GenerateConfig`) of every task run.",
    )  # fmt: skip


@dataclass
class RolesSection(_Section):
    """``roles:``: Inspect model roles."""

    grader: str | None = None
    distractor: str | None = None


@dataclass
class VariantSection:
    adapter: str | None = None
    system_prompt: str | None = None


@dataclass
class SocioTSection:
    prompts: str
    checkpoints: dict[str, str]
    n: int | None = None
    model: str | None = None
    mode: Literal["paper", "text_logprob", "code"] = "paper"  # code: deprecated spelling of paper
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass
class ExperimentFile:
    """An ``experiment.yaml`` as written; `load_experiment` resolves it into an `Experiment`."""

    base_model: str
    variants: dict[str, VariantSection]
    tasks: dict[str, dict[str, Any]]
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    sociot: SocioTSection | None = None
    name: str = "experiment"
    served_name: str = "base"
    base_url: str | None = None
    server: ServerSection = field(default_factory=ServerSection)
    roles: RolesSection = field(default_factory=RolesSection)
    generation: GenerationSection = field(default_factory=GenerationSection)
    max_connections: int = 16
    max_tasks: int | None = None
    epochs: int = 1
    output_dir: str | None = None
    fail_on_error: bool | float = True
    refusal_rule: Literal["paper", "improved"] = "paper"
    paper_results: str | None = None


@dataclass
class Variant:
    name: str
    adapter: str | None = None
    system_prompt: str | None = None


@dataclass
class SocioTSpec:
    """The SocioT trajectory: validation prompts, the checkpoint series and the scorer."""

    prompts: str
    checkpoints: dict[str, list[tuple[float, str]]]  # series -> [(epoch, adapter folder)], by epoch
    n: int | None = None
    model: str | None = None
    mode: str = "paper"
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass
class Experiment:
    base_model: str
    variants: list[Variant]
    tasks: dict[str, dict[str, Any]]
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    capability: dict[str, dict[str, Any]] = field(default_factory=dict)
    sociot: SocioTSpec | None = None
    name: str = "experiment"
    served_name: str = "base"
    base_url: str | None = None
    server: ServerSection = field(default_factory=ServerSection)
    roles: dict[str, str] = field(default_factory=dict)
    generation: GenerationSection = field(default_factory=GenerationSection)
    max_connections: int = 16
    max_tasks: int | None = None  # None: 1 on the CPU build of vLLM (see run_experiment), else Inspect's default
    epochs: int = 1
    output_dir: str = "runs/experiment"
    fail_on_error: bool | float = True
    refusal_rule: str = "paper"  # one rule per run: the grader's and the analysis's
    paper_results: str | None = None  # the paper's result tables (None: the fetched copy, if any)
    source: str = ""

    def model_for(self, variant: Variant) -> str:
        return f"vllm/{self.served_model(variant)}"

    def served_model(self, variant: Variant) -> str:
        """The model name a variant's requests carry (its adapter, or the base model)."""
        return variant.name if variant.adapter else self.served_name

    def checkpoint_names(self) -> dict[tuple[str, float], str]:
        """(series, epoch) -> served adapter name; a checkpoint that is also a variant's adapter keeps its name."""
        if self.sociot is None:
            return {}
        by_path = {str(Path(v.adapter).resolve()): v.name for v in self.variants if v.adapter}
        return {(series, epoch): by_path.get(str(Path(folder).resolve()), f"{series}-epoch-{epoch:g}")
                for series, points in self.sociot.checkpoints.items() for epoch, folder in points}  # fmt: skip

    def served_adapters(self) -> dict[str, str]:
        """Every adapter the server loads: the variants' and the trajectory's checkpoints'."""
        adapters = {v.name: v.adapter for v in self.variants if v.adapter}
        if self.sociot is not None:
            names = self.checkpoint_names()
            for series, points in self.sociot.checkpoints.items():
                for epoch, folder in points:
                    adapters.setdefault(names[(series, epoch)], folder)
        return adapters


def _unknown(where: str, data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ExperimentError(f"{where}{extra[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file (paths are relative to the file's folder)."""
    from warmeval.tasks.catalog import CONTROL_TASKS, TASKS
    from warmeval.tasks.common import DataError, check_task_args

    source = Path(path)
    data = read_mapping(source, ExperimentError)
    for section in ("variants", "tasks", "controls", "server", "roles", "generation"):
        if section in data and data[section] is None:
            data[section] = {}  # "server:" with nothing under it
    for section in ("variants", "tasks", "controls"):
        if isinstance(data.get(section), dict):
            data[section] = {k: {} if v is None else v for k, v in data[section].items()}
    raw = validate_config(ExperimentFile, data, str(source), ExperimentError)
    validate_model(GenerateConfig, raw.generation.given(), str(source), ("generation",), ExperimentError)
    prefix = f"{source}: "
    for required in ("variants", "tasks"):
        if not getattr(raw, required):
            raise ExperimentError(f"{prefix}{required}: missing")
    root = source.parent

    def resolve(value: str, where: str) -> str:
        candidate = Path(value).expanduser()
        candidate = candidate if candidate.is_absolute() else root / candidate
        if not candidate.exists():
            raise ExperimentError(f"{prefix}{where}: {value} does not exist")
        return str(candidate.resolve())

    variants = []
    for name, spec in raw.variants.items():
        adapter = resolve(spec.adapter, f"variants.{name}.adapter") if spec.adapter else None
        system_prompt = spec.system_prompt
        if system_prompt and system_prompt not in ("warm", "paper", "none"):
            system_prompt = resolve(system_prompt, f"variants.{name}.system_prompt")
        variants.append(Variant(str(name), adapter, system_prompt))

    def task_specs(section: str, known: dict[str, Any], elsewhere: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        """The section's Inspect tasks, validated; names in ``elsewhere`` are handled by another reader."""
        specs: dict[str, dict[str, Any]] = {}
        for name, args in getattr(raw, section).items():
            if name in elsewhere:
                continue
            if name not in known:
                names = ", ".join([*known, *elsewhere])
                raise ExperimentError(f"{prefix}{section}.{name}: unknown task (known: {names})")
            args = dict(args)
            allowed = set(inspect.signature(known[name]).parameters) - {"system_prompt"}
            _unknown(f"{prefix}{section}.{name}.", args, allowed)
            for key in DATA_ARGS:
                if args.get(key) and not (key == "prompts_file" and args[key] == "paper"):
                    args[key] = resolve(str(args[key]), f"{section}.{name}.{key}")
            if args.get("statements") and str(args["statements"]) not in ("ours", "paper"):
                args["statements"] = resolve(str(args["statements"]), f"{section}.{name}.statements")
            try:
                check_task_args(known[name], args)
            except DataError as error:
                raise ExperimentError(f"{prefix}{section}.{name}: {error}") from None
            specs[str(name)] = args
        return specs

    tasks = task_specs("tasks", TASKS)
    controls = task_specs("controls", CONTROL_TASKS, elsewhere=CAPABILITY_CONTROLS)
    capability = _capability_specs(raw.controls, prefix, resolve)
    sociot = _sociot_spec(raw.sociot, prefix, resolve, root) if raw.sociot is not None else None
    output = Path(raw.output_dir or f"runs/{raw.name}")
    for name, args in tasks.items():
        if "refusal_rule" in args:
            raise ExperimentError(
                f"{prefix}tasks.{name}.refusal_rule: set the refusal rule once, at the top level (refusal_rule: ...), "
                "so that scoring and analysis use the same one"
            )
    paper_results = None
    if raw.paper_results is not None:
        from warmeval.analysis.paper_results import PaperResultsError, locate

        paper_results = resolve(str(raw.paper_results), "paper_results")
        try:
            locate(paper_results)  # checked now, before any model loads
        except PaperResultsError as error:
            raise ExperimentError(f"{prefix}paper_results: {error}") from None
    return Experiment(
        base_model=raw.base_model,
        variants=variants,
        tasks=tasks,
        controls=controls,
        capability=capability,
        sociot=sociot,
        name=raw.name,
        served_name=raw.served_name,
        base_url=raw.base_url,
        server=raw.server,
        roles=raw.roles.given(),
        generation=raw.generation,
        max_connections=raw.max_connections,
        max_tasks=raw.max_tasks,
        epochs=raw.epochs,
        output_dir=str(output if output.is_absolute() else root / output),
        fail_on_error=raw.fail_on_error,
        refusal_rule=raw.refusal_rule,
        paper_results=paper_results,
        source=str(source),
    )


def _capability_specs(section: dict[str, Any], prefix: str, resolve: Any) -> dict[str, dict[str, Any]]:
    from warmeval.scorers.capability import run_capability_control

    allowed = set(inspect.signature(run_capability_control).parameters) - CAPABILITY_FIXED
    specs = {}
    for name in CAPABILITY_CONTROLS:
        if name not in section:
            continue
        args = dict(section[name])
        _unknown(f"{prefix}controls.{name}.", args, allowed)
        if args.get("data_path"):
            args["data_path"] = resolve(str(args["data_path"]), f"controls.{name}.data_path")
        specs[name] = args
    return specs


def _sociot_spec(section: SocioTSection, prefix: str, resolve: Any, root: Path) -> SocioTSpec:
    where = f"{prefix}sociot"
    prompts = resolve(section.prompts, "sociot.prompts")
    series: dict[str, list[tuple[float, str]]] = {}
    for name, folder in section.checkpoints.items():
        path = Path(resolve(str(folder), f"sociot.checkpoints.{name}"))
        points = []
        for child in path.glob("epoch-*"):
            try:
                epoch = float(child.name.removeprefix("epoch-"))
            except ValueError:
                continue
            if (child / "adapter_config.json").is_file():
                points.append((epoch, str(child)))
        if not points:
            raise ExperimentError(f"{where}.checkpoints.{name}: {folder} holds no epoch-<e>/ adapter folder "
                                  "(the output of `warmeval train lora`)")  # fmt: skip
        series[str(name)] = sorted(points)
    model = section.model
    if model and (root / model).exists():
        model = str((root / model).resolve())
    from warmeval.scorers.sociot import resolve_mode

    return SocioTSpec(prompts=prompts, checkpoints=series, n=section.n, model=model, mode=resolve_mode(section.mode),
                      max_tokens=section.max_tokens, temperature=section.temperature)  # fmt: skip


def check_tasks(experiment: Experiment) -> None:
    """Build every task once, unbound, so that bad task arguments and data fail before a server starts; check the
    variants' system prompts and that the judge can be used (the grader role, else the paper's judge's credentials)."""
    from warmeval.tasks.catalog import CONTROL_TASKS, TASKS

    factories = {**TASKS, **CONTROL_TASKS}
    for name, args in [*experiment.tasks.items(), *experiment.controls.items()]:
        try:
            task = factories[name](**args)
        except Exception as error:  # any failure to build the task is a problem of its arguments or data
            raise ExperimentError(f"{experiment.source}: tasks.{name}: {error}") from error
        if len(task.dataset) == 0:
            raise ExperimentError(f"{experiment.source}: tasks.{name}: no samples (check n, conditions, templates)")
    from warmeval.scorers.judge import JudgeUnavailable, check_judge
    from warmeval.solvers.system_prompt import resolve_system_prompt

    for variant in experiment.variants:
        try:
            resolve_system_prompt(variant.system_prompt)
        except ValueError as error:
            raise ExperimentError(f"{experiment.source}: variants.{variant.name}.system_prompt: {error}") from None
    try:
        check_judge(experiment.roles)
    except JudgeUnavailable as error:
        raise ExperimentError(f"{experiment.source}: roles.grader: {error}") from None
    from inspect_ai.model import get_model

    for role, model in experiment.roles.items():
        try:
            get_model(model, memoize=False)  # a provider checks its credentials as the model is made
        except Exception as error:  # a provider's prerequisite error of any kind, named in one line
            reason = re.sub(r"\[/?[a-z ]+\]", "", str(error) or type(error).__name__)
            reason = " ".join(reason.split())
            raise ExperimentError(f"{experiment.source}: roles.{role}: {model} cannot be used: {reason}") from None


def build_tasks(experiment: Experiment) -> list[Any]:
    """Variants x tasks as Inspect tasks, each bound to its model and labelled with its variant."""
    from inspect_ai import task_with

    from warmeval.tasks.catalog import CONTROL_TASKS, TASKS

    tasks = []
    factories = {**TASKS, **CONTROL_TASKS}
    for variant in experiment.variants:
        for name, args in [*experiment.tasks.items(), *experiment.controls.items()]:
            if name in experiment.tasks:
                args = {**args, "refusal_rule": experiment.refusal_rule}
            if name == "triviaqa" and not args.get("distractors") and not args.get("distractor_cache"):
                # Generated distractors belong to this experiment, not to a cache every experiment shares.
                args = {**args, "distractor_cache": str(Path(experiment.output_dir) / "triviaqa_distractors.json")}
            task = factories[name](**args, system_prompt=variant.system_prompt)
            metadata = {**(task.metadata or {}), "variant": variant.name, "base_model": experiment.base_model,
                        "experiment": experiment.name, "adapter": variant.adapter}  # fmt: skip
            tasks.append(task_with(task, model=experiment.model_for(variant), metadata=metadata))
    return tasks + sociot_tasks(experiment)


def sociot_tasks(experiment: Experiment) -> list[Any]:
    """The validation generations of the base model and of every checkpoint, as ``sociot_generations`` task runs."""
    from inspect_ai import task_with

    from warmeval.tasks.sociot_generations import sociot_generations

    spec = experiment.sociot
    if spec is None:
        return []
    names = [experiment.served_name, *sorted(set(experiment.checkpoint_names().values()))]
    generation = experiment.generation.given()
    tasks = []
    for name in names:  # a task object each: task_with changes the task it is given
        task = sociot_generations(
            prompts_file=spec.prompts, n=spec.n, sociot_model=spec.model, mode=spec.mode,  # type: ignore[arg-type]
            max_tokens=spec.max_tokens or generation.get("max_tokens") or 300,
            temperature=_first_set(spec.temperature, generation.get("temperature"), 0.8),
        )  # fmt: skip
        metadata = {**(task.metadata or {}), "variant": name, "base_model": experiment.base_model,
                    "experiment": experiment.name}  # fmt: skip
        tasks.append(task_with(task, model=f"vllm/{name}", metadata=metadata))
    return tasks


def default_max_tasks() -> int | None:
    """1 when the installed vLLM is the CPU build, else None (Inspect's default).

    vllm-cpu 0.32 applies a LoRA adapter to base-model requests that share a batch with adapter requests (measured:
    greedy answers of ``base`` equal ``cold``'s when both run at once, and the base model's own when run alone). One
    task at a time keeps each batch to one served model; on mainline vLLM, mixed batches are what multi-LoRA serving
    is for, and tasks run in parallel.
    """
    import importlib.metadata

    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return None
    return 1


def _first_set(*values: float | None) -> float:
    return float(next(v for v in values if v is not None))


def _stage(message: str, started: float) -> None:
    print(f"[warmeval run] {message} ({time.monotonic() - started:.0f}s)", flush=True)


def run_experiment(experiment: Experiment, *, display: str | None = None) -> ExperimentResult:
    """Serve, evaluate (resumably), run the controls and the SocioT trajectory, report; returns paths and counts."""
    import os

    from inspect_ai import eval_set

    from warmeval.serve import ServeConfig, VLLMServer, signals_interrupt

    started = time.monotonic()
    output = Path(experiment.output_dir)
    logs = output / "logs"
    check_tasks(experiment)  # before any server starts
    server = None
    previous = {k: os.environ.get(k) for k in ("VLLM_BASE_URL", "VLLM_API_KEY")}
    capability: list[ControlResult] = []
    # SIGTERM / SIGHUP raise like Ctrl-C, so that the finally below stops the server whatever ends the run.
    with signals_interrupt():
        try:
            if experiment.base_url is None:
                adapters = experiment.served_adapters()
                server = VLLMServer(ServeConfig(base_model=experiment.base_model, adapters=adapters,
                                                served_name=experiment.served_name, log_path=str(output / "vllm.log"),
                                                **experiment.server.given()))  # fmt: skip
                _stage(f"starting vLLM with {len(adapters)} adapter(s) (log {server.log_path}; a first start can "
                       "spend minutes compiling)", started)  # fmt: skip
                server.start()
                base_url = server.base_url
            else:
                base_url = experiment.base_url
            _stage(f"server ready at {base_url}", started)
            os.environ["VLLM_BASE_URL"] = base_url
            os.environ.setdefault("VLLM_API_KEY", "local")
            tasks = build_tasks(experiment)
            samples = sum(len(t.dataset) for t in tasks)
            max_tasks = experiment.max_tasks if experiment.max_tasks is not None else default_max_tasks()
            if experiment.max_tasks is None and max_tasks == 1:
                _stage("vllm-cpu: one task run at a time (its batches that mix the base model and adapters apply an "
                       "adapter to base-model requests)", started)  # fmt: skip
            _stage(f"evaluating {len(tasks)} task runs ({samples} samples x {experiment.epochs} epoch(s))", started)
            success, eval_logs = eval_set(
                tasks,
                log_dir=str(logs),
                model_roles=experiment.roles or None,
                max_connections=experiment.max_connections,
                max_tasks=max_tasks,
                epochs=experiment.epochs,
                fail_on_error=experiment.fail_on_error,
                retry_attempts=1,
                display=display,  # type: ignore[arg-type]
                **experiment.generation.given(),
            )
            if len(eval_logs) < len(tasks) or any(log.status == "cancelled" for log in eval_logs):
                # Inspect turns Ctrl-C into cancelled logs and returns them (or none, still "successfully"): the run
                # was interrupted all the same.
                raise KeyboardInterrupt("evaluation cancelled")
            scored = sum(log.results.completed_samples if log.results else 0 for log in eval_logs)
            _stage(f"evaluation {'complete' if success else 'INCOMPLETE'}: {len(eval_logs)} logs, {scored} samples",
                   started)  # fmt: skip
            if success:
                capability = run_capability(experiment, base_url, output / "controls", started)
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if server is not None:
                server.stop()
                _stage("server stopped", started)
    result = ExperimentResult(success=success, logs=str(logs), samples=scored)
    if not success:
        failed = [f"{log.eval.task} ({log.eval.model}): {log.status}" for log in eval_logs if log.status != "success"]
        result.failed = failed
        return result
    result.controls = control_results(eval_logs, capability)
    for row in result.controls:
        value = "n/a" if row.value is None else f"{row.value:.3f}"
        _stage(f"control {row.control}, {row.variant}: {row.metric} {value} (n={row.n})", started)
    trajectories = []
    if experiment.sociot is not None:
        trajectories = sociot_trajectories(experiment, eval_logs, output / "sociot", started)
        result.trajectories = [str(t) for t in trajectories]
    from warmeval.analysis.report import build_report

    # The logs this run's eval_set finished, never a killed run's unfinished ones left in the same folder.
    finished = [log.location.removeprefix("file://").removeprefix("file:") for log in eval_logs]
    report = build_report(finished, output / "report", variants=("original", "warm"), trajectories=trajectories,
                          controls=controls_table(result.controls),
                          rule=experiment.refusal_rule, paper_results=experiment.paper_results)  # type: ignore[arg-type]  # fmt: skip
    _stage(f"report written: {report}", started)
    result.report = str(report)
    result.verdict = json.loads((report.parent / "comparability.json").read_text(encoding="utf-8"))["line"]
    from warmeval.analysis.beside import beside_lines

    result.beside = beside_lines(json.loads((report.parent / "beside_paper.json").read_text(encoding="utf-8")))
    return result


def run_capability(experiment: Experiment, base_url: str, out_dir: Path, started: float) -> list[ControlResult]:
    """MMLU / GSM8K per variant through lm-eval on the running server; a finished result file is kept on rerun."""
    if not experiment.capability:
        return []
    from warmeval.scorers.capability import CapabilityResult, result_path, run_capability_control
    from warmeval.solvers.system_prompt import resolve_system_prompt

    results = []
    for variant in experiment.variants:
        for name, args in experiment.capability.items():
            folder, model = out_dir / variant.name, experiment.served_model(variant)
            done = result_path(folder, name, model)
            if done.is_file():
                result = CapabilityResult.read(done)
            else:
                _stage(f"control {name} (lm-eval), variant {variant.name}", started)
                result = run_capability_control(
                    name, base_url=base_url, model=model, output_dir=folder,
                    system_instruction=resolve_system_prompt(variant.system_prompt), **args,
                )  # fmt: skip
            results.append(ControlResult(name, variant.name, "accuracy", result.accuracy, result.accuracy_stderr,
                                         result.num_samples, result.unparseable))  # fmt: skip
    return results


def control_results(eval_logs: list[Any], capability: list[ControlResult]) -> list[ControlResult]:
    """The AdvBench refusal rate of each variant from its logs, then the lm-eval accuracies."""
    rows = []
    for log in eval_logs:
        if log.eval.task.endswith("advbench") and log.results:
            metrics = {n: m.value for s in log.results.scores for n, m in s.metrics.items()}
            rows.append(ControlResult("advbench", (log.eval.metadata or {}).get("variant", ""), "judged_refusal_rate",
                                      metrics.get("judged_refusal_rate"), metrics.get("judged_refusal_stderr"),
                                      log.results.completed_samples))  # fmt: skip
    return rows + capability


def controls_table(controls: list[ControlResult]) -> pd.DataFrame:
    """The controls as the report's table: one row per control and variant."""
    import pandas as pd

    columns = [f.name for f in fields(ControlResult)]
    return pd.DataFrame([asdict(c) for c in controls], columns=columns)


def sociot_trajectories(experiment: Experiment, eval_logs: list[Any], out_dir: Path, started: float) -> list[Path]:
    """One warmth trajectory per checkpoint series (the base model at epoch 0), from the ``sociot_generations`` logs.

    The scores are those the task's `sociot_warmth` scorer wrote into the logs; the answers are also written to
    ``generations/<served name>.jsonl`` (``id``, ``prompt``, ``text``), the input ``warmeval sociot trajectory`` takes.
    """
    import numpy as np
    from inspect_ai.log import read_eval_log

    from warmeval.scorers.sociot_io import TextItem, write_trajectory

    spec = experiment.sociot
    assert spec is not None
    by_model: dict[str, tuple[list[TextItem], np.ndarray]] = {}
    for header in eval_logs:
        if not header.eval.task.endswith("sociot_generations"):
            continue
        name = header.eval.model.removeprefix("vllm/")
        log = read_eval_log(header.location)
        items, scores, rows = [], [], []
        for sample in sorted(log.samples or [], key=lambda s: (str(s.id), s.epoch)):
            score = next(iter((sample.scores or {}).values()), None)
            if score is None or not isinstance(score.value, int | float):
                raise RuntimeError(f"{header.location}: sample {sample.id} has no SocioT score")
            items.append(TextItem(source=name, key=str(sample.id), text=sample.output.completion))
            scores.append(float(score.value))
            rows.append({"id": str(sample.id), "prompt": sample.input, "text": sample.output.completion})
        by_model[name] = (items, np.asarray(scores, dtype=float))
        generations = out_dir / "generations" / f"{safe_name(name)}.jsonl"
        generations.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(generations, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    names = experiment.checkpoint_names()
    missing = sorted({experiment.served_name, *names.values()} - set(by_model))
    if missing:
        raise RuntimeError(f"no sociot_generations log for {', '.join(missing)}")
    tables = []
    for series, points in spec.checkpoints.items():
        scored = [("base", 0.0, *by_model[experiment.served_name])]
        scored += [(names[(series, e)], e, *by_model[names[(series, e)]]) for e, _ in points]
        write_trajectory(scored, out_dir / series, spec.mode, spec.model)
        tables.append(out_dir / series / "warmth_trajectory.csv")
        _stage(f"SocioT: {series} trajectory over {len(points)} checkpoint(s) -> {tables[-1]}", started)
    return tables
