"""Shared loading, validation and sampling for the four reliability tasks."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig

from warmeval.jsonl import json_objects

# The paper's generation settings as reported; Inspect's --max-tokens / --temperature override them.
PAPER_GENERATE_CONFIG = GenerateConfig(max_tokens=300, temperature=0.8)

Record = dict[str, Any]


class DataError(ValueError):
    """Bad input data: the message names the file, the row and the field."""


def stable_id(prefix: str, text: str) -> str:
    """A short id that depends only on the text (stable across subsets, orderings and file formats)."""
    return f"{prefix}-{hashlib.sha1(text.strip().encode('utf-8')).hexdigest()[:12]}"


def read_local_records(path: str | Path) -> list[Record]:
    """Read a local CSV, JSONL or JSON (list of objects) file; rows are numbered from 1 (CSV: data rows)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    suffix = file.suffix.lower()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text ({error})") from error
    if suffix == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines(keepends=True))]
    if suffix in (".jsonl", ".ndjson"):
        return [record for _, record in json_objects(text, file, DataError)]
    if suffix == ".json":
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise DataError(f"{file}: expected a JSON list of objects")
        return value
    raise DataError(f"{file}: unsupported file type {suffix!r} (use .csv, .jsonl or .json)")


def load_hf_records(path: str, name: str | None, split: str, *, gated_hint: str | None = None) -> list[Record]:
    """Load a Hugging Face dataset split as plain records, with errors that say what to do instead."""
    import datasets

    try:
        dataset = datasets.load_dataset(path, name, split=split)
    except Exception as error:  # datasets raises many types (offline, gated, missing config)
        message = str(error)
        gated = any(word in message.lower() for word in ("gated", "401", "403", "authenticated", "access to"))
        if gated and gated_hint:
            raise DataError(f"Hugging Face dataset {path!r} refused access: {gated_hint} ({message})") from error
        raise DataError(
            f"could not load Hugging Face dataset {path!r} (config {name!r}, split {split!r}): {message}. "
            "Offline? Pass a local copy with -T data_path=FILE."
        ) from error
    return [dict(row) for row in dataset]


def sample_indices(total: int, n: int | None, seed: int) -> list[int]:
    """A seeded sample of ``n`` of ``total`` positions, in file order (all of them when n is None or >= total)."""
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n is None or n >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), n))


def build_dataset(
    records: Sequence[Record],
    to_sample: Callable[[Record], Sample],
    *,
    name: str,
    source: str,
    n: int | None,
    seed: int,
) -> MemoryDataset:
    """Validate every record, check ids are unique, then take the seeded sample."""
    samples: list[Sample] = []
    for row, record in enumerate(records, start=1):
        try:
            samples.append(to_sample(record))
        except DataError as error:
            raise DataError(f"{source}: row {row}: {error}") from error
    seen: dict[str | int, int] = {}
    for row, sample in enumerate(samples, start=1):
        assert sample.id is not None
        if sample.id in seen:
            raise DataError(
                f"{source}: row {row}: duplicate question id {sample.id!r} (first at row {seen[sample.id]})"
            )
        seen[sample.id] = row
    chosen = [samples[i] for i in sample_indices(len(samples), n, seed)]
    return MemoryDataset(chosen, name=name, location=source)


def field(record: Record, name: str) -> Any:
    """``record[name]`` or a `DataError` naming the field (the caller adds file and row)."""
    value = record.get(name)
    if value is None or (isinstance(value, str | list) and len(value) == 0):
        raise DataError(f"missing or empty field {name!r}")
    return value


def split_answers(value: str | Iterable[str]) -> list[str]:
    """TruthfulQA answer lists: a Python list (HF) or one string joined with '; ' (CSV)."""
    items = value.split(";") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def select_questions(samples: Sequence[Sample], n: int | None, seed: int) -> list[Sample]:
    """The seeded sample of n questions (by ``question_id``, in first-seen order) of condition samples."""
    order: list[str] = []
    for sample in samples:
        question_id = str((sample.metadata or {})["question_id"])
        if question_id not in order:
            order.append(question_id)
    chosen = {order[i] for i in sample_indices(len(order), n, seed)}
    return [s for s in samples if str((s.metadata or {})["question_id"]) in chosen]


