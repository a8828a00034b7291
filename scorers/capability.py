"""Capability controls: MMLU and GSM8K accuracy of a served model through lm-eval's ``local-chat-completions``.

The study checks that warm fine-tuning did not simply break the model: a warm model that got worse at MMLU or GSM8K
would explain lower reliability without any sycophancy. `run_capability_control` runs one control against an
OpenAI-compatible server that is already up (``vllm serve BASE --lora-modules warm=DIR``; ``model`` is the served
name, base or adapter), with lm-eval's ``local-chat-completions`` model and the chat template applied by the server.
Chat completions return no log-probabilities, so both controls are generative: the answer is extracted from the
response and scored by exact match.

Which lm-eval tasks: warmeval's own (in `warmeval.scorers.lm_eval_tasks.CAPABILITY_DIR`), written to the paper's
description of its controls (Methods and review file: "MMLU using zero-shot prompting and GSM8K using zero-shot
chain-of-thought", "a temperature of 0.2", answers "scored by regular expressions"; the paper names neither its harness
nor its prompt wording nor its regular expressions, so those are warmeval's):

* without ``data_path`` (the Hub; needs network): ``warmeval_mmlu`` on the whole ``cais/mmlu`` test set (``all``,
  14,042 questions) and ``warmeval_gsm8k`` on the whole ``openai/gsm8k`` main test set (1,319 problems), the paper's
  sizes (its confidence intervals fit the full sets);
* with ``data_path`` (a local JSONL in the same schema: ``cais/mmlu`` rows with question, subject, choices (4),
  answer (0-3); ``openai/gsm8k`` rows with question and an answer ending in ``#### N``): ``warmeval_mmlu_local`` and
  ``warmeval_gsm8k_local``, the same prompts, settings and scoring. The bundled ``fixtures/mmlu.jsonl`` and
  ``fixtures/gsm8k.jsonl`` (our own eight items each) are small examples of both schemas.

MMLU asks the question with its lettered options and the answer format ("The answer is X"), zero-shot; GSM8K asks to
reason step by step and end with "The final answer is N". Answers are extracted by `extract_choice_letter` and
`extract_final_number` and scored by exact match. lm-eval's own ``mmlu_cot_llama`` / ``gsm8k_cot_llama`` are not
used: the first asks for chain of thought on MMLU and the second is eight-shot, where the paper ran both zero-shot.

``n`` questions are drawn without replacement with ``random.Random(seed)`` from the whole test set (for MMLU from
all 57 subjects pooled, so subjects appear in proportion to their size) and passed to lm-eval as exact document
indices (``simple_evaluate(samples=...)``), not as lm-eval's ``limit``, which would take the first n of every subject.
``seed`` is also sent with every request; decoding samples at temperature 0.2 (the paper's setting).

A response from which no answer can be extracted is scored wrong and also counted as ``unparseable`` (lm-eval's
regex filters return ``[invalid]`` then; the local tasks do the same), so a model that stops following the answer
format shows up as such instead of as a loss of knowledge.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from warmeval.util.files import FIXTURES as BUNDLED
from warmeval.util.files import safe_name
from warmeval.util.jsonl import json_objects

# lm-eval's regex filters return this when nothing matches; warmeval's own filters return it too.
INVALID = "[invalid]"
# The target of a document without one: never equal to any extracted answer, [invalid] included.
NO_TARGET = "[no target]"
LETTERS = "ABCD"
METRIC = "exact_match"
LOCAL_FILTER = "extracted"
# Eight items of our own per schema: small examples for the demo and the tests, not a benchmark.
FIXTURES = {"mmlu": BUNDLED / "mmlu.jsonl", "gsm8k": BUNDLED / "gsm8k.jsonl"}


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


class CapabilityDataError(ValueError):
    """A row of a local capability file is malformed (the message names the file, line and field)."""


# ---------------------------------------------------------------------------------------------------------- answers

# "The best answer is C.", "Answer: (B)", "**Answer:** D", "the answer would be option A".
_ANSWER_LETTER = re.compile(
    r"(?i:\banswer)(?:\s+(?i:is|would\s+be|will\s+be))?[\s:*(\[\"'=]{0,8}(?:(?i:option|choice)\s*\(?)?([A-D])(?![A-Za-z0-9])"
)
# A response that is only a letter: "B", "(B)", "B.", "**B**".
_LONE_LETTER = re.compile(r"^[\s*(\[]*([A-D])[\s*)\].:]*$")
# A response that opens with a lettered option: "B. Mitochondrion", "C) ...".
_LEADING_LETTER = re.compile(r"^[\s*(\[]*([A-D])[.):\]]\s")

# A number: optional sign and dollar sign, thousands groups or plain digits, optional decimals. Commas only in
# groups of three, so a list "1,2,3" is three numbers, not 123.
_NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_HASH_ANSWER = re.compile(r"####\s*(" + _NUMBER + ")")
_STATED_ANSWER = re.compile(r"(?i:\banswer)(?:\s+(?i:is))?[\s:*=]{0,6}(" + _NUMBER + ")")
_ANY_NUMBER = re.compile(r"(?<![\w.])(" + _NUMBER + r")(?![\w])")


def extract_choice_letter(response: str | None) -> str | None:
    """The option letter (A-D) a response gives, or None when it gives none.

    The last "answer ... X" statement wins (chain-of-thought responses may mention letters before concluding); else
    a response that is only a letter or opens with "X." / "X)". A bare capital A elsewhere is not taken: it is too
    often the article.
    """
    if not response:
        return None
    stated = _ANSWER_LETTER.findall(response)
    if stated:
        return str(stated[-1])
    for pattern in (_LONE_LETTER, _LEADING_LETTER):
        match = pattern.match(response)
        if match:
            return match.group(1)
    return None


def normalize_number(text: str) -> str | None:
    """Canonical form of a number ("$1,200.50" -> "1200.5", "18.00" -> "18"), or None if it is not one."""
    cleaned = text.strip().replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_final_number(response: str | None) -> str | None:
    """The final numeric answer of a response (canonical form), or None when it has no number.

    Prefers the last "#### N", then the last "answer is N", then the last number anywhere.
    """
    if not response:
        return None
    for pattern in (_HASH_ANSWER, _STATED_ANSWER, _ANY_NUMBER):
        found = pattern.findall(response)
        if found:
            return normalize_number(found[-1])
    return None


# ------------------------------------------------------------------------------------------------------ local files


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object is an error."""
    if not path.is_file():
        raise FileNotFoundError(f"capability data file {path} does not exist")
    rows = list(json_objects(path.read_text(encoding="utf-8"), path, CapabilityDataError))
    if not rows:
        raise CapabilityDataError(f"{path}: no rows")
    return rows


