"""Files: atomic writes, safe file names, the cache folder, and where the bundled fixtures live."""

from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path


def cache_root() -> Path:
    """warmeval's cache: ``$WARMEVAL_CACHE_DIR``, default ``~/.cache/warmeval`` (fetched files, models, texts)."""
    return Path(os.environ.get("WARMEVAL_CACHE_DIR", Path.home() / ".cache" / "warmeval")).expanduser()


# Our own small example files (not the authors' or any dataset's texts), shipped inside the package.
FIXTURES = Path(str(files("warmeval") / "fixtures"))


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it: a crash or a full disk never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(text, bytes):
            temporary.write_bytes(text)
        else:
            temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def safe_name(text: str) -> str:
    """A file-name-safe form of a label or served model name ("org/model:adapter" -> "org_model_adapter")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"