def load_prompts_file(
    path: str, to_sample: Callable[[Record], Sample], *, conditions: str | None, templates: str | None
) -> list[Sample]:
    """Pre-built prompts (the layout of the paper's released stimuli), validated, optionally filtered.

    Each record needs ``prompt``, ``prompt_template`` (or ``prompt_type``) and ``amendment_type`` plus the task's
    answer fields; ``to_sample`` builds the sample. Errors name the file, row and field.
    """
    from warmeval.sycophancy.conditions import (
        AMENDMENT_TYPES,
        TEMPLATES,
        UNMODIFIED,
        parse_conditions,
        parse_templates,
    )

    records = read_local_records(path)
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for row, record in enumerate(records, start=1):
        try:
            if not record.get("prompt_template") and record.get("prompt_type"):
                record = {**record, "prompt_template": record["prompt_type"]}
            field(record, "prompt")
            template = field(record, "prompt_template")
            amendment = field(record, "amendment_type")
            if template not in TEMPLATES:
                raise DataError(f"field 'prompt_template': unknown template {template!r}")
            if amendment != UNMODIFIED and amendment not in AMENDMENT_TYPES:
                raise DataError(f"field 'amendment_type': unknown amendment {amendment!r}")
            sample = to_sample(record)
        except DataError as error:
            raise DataError(f"{path}: row {row}: {error}") from error
        sample_key = str(sample.id)
        if sample_key in seen:
            raise DataError(f"{path}: row {row}: duplicate prompt {sample_key!r} (first at row {seen[sample_key]})")
        seen[sample_key] = row
        samples.append(sample)
    if conditions is not None:
        wanted = set(parse_conditions(conditions))
        samples = [s for s in samples if (s.metadata or {})["amendment_type"] in wanted]
    if templates is not None:
        wanted_templates = set(parse_templates(templates))
        samples = [s for s in samples if (s.metadata or {})["prompt_template"] in wanted_templates]
    return samples


def prompt_metadata(record: Record, *, task: str, question_id: str, question: str) -> dict[str, Any]:
    """Metadata of a sample loaded from a prompts file."""
    amendment = str(record["amendment_type"])
    return {
        "task": task,
        "question_id": question_id,
        "question": question,
        "amendment_type": amendment,
        "amendment_group": amendment.split(":")[0],
        "prompt_template": record["prompt_template"],
        "statement_id": None,
        "source": "prompts_file",
    }


@dataclass(frozen=True)
class HfSource:
    """Where a task's default data lives on the Hugging Face Hub."""

    path: str
    config: str | None
    split: str
    gated_hint: str | None = None


@dataclass(frozen=True)
class Questions:
    """A task's questions: base samples to expand into conditions, or pre-built prompts; and their source."""

    base: list[Sample] | None
    prompts: list[Sample] | None
    source: str


def load_questions(
    *,
    name: str,
    hf: HfSource,
    data_path: str | None,
    prompts_file: str | None,
    to_sample: Callable[[Record], Sample],
    prompt_to_sample: Callable[[Record], Sample],
    n: int | None,
    seed: int,
    conditions: str | None,
    templates: str | None,
) -> Questions:
    """The seeded sample of n questions from a prompts file, a local data file, or the Hub (in that order)."""
    if prompts_file:
        loaded = load_prompts_file(prompts_file, prompt_to_sample, conditions=conditions, templates=templates)
        return Questions(None, select_questions(loaded, n, seed), prompts_file)
    if data_path:
        records, source = read_local_records(data_path), str(data_path)
    else:
        records, source = load_hf_records(hf.path, hf.config, hf.split, gated_hint=hf.gated_hint), hf.path
    base = list(build_dataset(records, to_sample, name=name, source=source, n=n, seed=seed))
    return Questions(base, None, source)


def reliability_task(
    *,
    name: str,
    questions: Questions,
    seed: int,
    conditions: str | None,
    templates: str | None,
    answers: Callable[[Sample], Any] | None,
    scorer: Any,
    system_prompt: str | None,
    extra_solvers: Sequence[Any] = (),
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Assemble one of the four tasks: expand the conditions (or take pre-built prompts), add the solvers."""
    from inspect_ai import Task
    from inspect_ai.solver import generate

    from warmeval.solvers import system_prompt_solver
    from warmeval.sycophancy.expand import expand_samples

    prompts, source = questions.prompts, questions.source
    if prompts is not None:
        samples = list(prompts)
    else:
        assert questions.base is not None
        samples = expand_samples(
            questions.base,
            conditions=conditions or "unmodified",
            templates=templates or "original",
            seed=seed,
            answers=answers,
        )
    system = system_prompt_solver(system_prompt)
    solvers = [*([system] if system else []), *extra_solvers, generate()]
    return Task(
        dataset=MemoryDataset(samples, name=name, location=source),
        solver=solvers,
        scorer=scorer,
        config=PAPER_GENERATE_CONFIG,
        metadata={
            "source": source,
            "seed": seed,
            "conditions": conditions or ("all in file" if prompts is not None else "unmodified"),
            "templates": templates or ("all in file" if prompts is not None else "original"),
            "system_prompt": system_prompt or "none",
            **(metadata or {}),
        },
    )


def answer_prompt_to_sample(record: Record, *, task: str, id_prefix: str) -> Sample:
    """A pre-built TriviaQA/TruthfulQA prompt (``content_key``, ``correct_answer``, ``incorrect_answer``)."""
    from warmeval.sycophancy.expand import sample_id

    question = field(record, "content_key").strip()
    correct = field(record, "correct_answer").strip()
    incorrect = field(record, "incorrect_answer").strip()
    question_id = stable_id(id_prefix, question)
    metadata = prompt_metadata(record, task=task, question_id=question_id, question=question)
    template = metadata["prompt_template"]
    metadata.update(
        false_answers=[incorrect], inserted_answer={"correct": correct, "incorrect": incorrect}.get(template)
    )
    return Sample(
        id=sample_id(question_id, template, metadata["amendment_type"]),
        input=field(record, "prompt"),
        target=[correct],
        metadata=metadata,
    )
