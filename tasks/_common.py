"""Shared loading, validation and sampling for the four reliability tasks."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig

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
        records = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{file}: row {number}: invalid JSON ({error.msg})") from error
            if not isinstance(value, dict):
                raise DataError(f"{file}: row {number}: expected a JSON object")
            records.append(value)
        return records
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
