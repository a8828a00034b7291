"""One experiment file: the base model, its variants, the tasks and the judges; `run_experiment` runs all of it.

The YAML (``warmeval init`` writes a commented example) is validated before anything starts: an unknown key or a
missing file is an error naming its key path (``variants.warm.adapter``). `run_experiment` serves every variant from
one vLLM server (or uses ``base_url``), runs variants x tasks through Inspect's ``eval_set`` (logs in
``output_dir/logs``; rerunning resumes: finished logs are kept, unfinished samples are redone, nothing is
duplicated), and writes the report.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOP_KEYS = {"name", "base_model", "served_name", "base_url", "server", "variants", "tasks", "controls", "roles",
            "generation", "max_connections", "epochs", "output_dir", "fail_on_error"}  # fmt: skip
SERVER_KEYS = {"host", "port", "max_model_len", "dtype", "tensor_parallel_size", "extra_args", "startup_timeout"}
VARIANT_KEYS = {"adapter", "system_prompt"}
ROLE_KEYS = {"grader", "distractor"}
GENERATION_KEYS = {"max_tokens", "temperature", "top_p", "seed", "max_retries", "timeout"}
DATA_ARGS = ("data_path", "prompts_file", "distractors")

EXAMPLE = """\
# warmeval experiment: the design of Ibrahim, Hafner & Rocher (Nature 2026) on one base model.
# Run with: warmeval run experiment.yaml   (rerunning resumes where it stopped)
name: warm-study
base_model: meta-llama/Llama-3.1-8B-Instruct   # HF id or local folder, served by vLLM
served_name: base                             # the base model's name on the server
# base_url: http://127.0.0.1:8000/v1          # use a server you started yourself (warmeval serve) instead
server:                                       # options of the vLLM server warmeval starts
  host: 127.0.0.1
  port: 8000
  max_model_len: 4096
  tensor_parallel_size: 1                     # GPUs per model for large models
variants:                                     # each name is one row of the analysis
  original: {}
  warm: {adapter: adapters/warm/epoch-2}      # LoRA folders from `warmeval train lora`
  cold: {adapter: adapters/cold/epoch-2}
  warm_sysprompt: {system_prompt: warm}       # the warm system-prompt control, no fine-tuning
tasks:                                        # -T arguments of each Inspect task
  triviaqa: {n: 500, seed: 0, conditions: all, templates: all}
  truthfulqa: {n: 500, seed: 0, conditions: all, templates: all}
  disinfo: {seed: 0, conditions: all, templates: all}
  medqa_conv: {n: 500, seed: 0, conditions: all, templates: all}
controls:                                     # safety control on the same server (refusal rate)
  advbench: {n: 100, seed: 0}
roles:                                        # Inspect model roles
  grader: openai/gpt-4o
  distractor: openai/gpt-4o
generation: {max_tokens: 300, temperature: 0.8, max_retries: 5, timeout: 600}
max_connections: 32
epochs: 1
output_dir: runs/warm-study
"""


class ExperimentError(ValueError):
    """A bad experiment file: the message names the key path."""


@dataclass
class Variant:
    name: str
    adapter: str | None = None
    system_prompt: str | None = None


@dataclass
class Experiment:
    base_model: str
    variants: list[Variant]
    tasks: dict[str, dict[str, Any]]
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = "experiment"
    served_name: str = "base"
    base_url: str | None = None
    server: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    max_connections: int = 16
    epochs: int = 1
    output_dir: str = "runs/experiment"
    fail_on_error: bool | float = True
    source: str = ""

    def model_for(self, variant: Variant) -> str:
        return f"vllm/{variant.name if variant.adapter else self.served_name}"


def _unknown(where: str, data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ExperimentError(f"{where}{extra[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExperimentError(f"{where}: expected a mapping")
    return value


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file (paths are relative to the file's folder)."""
    from warmeval.tasks._registry import CONTROL_TASKS, TASKS

    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ExperimentError(f"{source}: cannot read ({error})") from error
    data = _mapping(data, str(source))
    prefix = f"{source}: "
    _unknown(prefix, data, TOP_KEYS)
    for required in ("base_model", "variants", "tasks"):
        if not data.get(required):
            raise ExperimentError(f"{prefix}{required}: missing")
    root = source.parent

    def resolve(value: str, where: str) -> str:
        candidate = Path(value).expanduser()
        candidate = candidate if candidate.is_absolute() else root / candidate
        if not candidate.exists():
            raise ExperimentError(f"{prefix}{where}: {value} does not exist")
        return str(candidate.resolve())

    server = _mapping(data.get("server"), f"{prefix}server")
    _unknown(f"{prefix}server.", server, SERVER_KEYS)
    variants = []
    for name, spec in _mapping(data["variants"], f"{prefix}variants").items():
        spec = _mapping(spec, f"{prefix}variants.{name}")
        _unknown(f"{prefix}variants.{name}.", spec, VARIANT_KEYS)
        adapter = resolve(spec["adapter"], f"variants.{name}.adapter") if spec.get("adapter") else None
        system_prompt = spec.get("system_prompt")
        if system_prompt and system_prompt not in ("warm", "none"):
            system_prompt = resolve(system_prompt, f"variants.{name}.system_prompt")
        variants.append(Variant(str(name), adapter, system_prompt))

    def task_specs(section: str, known: dict[str, Any]) -> dict[str, dict[str, Any]]:
        specs: dict[str, dict[str, Any]] = {}
        for name, args in _mapping(data.get(section), f"{prefix}{section}").items():
            if name not in known:
                raise ExperimentError(f"{prefix}{section}.{name}: unknown task (known: {', '.join(known)})")
            args = dict(_mapping(args, f"{prefix}{section}.{name}"))
            allowed = set(inspect.signature(known[name]).parameters) - {"system_prompt"}
            _unknown(f"{prefix}{section}.{name}.", args, allowed)
            for key in DATA_ARGS:
                if args.get(key):
                    args[key] = resolve(str(args[key]), f"{section}.{name}.{key}")
            specs[str(name)] = args
        return specs

    tasks = task_specs("tasks", TASKS)
    controls = task_specs("controls", CONTROL_TASKS)
    roles = _mapping(data.get("roles"), f"{prefix}roles")
    _unknown(f"{prefix}roles.", roles, ROLE_KEYS)
    generation = _mapping(data.get("generation"), f"{prefix}generation")
    _unknown(f"{prefix}generation.", generation, GENERATION_KEYS)
    output = Path(data.get("output_dir") or f"runs/{data.get('name', 'experiment')}")
    return Experiment(
        base_model=str(data["base_model"]),
        variants=variants,
        tasks=tasks,
        controls=controls,
        name=str(data.get("name", "experiment")),
        served_name=str(data.get("served_name", "base")),
        base_url=data.get("base_url"),
        server=server,
        roles={k: str(v) for k, v in roles.items()},
        generation=generation,
        max_connections=int(data.get("max_connections", 16)),
        epochs=int(data.get("epochs", 1)),
        output_dir=str(output if output.is_absolute() else root / output),
        fail_on_error=data.get("fail_on_error", True),
        source=str(source),
    )


