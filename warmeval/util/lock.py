"""One warmeval command per output at a time: an exclusive lock on the output folder (or file) while it writes there.

Two ``warmeval run`` on one ``output_dir`` would each run every evaluation and leave duplicate logs; two ``train lora``
would write the same checkpoints. The lock is an ``flock`` on ``.warmeval.lock`` in the folder (``.<name>.lock`` beside
an output file): the kernel releases it when the holder exits, however it exits, so a killed run leaves no stale lock.
The file records who holds it (pid, host, command, start time) for the message a second command gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]


class OutputBusy(RuntimeError):
    """Another warmeval command holds the output; the message names it."""


def lock_path(target: str | Path, *, beside: bool = False) -> Path:
    """The lock file of an output folder (``.warmeval.lock`` inside it) or of an output file (``.<name>.lock``);
    ``beside``: ``.<name>.lock`` beside a folder too (a folder that is replaced as a whole, as a report's is)."""
    path = Path(target)
    if not beside and (path.is_dir() or not path.suffix):
        return path / ".warmeval.lock"
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def output_lock(target: str | Path, command: str | None = None, *, beside: bool = False) -> Iterator[Path]:
    """Hold the lock of ``target`` for the block; raise `OutputBusy` at once, naming the holder, if another has it."""
    path = lock_path(target, beside=beside)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield path
        return
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                holder = {}
            who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, `{holder.get('command', '?')}`, "
                   f"since {holder.get('started', '?')}")  # fmt: skip
            raise OutputBusy(
                f"{Path(target)} is in use by another warmeval command ({who}); wait for it to end, or use another "
                "output folder"
            ) from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or " ".join(sys.argv),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        os.ftruncate(handle, 0)
        os.write(handle, json.dumps(record).encode())
        yield path
    finally:
        os.close(handle)  # releases the lock
