"""The rewrite stage's response cache: every paid response, appended as it arrives, kept across runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from warmeval.util.jsonl import json_lines


class RewriteCache:
    """Append-only JSONL cache of model responses: one line per response, keyed by request.

    A line holds ``key``, ``template_sha256``, ``model``, ``input_sha256``, ``attempt``, ``content``,
    ``finish_reason``, ``prompt_tokens``, ``completion_tokens``, ``source`` (``api`` or ``batch``) and ``created``.
    Each line is written unbuffered as its response arrives, so an interrupted run keeps every paid response; a torn
    last line (a run killed mid-write) is skipped on load and counted in ``skipped_lines``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.skipped_lines = 0
        self._torn_tail = False
        if self.path.is_file():
            data = self.path.read_bytes()
            self._torn_tail = bool(data) and not data.endswith(b"\n")
            text = data.decode("utf-8", errors="replace")
            for _, record in json_lines(text, self.path, invalid_as_none=True):
                if not isinstance(record, dict) or not {"key", "content", "finish_reason"} <= record.keys():
                    self.skipped_lines += 1
                    continue
                self.entries.setdefault(record["key"], []).append(record)
        self._handle: Any = None

    def responses(self, key: str) -> list[dict[str, Any]]:
        """Cached responses of a request, oldest first."""
        return list(self.entries.get(key, []))

    def append(self, key: str, record: dict[str, Any]) -> None:
        """Store one response (flushed at once)."""
        record = {"key": key, **record}
        self.entries.setdefault(key, []).append(record)
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "ab", buffering=0)
        # One unbuffered O_APPEND write per line, so runs sharing the cache (warm and cold) never interleave lines.
        line = json.dumps(record, ensure_ascii=False) + "\n"
        if self._torn_tail:  # end the torn line first, so that this one stays whole
            line, self._torn_tail = "\n" + line, False
        data = memoryview(line.encode("utf-8"))
        while data:
            data = data[self._handle.write(data) :]

    def close(self) -> None:
        """Close the append handle (reopened by the next `append`)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __len__(self) -> int:
        return sum(len(v) for v in self.entries.values())