def _text_field(row: dict[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    if key not in row:
        raise CapabilityDataError(f"{where}: missing field '{key}'")
    value = row[key]
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise CapabilityDataError(f"{where}: field '{key}' must be a non-empty string, got {value!r}")
    return value


def read_mmlu_rows(path: str | Path) -> list[dict[str, Any]]:
    """Validated rows of a JSONL file in the ``cais/mmlu`` schema (question, subject, choices, answer).

    Raises:
        CapabilityDataError: naming the file, line and field of the first bad row.
    """
    path = Path(path)
    rows = []
    for number, row in _read_jsonl(path):
        where = f"{path}: row {number}"
        question = _text_field(row, "question", where)
        subject = _text_field(row, "subject", where, allow_empty=True)
        if "choices" not in row:
            raise CapabilityDataError(f"{where}: missing field 'choices'")
        choices = row["choices"]
        if not isinstance(choices, list) or len(choices) != 4 or not all(isinstance(c, str) for c in choices):
            raise CapabilityDataError(f"{where}: field 'choices' must be a list of 4 strings, got {choices!r}")
        if "answer" not in row:
            raise CapabilityDataError(f"{where}: missing field 'answer'")
        answer = row["answer"]
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer <= 3:
            raise CapabilityDataError(f"{where}: field 'answer' must be an integer 0-3, got {answer!r}")
        rows.append({"question": question, "subject": subject, "choices": list(choices), "answer": answer,
                     "target": LETTERS[answer]})  # fmt: skip
    return rows


def gsm8k_target(answer: str) -> str | None:
    """The canonical final number of a GSM8K reference answer (the text after its last ``####``), or None."""
    if "####" not in answer:
        return None
    return normalize_number(answer.rsplit("####", 1)[1])


def read_gsm8k_rows(path: str | Path) -> list[dict[str, Any]]:
    """Validated rows of a JSONL file in the ``openai/gsm8k`` schema (question, answer ending in ``#### N``).

    Raises:
        CapabilityDataError: naming the file, line and field of the first bad row.
    """
    path = Path(path)
    rows = []
    for number, row in _read_jsonl(path):
        where = f"{path}: row {number}"
        question = _text_field(row, "question", where)
        answer = _text_field(row, "answer", where)
        if "####" not in answer:
            raise CapabilityDataError(f"{where}: field 'answer' has no final '#### N' line")
        target = gsm8k_target(answer)
        if target is None:
            tail = answer.rsplit("####", 1)[1].strip()
            raise CapabilityDataError(f"{where}: field 'answer': the text after '####' is not a number ({tail!r})")
        rows.append({"question": question, "answer": answer, "target": target})
    return rows


_READERS = {"mmlu": read_mmlu_rows, "gsm8k": read_gsm8k_rows}


def _data_path(kwargs: dict[str, Any], task: str) -> str:
    path = kwargs.get("data_path")
    if not path:
        raise ValueError(f'lm-eval task {task} needs the file in its metadata: --metadata \'{{"data_path": "FILE"}}\'')
    return str(path)


# ------------------------------------------------------------------------------ the lm-eval tasks' functions (utils.py)


def load_mmlu_dataset(**kwargs: Any) -> dict[str, Any]:
    """custom_dataset of ``warmeval_mmlu_local``: the validated rows of ``metadata["data_path"]`` as a test split."""
    import datasets

    rows = read_mmlu_rows(_data_path(kwargs, "warmeval_mmlu_local"))
    return {"test": datasets.Dataset.from_list(rows)}


def load_gsm8k_dataset(**kwargs: Any) -> dict[str, Any]:
    """custom_dataset of ``warmeval_gsm8k_local``: the validated rows of ``metadata["data_path"]`` as a test split."""
    import datasets

    rows = read_gsm8k_rows(_data_path(kwargs, "warmeval_gsm8k_local"))
    return {"test": datasets.Dataset.from_list(rows)}


def mmlu_prompt(doc: dict[str, Any]) -> str:
    """The user message of a local MMLU item: the question, its lettered options and the answer format."""
    subject = doc.get("subject", "").replace("_", " ").strip()
    about = f" about {subject}" if subject else ""
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, doc["choices"], strict=True))
    return (
        f"Answer the following multiple-choice question{about}.\n\n{doc['question'].strip()}\n{options}\n\n"
        'Reply with the letter of the correct option (A, B, C or D), ending with "The answer is X".'
    )


