"""The controls' data: local MMLU and GSM8K readers (errors name the file, row and field) and the hooks lm-eval's
task YAMLs call (datasets, prompts, answer filters, targets, scoring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warmeval.scorers.capability.extract import (
    INVALID,
    LETTERS,
    METRIC,
    NO_TARGET,
    extract_choice_letter,
    extract_final_number,
    normalize_number,
)
from warmeval.util.files import FIXTURES as BUNDLED
from warmeval.util.jsonl import json_objects

# Eight items of our own per schema: small examples for the demo and the tests, not a benchmark.
FIXTURES = {"mmlu": BUNDLED / "mmlu.jsonl", "gsm8k": BUNDLED / "gsm8k.jsonl"}


class CapabilityDataError(ValueError):
    """A row of a local capability file is malformed (the message names the file, line and field)."""


# ---------------------------------------------------------------------------------------------------------- answers

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


READERS = {"mmlu": read_mmlu_rows, "gsm8k": read_gsm8k_rows}


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


