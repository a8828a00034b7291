"""Shared loading, validation and sampling for the four reliability tasks, and their design (the builder that turns
them into an Inspect task is `warmeval.tasks.spec`).

A task's design (``-T design=``) sets the defaults of ``conditions``, ``templates`` and ``n`` (each can still be given
on its own): ``paper`` (the default) is the study's 28 conditions (`warmeval.sycophancy.conditions`) on the paper's
questions, ``quick`` four of them (unmodified and a sad user, asked plainly and with a stated wrong answer) on 50
questions. The questions come from the authors' released prompt file where they released one (TriviaQA, TruthfulQA,
Disinfo: ``prompts_file=paper``, fetched on first use), else from ``-T data_path=`` or the Hugging Face dataset.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as field_
from pathlib import Path
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig

from warmeval.util.config import validate_arguments
from warmeval.util.jsonl import json_objects, json_type
from warmeval.util.text import stable_id

# The paper's generation settings as reported; Inspect's --max-tokens / --temperature override them.
PAPER_GENERATE_CONFIG = GenerateConfig(max_tokens=300, temperature=0.8)

Record = dict[str, Any]

logger = logging.getLogger(__name__)


try:  # Inspect shows a PrerequisiteError as one line, without a traceback (`inspect eval` on bad task arguments)
    from inspect_ai._util.error import PrerequisiteError as _ShownByInspect
except ImportError:  # pragma: no cover - an Inspect without it
    _ShownByInspect = Exception  # type: ignore[assignment,misc]


class DataError(_ShownByInspect, ValueError):
    """Bad input data: the message names the file, the row and the field."""


def check_task_args(task: Any, values: dict[str, Any]) -> None:
    """Check a task's ``-T`` arguments against its annotations (``seed=abc`` is an error, not silently kept)."""
    # Inspect's -T splits "a,b" into a list; the tasks take it either way
    joined = {k: ",".join(v) if isinstance(v, list) and all(isinstance(i, str) for i in v) else v
              for k, v in values.items()}  # fmt: skip
    validate_arguments(task, joined, f"task {task.__name__}", DataError)


def _json_list_records(text: str, file: Path) -> list[Record] | None:
    """The objects of a text holding one JSON list; None when the text is not one JSON value (then JSON Lines)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":
            return None  # a first line that is a list, then more lines: JSON Lines
        raise DataError(f"{file}: line {error.lineno}: invalid JSON ({error.msg} at column {error.colno})") from error
    if not isinstance(value, list):  # pragma: no cover - the text starts with "["
        raise DataError(f"{file}: expected a JSON list of objects or JSON Lines")
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            # Find the item's line: walk the list again, item by item.
            decoder, position = json.JSONDecoder(), text.index("[") + 1
            for _ in range(index):
                while text[position] in " \t\r\n,":
                    position += 1
                start = position
                _, position = decoder.raw_decode(text, position)
            line = text.count("\n", 0, start) + 1
            raise DataError(f"{file}: line {line}: item {index}: expected a JSON object, got {json_type(item)}")
    return value


def read_local_records(path: str | Path) -> list[Record]:
    """Read a local CSV, JSONL or JSON (list of objects) file; rows are numbered from 1 (CSV: data rows; JSON Lines:
    lines, blank ones counted; a JSON list's errors name the item and its line)."""
    file = Path(path)
    if file.is_dir():
        raise DataError(f"{file}: a folder, not a data file")
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    suffix = file.suffix.lower()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text ({error})") from error
    if suffix == ".csv":
        rows = []
        for number, row in enumerate(csv.DictReader(text.splitlines(keepends=True)), start=1):
            if None in row:  # csv puts the values beyond the header's columns under None
                values = len(row) - 1 + len(row[None])  # type: ignore[index]
                raise DataError(f"{file}: row {number}: {values} values for {len(row) - 1} columns")
            rows.append(dict(row))
        return rows
    if suffix in (".jsonl", ".ndjson"):
        return [record for _, record in json_objects(text, file, DataError)]
    if suffix == ".json":
        # A .json file may hold one list of objects or, like the paper authors' released prompts, JSON Lines.
        listed = _json_list_records(text, file) if text.lstrip().startswith("[") else None
        return listed if listed is not None else [record for _, record in json_objects(text, file, DataError)]
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


_EXPECTED: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}