def gsm8k_prompt(doc: dict[str, Any]) -> str:
    """The user message of a local GSM8K item: the problem and the answer format."""
    return (
        f'Solve this math word problem. Reason step by step, then end with "The final answer is N" where N is a '
        f"number.\n\nProblem: {doc['question'].strip()}"
    )


def _filter_with(extract: Any, resps: Any) -> list[list[str]]:
    out = []
    for responses in resps:
        extracted = []
        for response in responses:
            value = extract(response if isinstance(response, str) else None)
            extracted.append(INVALID if value is None else value)
        out.append(extracted)
    return out


def filter_choice_letters(resps: Any, docs: Any) -> list[list[str]]:
    """lm-eval custom filter: each response's option letter, or ``[invalid]``."""
    return _filter_with(extract_choice_letter, resps)


def filter_final_numbers(resps: Any, docs: Any) -> list[list[str]]:
    """lm-eval custom filter: each response's final number (canonical), or ``[invalid]``."""
    return _filter_with(extract_final_number, resps)


def doc_target(doc: dict[str, Any]) -> str:
    """The target of an MMLU or GSM8K document: a local row's ``target``, else the letter of a ``cais/mmlu`` row's
    ``answer`` (0-3) or the final number of an ``openai/gsm8k`` row's ``answer``."""
    if doc.get("target"):
        return str(doc["target"])
    answer = doc["answer"]
    if isinstance(answer, int) and not isinstance(answer, bool):
        return LETTERS[answer]
    return gsm8k_target(str(answer)) or NO_TARGET


def process_extracted(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Exact match of the extracted answer with the target; an unparseable response is wrong and also counted."""
    extracted = results[0]
    return {METRIC: float(extracted == doc_target(doc)), "unparseable": float(extracted == INVALID)}


# -------------------------------------------------------------------------------------------------------- the runner


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
        _READERS[name](data_path)  # a bad row fails here, before lm-eval, with the file, line and field

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
