"""JSON Lines reading shared by warmeval's loaders: one JSON object per non-blank line, errors naming file and row.

Lines are split on ``\\n`` only (``str.splitlines`` would also split inside texts holding U+2028 and similar).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def json_objects(
    text: str, source: str | Path, error: type[Exception] = ValueError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, object) for every non-blank line of ``text``; rows are numbered from 1.

    Args:
        text: The file's content.
        source: The file, for messages.
        error: The exception class raised for a line that is not valid JSON or not an object.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{source}: row {number}: invalid JSON ({exc.msg})") from exc
        if not isinstance(value, dict):
            raise error(f"{source}: row {number}: expected a JSON object, got {type(value).__name__}")
        yield number, value
