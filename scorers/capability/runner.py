"""Running one control through lm-eval against a served model (`run_capability_control`) and its result."""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from warmeval.scorers.capability.data import READERS
from warmeval.scorers.capability.extract import INVALID, METRIC
from warmeval.util.files import safe_name

LOCAL_FILTER = "extracted"


@dataclass(frozen=True)
class Control:
    """One capability control: the lm-eval task (Hub) and warmeval's task (local file), with the filter scored."""

    hub_task: str
    hub_filter: str
    hub_dataset: str
    local_task: str
    local_filter: str = LOCAL_FILTER


CONTROLS: dict[str, Control] = {
    "mmlu": Control(hub_task="warmeval_mmlu", hub_filter=LOCAL_FILTER, hub_dataset="cais/mmlu",
                    local_task="warmeval_mmlu_local"),
    "gsm8k": Control(hub_task="warmeval_gsm8k", hub_filter=LOCAL_FILTER, hub_dataset="openai/gsm8k",
                     local_task="warmeval_gsm8k_local"),
}  # fmt: skip


@dataclass
class CapabilityResult:
    """One control's result for one served model, as written to ``<name>__<model>.json``.

    Attributes:
        task: The control (``mmlu`` or ``gsm8k``).
        lm_eval_task: The lm-eval task that ran (warmeval_mmlu / warmeval_gsm8k on the Hub, or their _local twins).
        source: The local data file, or the Hub dataset.
        model: The served model name.
        base_url: The server's OpenAI base URL.
        n: Questions requested (None: all).
        seed: Seed of the draw, also sent with every request.
        num_samples: Questions scored.
        metric: The lm-eval metric scored.
        filter: The lm-eval filter scored.
        accuracy: Share of questions answered correctly (None when none was scored).
        accuracy_stderr: Its standard error.
        unparseable: Answers from which no letter or number could be extracted (scored wrong).
        unparseable_rate: Their share.
        doc_ids: The drawn documents, per lm-eval task.
        max_gen_toks: The generation length override (None: the task's).
        system_instruction: The system prompt sent with every question (None: none).
        lm_eval_results: lm-eval's own per-task results.
        lm_eval_version: The lm-eval version that ran.
        samples_path: The per-question samples (JSONL).
    """

    task: str
    lm_eval_task: str
    source: str
    model: str
    base_url: str
    n: int | None
    seed: int
    num_samples: int
    metric: str
    filter: str
    accuracy: float | None
    accuracy_stderr: float | None
    unparseable: int
    unparseable_rate: float | None
    doc_ids: dict[str, list[int]]
    max_gen_toks: int | None
    system_instruction: str | None
    lm_eval_results: dict[str, Any]
    lm_eval_version: str
    samples_path: str

    def to_json(self) -> dict[str, Any]:
        """The result file's content."""
        return asdict(self)

    @classmethod
    def read(cls, path: str | Path) -> CapabilityResult:
        """A result file written by `run_capability_control`."""
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def _draw(sizes: dict[str, int], n: int | None, seed: int) -> dict[str, list[int]] | None:
    """Seeded sample of n documents from the pooled tasks: {task: sorted indices}; None means every document.

    Indices are sorted because lm-eval maps its running position back to the document id through this list.
    """
    total = sum(sizes.values())
    if n is None or n >= total:
        return None
    pool = [(task, index) for task in sorted(sizes) for index in range(sizes[task])]
    chosen: dict[str, list[int]] = {}
    for task, index in random.Random(seed).sample(pool, n):
        chosen.setdefault(task, []).append(index)
    return {task: sorted(indices) for task, indices in chosen.items()}