def field(
    record: Record,
    name: str,
    kind: type | tuple[type, ...] = str,
    *,
    label: str | None = None,
    expected: str | None = None,
) -> Any:
    """``record[name]``, of type ``kind`` (a string unless told) and not empty, or a `DataError` naming the field and
    the type expected (the caller adds file and row).

    Args:
        record: The record.
        name: The field.
        kind: The type(s) accepted.
        label: The field's name in messages (default ``name``; e.g. the column as the file spells it).
        expected: What messages say is expected (default: from ``kind``).
    """
    label = label or name
    value = record.get(name)
    blank = isinstance(value, str) and not value.strip()
    if value is None or blank or (isinstance(value, list | dict) and not value):
        raise DataError(f"missing or empty field {label!r}")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = expected or " or ".join(_EXPECTED.get(k, k.__name__) for k in kinds)
        raise DataError(f"field {label!r}: expected {wanted}, got {json_type(value)}")
    return value


def strings(value: Any, label: str) -> list[str]:
    """``value`` if it is a list of strings, else a `DataError` naming the field (``label``) and the item."""
    if not isinstance(value, list):
        raise DataError(f"field {label!r}: expected a list of strings, got {json_type(value)}")
    for index, item in enumerate(value, start=1):
        if not isinstance(item, str):
            raise DataError(f"field {label!r}: item {index}: expected a string, got {json_type(item)}")
    return value


def optional_string(record: Record, name: str, *, label: str | None = None) -> str | None:
    """An optional string field: its stripped text, None when absent or blank, a `DataError` for another type."""
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DataError(f"field {label or name!r}: expected a string, got {json_type(value)}")
    return value.strip() or None


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


def resolve_prompts_file(prompts_file: str, task: str, *, by_default: bool = False) -> str:
    """``paper`` becomes the authors' released file for ``task`` (fetched once, verified); a path stays as it is.

    ``by_default``: the file was not asked for but is the task's default source (the error then also says how to
    build prompts from a local dataset instead).
    """
    if prompts_file != "paper":
        if Path(prompts_file).is_dir():
            raise DataError(f"prompts_file={prompts_file}: a folder, not a prompts file")
        return prompts_file
    from warmeval.sycophancy.stimuli import StimuliError, paper_prompts_file

    try:
        return str(paper_prompts_file(task))
    except StimuliError as error:
        how = (" (the task's default: the authors' released prompts; -T data_path=FILE builds the prompts from a local "
               "copy of the dataset instead, which is not the paper's stimuli)") if by_default else ""  # fmt: skip
        raise DataError(f"prompts_file=paper{how}: {error}") from error


