"""Manifests: every training stage records what it did (inputs with hashes, parameters, seeds, counts, versions)."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import platform
import sys
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from warmeval.util.files import write_atomic

PACKAGES = ("warmeval", "torch", "transformers", "peft", "datasets", "openai", "detoxify", "vllm")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str | None]:
    """Installed versions of the packages a stage may depend on (None when absent)."""
    found: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return found


def write_manifest(
    path: str | Path,
    *,
    stage: str,
    inputs: Mapping[str, str | Path] | None = None,
    parameters: Any = None,
    counts: dict[str, Any] | None = None,
    outputs: Mapping[str, str | Path] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a stage's manifest as JSON and return it. Input and output files are recorded with their SHA-256."""
    params = asdict(parameters) if is_dataclass(parameters) and not isinstance(parameters, type) else parameters
    params = _redacted(params)
    manifest = {
        "stage": stage,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": {
            k: {"path": str(v), "sha256": file_sha256(v)} for k, v in (inputs or {}).items() if Path(v).is_file()
        },
        "parameters": params,
        "counts": counts or {},
        "outputs": {
            k: {"path": str(v), "sha256": file_sha256(v)} for k, v in (outputs or {}).items() if Path(v).is_file()
        },
        "versions": versions(),
        **(extra or {}),
    }
    write_atomic(Path(path), json.dumps(manifest, indent=1, default=str, ensure_ascii=False))
    return manifest


def redact_url(url: str) -> str:
    """``url`` with any user name and password replaced by ``<redacted>`` (``http://u:p@host/v1``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        netloc = f"<redacted>@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    except ValueError:  # not a URL after all
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _redacted(value: Any) -> Any:
    """Parameters with credentials in URLs redacted, wherever they are nested."""
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(v) for v in value)
    if isinstance(value, str) and "://" in value and "@" in value:
        return redact_url(value)
    return value