def _load_tasks(control: Control, name: str, data_path: str | None) -> tuple[Any, dict[str, Any]]:
    """The TaskManager and the leaf tasks ({name: Task}) of a control, datasets loaded."""
    from lm_eval.tasks import TaskManager

    from warmeval.scorers.lm_eval_tasks import CAPABILITY_DIR as TASKS_DIR

    # Only warmeval's folder: indexing all of lm-eval's task YAMLs takes seconds and is not needed here.
    if data_path is not None:
        manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_path": data_path})
        return manager, manager.load([control.local_task])["tasks"]
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    try:
        loaded = manager.load([control.hub_task])
    except Exception as exc:  # datasets raises ConnectionError, OfflineModeIsEnabled, DatasetNotFoundError...
        raise RuntimeError(
            f"could not load the {name} control's lm-eval task {control.hub_task} (dataset {control.hub_dataset} "
            f"from the Hugging Face Hub): {type(exc).__name__}: {exc}. Offline (HF_HUB_OFFLINE / "
            f"HF_DATASETS_OFFLINE) or without network, pass data_path= a local JSONL in the "
            f"{'cais/mmlu' if name == 'mmlu' else 'openai/gsm8k'} schema instead."
        ) from exc
    return manager, loaded["tasks"]


def _stderr(values: list[float]) -> float | None:
    """Standard error of a mean (sample SD / sqrt(n)), as lm-eval computes it; None below two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(variance / len(values))


def run_capability_control(
    name: str,
    *,
    base_url: str,
    model: str,
    output_dir: str | Path,
    n: int | None = None,
    seed: int = 0,
    data_path: str | Path | None = None,
    num_concurrent: int = 4,
    max_gen_toks: int | None = None,
    max_retries: int = 3,
    timeout: int = 300,
    system_instruction: str | None = None,
) -> CapabilityResult:
    """Run one capability control (MMLU or GSM8K) against a running OpenAI-compatible server.

    Args:
        name: ``mmlu`` or ``gsm8k``.
        base_url: The server's OpenAI base URL, e.g. ``http://127.0.0.1:8000/v1``.
        model: The served model name (the base model's, or a LoRA adapter's from ``--lora-modules``).
        output_dir: Where ``<name>__<model>.json`` and ``<name>__<model>.samples.jsonl`` go (the model name made
            file-safe: runs of characters other than letters, digits, ``.``, ``_``, ``-`` become ``_``).
        n: Questions to draw (seeded, without replacement, from the whole test set); None for all.
        seed: Seed of the draw, also sent with every request.
        data_path: A local JSONL in the ``cais/mmlu`` / ``openai/gsm8k`` schema; None for the whole Hub test set.
        num_concurrent: Concurrent requests to the server.
        max_gen_toks: Override of the tasks' generation length (256 for MMLU, 512 for GSM8K). Keep prompt + this
            under the server's max model length.
        max_retries: Attempts per request before lm-eval gives up.
        timeout: Seconds per request.
        system_instruction: A system prompt sent with every question (the warm system-prompt control variant).

    Returns:
        The result, also written to ``<name>__<model>.json`` (`CapabilityResult.to_json`).

    Raises:
        ValueError: An unknown control name or a bad ``n``.
        CapabilityDataError: A malformed row in ``data_path``.
        RuntimeError: The Hub task's dataset could not be loaded (e.g. offline without ``data_path``).
    """
    if name not in CONTROLS:
        raise ValueError(f"unknown capability control {name!r}; known: {', '.join(sorted(CONTROLS))}")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of questions or None (all), got {n}")
    control = CONTROLS[name]
    if data_path is not None:
        data_path = str(Path(data_path).expanduser().resolve())
        READERS[name](data_path)  # a bad row fails here, before lm-eval, with the file, line and field

    manager, leaf_tasks = _load_tasks(control, name, data_path)
    return _evaluate(
        name,
        lm_eval_task=control.local_task if data_path is not None else control.hub_task,
        source=data_path if data_path is not None else control.hub_dataset,
        manager=manager,
        leaf_tasks=leaf_tasks,
        score_filter=control.local_filter if data_path is not None else control.hub_filter,
        base_url=base_url,
        model=model,
        output_dir=output_dir,
        n=n,
        seed=seed,
        num_concurrent=num_concurrent,
        max_gen_toks=max_gen_toks,
        max_retries=max_retries,
        timeout=timeout,
        system_instruction=system_instruction,
    )


def result_path(output_dir: str | Path, name: str, model: str) -> Path:
    """Where `run_capability_control` writes the result of control ``name`` for served ``model``."""
    return Path(output_dir) / f"{name}__{safe_name(model)}.json"


def _evaluate(
    name: str,
    *,
    lm_eval_task: str,
    source: str,
    manager: Any,
    leaf_tasks: dict[str, Any],
    score_filter: str,
    base_url: str,
    model: str,
    output_dir: str | Path,
    n: int | None,
    seed: int,
    num_concurrent: int,
    max_gen_toks: int | None,
    max_retries: int,
    timeout: int,
    system_instruction: str | None = None,
) -> CapabilityResult:
    """Draw, run lm-eval on the drawn documents of the leaf tasks, score one filter, write the two files."""
    import lm_eval
    from lm_eval import simple_evaluate
    from lm_eval.utils import handle_non_serializable

    sizes = {task_name: len(task.eval_docs) for task_name, task in leaf_tasks.items()}
    chosen = _draw(sizes, n, seed)
    # lm-eval evaluates every document of a task given no indices (or an empty list): pass only the drawn tasks.
    selected = [leaf_tasks[t] for t in sorted(leaf_tasks) if chosen is None or t in chosen]
    expected = sum(sizes.values()) if chosen is None else sum(len(ids) for ids in chosen.values())

    model_args: dict[str, Any] = {
        "model": model,
        "base_url": f"{base_url.rstrip('/')}/chat/completions",
        "num_concurrent": num_concurrent,
        "max_retries": max_retries,
        "timeout": timeout,
        "seed": seed,
        # The server applies the chat template and tokenizes: no local tokenizer, nothing fetched from the Hub.
        "tokenizer_backend": None,
        "tokenized_requests": False,
    }
    results = simple_evaluate(
        model="local-chat-completions",
        model_args=model_args,
        tasks=selected,
        task_manager=manager,
        samples=chosen,
        apply_chat_template=True,
        system_instruction=system_instruction,
        fewshot_as_multiturn=True,
        gen_kwargs={"max_gen_toks": max_gen_toks} if max_gen_toks is not None else None,
        log_samples=True,
    )
    if results is None:  # only non-zero ranks of a distributed run get None; this is a single process
        raise RuntimeError("lm-eval returned no results")

    scored = [
        {"task": task_name, **sample}
        for task_name in sorted(results.get("samples", {}))
        for sample in results["samples"][task_name]
        if sample.get("filter") == score_filter
    ]
    if len(scored) != expected:  # never report a mean over fewer questions than were asked
        raise RuntimeError(f"lm-eval scored {len(scored)} documents with filter {score_filter!r}, expected {expected}")
    correct = [float(sample[METRIC]) for sample in scored]
    unparseable = sum(1 for sample in scored if sample["filtered_resps"][0] == INVALID)
    doc_ids: dict[str, list[int]] = {}
    for sample in scored:
        doc_ids.setdefault(sample["task"], []).append(int(sample["doc_id"]))

    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{name}__{safe_name(model)}"
    samples_path = out_dir / f"{stem}.samples.jsonl"
    with samples_path.open("w", encoding="utf-8") as handle:
        for sample in scored:
            handle.write(json.dumps(sample, default=handle_non_serializable, ensure_ascii=False) + "\n")

    summary = CapabilityResult(
        task=name,
        lm_eval_task=lm_eval_task,
        source=source,
        model=model,
        base_url=base_url,
        n=n,
        seed=seed,
        num_samples=len(scored),
        metric=METRIC,
        filter=score_filter,
        accuracy=sum(correct) / len(correct) if correct else None,
        accuracy_stderr=_stderr(correct),
        unparseable=unparseable,
        unparseable_rate=unparseable / len(scored) if scored else None,
        doc_ids=doc_ids,
        max_gen_toks=max_gen_toks,
        system_instruction=system_instruction,
        lm_eval_results=json.loads(json.dumps(results["results"], default=handle_non_serializable)),
        lm_eval_version=lm_eval.__version__,
        samples_path=str(samples_path),
    )
    result_path(out_dir, name, model).write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
    return summary
