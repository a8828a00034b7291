"""JSON Lines reading shared by warmeval's loaders: one JSON value per non-blank line, errors naming file and row.

Lines are split on ``\\n`` only (``str.splitlines`` would also split inside texts holding U+2028 and similar).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def json_lines(
    text: str,
    source: str | Path,
    error: type[Exception] = ValueError,
    *,
    blank_lines: bool = True,
    invalid_as_none: bool = False,
) -> Iterator[tuple[int, Any]]:
    """(row number, value) for every line of ``text``; rows are numbered from 1.

    Args:
        text: The file's content.
        source: The file, for messages.
        error: The exception class raised for a line that is not valid JSON (or blank, when not allowed).
        blank_lines: Skip blank lines (otherwise a blank line before the end is an error, as the OpenAI API has it).
        invalid_as_none: Yield ``None`` for a line that is not valid JSON instead of raising, for readers that count
            bad rows (ShareGPT dumps) or recover from a torn write (caches).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last row
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if blank_lines:
                continue
            raise error(f"{source}: row {number}: empty line")
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if invalid_as_none:
                yield number, None
                continue
            raise error(f"{source}: row {number}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        yield number, value


def json_type(value: Any) -> str:
    """What a JSON value is, for messages: ``a string``, ``a number``, ``a list``, ``an object``, ``null``, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names = {str: "a string", list: "a list", dict: "an object"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def json_objects(
    text: str, source: str | Path, error: type[Exception] = ValueError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, object) for every non-blank line of ``text``; a line that is not a JSON object is an error."""
    for number, value in json_lines(text, source, error):
        if not isinstance(value, dict):
            raise error(f"{source}: row {number}: expected a JSON object, got {json_type(value)}")
        yield number, value


def read_json_objects(path: str | Path, error: type[Exception] = ValueError) -> list[tuple[int, dict[str, Any]]]:
    """`json_objects` of a UTF-8 file; a missing or non-UTF-8 file is an ``error`` naming it."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(f"{file}: no such file") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise error(f"{file}: row {line}: not UTF-8 text ({exc.reason})") from exc
    return list(json_objects(text, file, error))


def read_validation_prompts(
    path: str | Path, n: int | None = None, error: type[Exception] = ValueError
) -> list[dict[str, str]]:
    """``{"id", "prompt"}`` rows of a validation prompts JSONL (the first ``n``); errors name the file and row."""
    rows = []
    for number, record in read_json_objects(path, error):
        if not isinstance(record.get("prompt"), str) or not record["prompt"].strip():
            raise error(f"{path}: row {number}: field 'prompt' is missing or empty")
        rows.append({"id": str(record.get("id", number)), "prompt": record["prompt"]})
    if not rows:
        raise error(f"{path}: no prompts")
    ids = [row["id"] for row in rows]
    if len(set(ids)) < len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise error(f"{path}: duplicate prompt id {duplicate!r}")
    return rows[:n] if n else rows