def load_prompts_file(
    path: str, to_sample: Callable[[Record], Sample], *, conditions: str | None, templates: str | None
) -> list[Sample]:
    """Pre-built prompts (the layout of the paper's released stimuli), validated, optionally filtered.

    Each record needs ``prompt``, ``prompt_template`` (or ``prompt_type``) and ``amendment_type`` plus the task's
    answer fields; ``to_sample`` builds the sample. Every prompt is kept as it is, byte for byte. Errors name the
    file, the line (CSV: the data row) and the field. A (question, template, amendment) cell that occurs again gets
    the id suffix ``~2``, ``~3``, ... so that nothing is dropped and ids stay unique.
    """
    from warmeval.sycophancy.conditions import (
        ALL_TEMPLATES,
        AMENDMENT_TYPES,
        UNMODIFIED,
        UNMODIFIED_ONLY_TEMPLATES,
        parse_conditions,
        parse_templates,
    )

    records = read_local_records(path)
    kind = "row" if Path(path).suffix.lower() == ".csv" else "line"
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for row, record in enumerate(records, start=1):
        try:
            if not record.get("prompt_template") and record.get("prompt_type"):
                record = {**record, "prompt_template": record["prompt_type"]}
            field(record, "prompt")
            template = field(record, "prompt_template")
            amendment = field(record, "amendment_type")
            if template not in ALL_TEMPLATES:
                raise DataError(f"field 'prompt_template': unknown template {template!r}")
            if amendment != UNMODIFIED and amendment not in AMENDMENT_TYPES:
                raise DataError(f"field 'amendment_type': unknown amendment {amendment!r}")
            if template in UNMODIFIED_ONLY_TEMPLATES and amendment != UNMODIFIED:
                raise DataError(f"field 'amendment_type': template {template!r} exists for unmodified prompts only")
            sample = to_sample(record)
        except DataError as error:
            raise DataError(f"{path}: {kind} {row}: {error}") from error
        key = str(sample.id)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            sample.id = f"{key}~{seen[key]}"
        assert sample.metadata is not None
        sample.metadata["source_line"] = row
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
        "prompt_style": "released",
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
class Design:
    """What a task evaluates unless told otherwise: its conditions, templates and number of questions.

    Attributes:
        conditions: Amendment sub-types (as ``-T conditions=``).
        templates: Prompt templates (as ``-T templates=``).
        n: Questions (None: the task's own default, the paper's number).
    """

    conditions: str
    templates: str
    n: int | None


DESIGNS: dict[str, Design] = {
    # The study: 9 amendment sub-types x {original, correct, incorrect} + original_neutral = 28 prompts per question.
    "paper": Design("all", "all", None),
    # A small run: the unmodified and sad-user prompts, plainly and with a stated wrong answer, on 50 questions.
    "quick": Design("unmodified,emotion:sad", "original,incorrect", 50),
}


@dataclass(frozen=True)
class Questions:
    """A task's questions: base samples to expand into conditions, or pre-built prompts; their source and design.

    Attributes:
        base: Question samples to expand into conditions (a dataset), or None.
        prompts: Pre-built prompts (a prompts file), or None.
        source: Where they came from (a file or a Hub dataset).
        counts: Questions and prompts loaded, and how many the source holds.
        design: The design whose defaults applied.
        conditions: The conditions in force (the design's unless given).
        templates: The templates in force (the design's unless given).
        stimuli: ``paper`` (the authors' released prompts), ``file`` (another prompts file) or ``built``.
    """

    base: list[Sample] | None
    prompts: list[Sample] | None
    source: str
    counts: dict[str, Any] = field_(default_factory=dict)
    design: str = "paper"
    conditions: str = "all"
    templates: str = "all"
    stimuli: str = "built"


NSpec = int | str | None


def parse_n(n: NSpec, default: int | None) -> int | None:
    """``-T n=``: a count of questions, ``all``, or None (the task's default); a clear error for anything else."""
    if n is None:
        return default
    if isinstance(n, str):
        if n.strip().lower() == "all":
            return None
        try:
            n = int(n)
        except ValueError:
            raise DataError(f"n={n!r}: expected a number of questions or 'all'") from None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"n={n!r}: expected a number of questions (>= 0) or 'all'")
    return n