def build_tasks(experiment: Experiment) -> list[Any]:
    """Variants x tasks as Inspect tasks, each bound to its model and labelled with its variant."""
    from inspect_ai import task_with

    from warmeval.tasks._registry import CONTROL_TASKS, TASKS

    tasks = []
    factories = {**TASKS, **CONTROL_TASKS}
    for variant in experiment.variants:
        for name, args in [*experiment.tasks.items(), *experiment.controls.items()]:
            task = factories[name](**args, system_prompt=variant.system_prompt)
            metadata = {**(task.metadata or {}), "variant": variant.name, "base_model": experiment.base_model,
                        "experiment": experiment.name}  # fmt: skip
            tasks.append(task_with(task, model=experiment.model_for(variant), metadata=metadata))
    return tasks


def _stage(message: str, started: float) -> None:
    print(f"[warmeval run] {message} ({time.monotonic() - started:.0f}s)", flush=True)


def run_experiment(experiment: Experiment, *, display: str | None = None) -> dict[str, Any]:
    """Serve, evaluate (resumably), analyse; returns paths and counts."""
    import os

    from inspect_ai import eval_set

    from warmeval.serve import ServeConfig, VLLMServer

    started = time.monotonic()
    output = Path(experiment.output_dir)
    logs = output / "logs"
    server = None
    if experiment.base_url is None:
        adapters = {v.name: v.adapter for v in experiment.variants if v.adapter}
        server = VLLMServer(ServeConfig(base_model=experiment.base_model, adapters=adapters,  # type: ignore[arg-type]
                                        served_name=experiment.served_name, log_path=str(output / "vllm.log"),
                                        **experiment.server))  # fmt: skip
        _stage(f"starting vLLM with {len(adapters)} adapter(s)", started)
        server.start()
        base_url = server.base_url
    else:
        base_url = experiment.base_url
    _stage(f"server ready at {base_url}", started)
    previous = {k: os.environ.get(k) for k in ("VLLM_BASE_URL", "VLLM_API_KEY")}
    os.environ["VLLM_BASE_URL"] = base_url
    os.environ.setdefault("VLLM_API_KEY", "local")
    try:
        tasks = build_tasks(experiment)
        samples = sum(len(t.dataset) for t in tasks)
        _stage(f"evaluating {len(tasks)} task runs ({samples} samples x {experiment.epochs} epoch(s))", started)
        success, eval_logs = eval_set(
            tasks,
            log_dir=str(logs),
            model_roles=experiment.roles or None,
            max_connections=experiment.max_connections,
            epochs=experiment.epochs,
            fail_on_error=experiment.fail_on_error,
            retry_attempts=1,
            display=display,  # type: ignore[arg-type]
            **experiment.generation,
        )
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if server is not None:
            server.stop()
            _stage("server stopped", started)
    scored = sum(log.results.completed_samples if log.results else 0 for log in eval_logs)
    _stage(f"evaluation {'complete' if success else 'INCOMPLETE'}: {len(eval_logs)} logs, {scored} samples", started)
    for log in eval_logs:
        if log.eval.task.endswith("advbench") and log.results:
            rate = {n: m.value for s in log.results.scores for n, m in s.metrics.items()}.get("refusal_rate")
            _stage(f"control advbench, {(log.eval.metadata or {}).get('variant')}: refusal rate {rate}", started)
    result: dict[str, Any] = {"success": success, "logs": str(logs), "samples": scored}
    if not success:
        failed = [f"{log.eval.task} ({log.eval.model}): {log.status}" for log in eval_logs if log.status != "success"]
        result["failed"] = failed
        return result
    from warmeval.analysis.report import build_report

    report = build_report([logs], output / "report", variants=("original", "warm"))
    _stage(f"report written: {report}", started)
    result["report"] = str(report)
    return result