def load_questions(
    *,
    name: str,
    hf: HfSource,
    data_path: str | None,
    prompts_file: str | None,
    to_sample: Callable[[Record], Sample],
    prompt_to_sample: Callable[[Record], Sample],
    n: NSpec,
    seed: int,
    conditions: str | None,
    templates: str | None,
    default_n: int | None = 500,
    design: str = "paper",
    released: bool = False,
) -> Questions:
    """The seeded sample of n questions from a prompts file, a local data file, or the Hub (in that order).

    ``design`` gives the defaults of ``conditions``, ``templates`` and ``n`` (`DESIGNS`). ``released``: the authors
    released this task's prompts, which are then its default source (``prompts_file=paper``) unless ``data_path`` is
    given or ``prompts_file=none``. ``n`` counts questions; under the paper design its default is ``default_n`` for a
    dataset but every question of a prompts file (a prompts file is the stimuli of a study and is not cut short
    unless ``n`` or a smaller design says so).
    """
    if design not in DESIGNS:
        raise DataError(f"design={design!r}: use {' or '.join(DESIGNS)}")
    plan = DESIGNS[design]
    conditions = conditions or plan.conditions
    templates = templates or plan.templates
    if data_path and prompts_file and prompts_file != "none":
        raise DataError(
            f"data_path={data_path} and prompts_file={prompts_file} both given: the prompts come from one of them "
            "(data_path builds them from a dataset, prompts_file takes them as they are)"
        )
    if data_path and Path(data_path).is_dir():
        raise DataError(f"data_path={data_path}: a folder, not a data file")
    by_default = prompts_file is None and not data_path and released
    if by_default:
        prompts_file = "paper"
    if prompts_file == "none":
        prompts_file = None
    if prompts_file:
        path = resolve_prompts_file(prompts_file, name, by_default=by_default)
        loaded = load_prompts_file(path, prompt_to_sample, conditions=conditions, templates=templates)
        chosen = select_questions(loaded, parse_n(n, plan.n), seed)
        questions_in_file = len({str((s.metadata or {})["question_id"]) for s in loaded})
        questions = len({str((s.metadata or {})["question_id"]) for s in chosen})
        counts = {
            "prompts_loaded": len(chosen),
            "questions_loaded": questions,
            "questions_in_file": questions_in_file,
            "n": "all" if n is None and plan.n is None else parse_n(n, plan.n),
        }
        logger.info(
            "%s: %d prompts of %d questions loaded from %s (%s)",
            name,
            len(chosen),
            questions,
            path,
            f"all {questions_in_file} questions in the file" if questions == questions_in_file else f"n={n}",
        )
        stimuli = "paper" if prompts_file == "paper" else "file"
        return Questions(None, chosen, path, counts, design, conditions, templates, stimuli)
    size = parse_n(n, plan.n if plan.n is not None else default_n)
    resolved_n = "all" if size is None else size
    if data_path:
        records, source = read_local_records(data_path), str(data_path)
    else:
        records, source = load_hf_records(hf.path, hf.config, hf.split, gated_hint=hf.gated_hint), hf.path
    base = list(build_dataset(records, to_sample, name=name, source=source, n=size, seed=seed))
    counts = {"questions_loaded": len(base), "questions_in_file": len(records), "n": resolved_n}
    return Questions(base, None, source, counts, design, conditions, templates, "built")


def released_answers(template: str, correct: str, incorrect: str) -> dict[str, Any]:
    """Metadata of a released prompt's answers: the one inserted (belief templates) or the two options (mcq)."""
    answers: dict[str, Any] = {
        "false_answers": [incorrect],
        "inserted_answer": {"correct": correct, "incorrect": incorrect}.get(template),
    }
    if template == "mcq":
        # The released mcq prompts always put the correct answer as option (A).
        answers.update(mcq_options={"A": correct, "B": incorrect}, mcq_gold="A")
    return answers


def answer_prompt_to_sample(record: Record, *, task: str, id_prefix: str) -> Sample:
    """A pre-built TriviaQA/TruthfulQA prompt (``content_key``, ``correct_answer``, ``incorrect_answer``)."""
    from warmeval.sycophancy.expand import sample_id

    question = field(record, "content_key").strip()
    correct = field(record, "correct_answer").strip()
    incorrect = field(record, "incorrect_answer").strip()
    question_id = stable_id(id_prefix, question)
    metadata = prompt_metadata(record, task=task, question_id=question_id, question=question)
    metadata.update(released_answers(metadata["prompt_template"], correct, incorrect))
    return Sample(
        id=sample_id(question_id, metadata["prompt_template"], metadata["amendment_type"]),
        input=field(record, "prompt"),
        target=[correct],
        metadata=metadata,
    )
