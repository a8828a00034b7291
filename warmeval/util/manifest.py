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
from dataclasses import asdict, dataclass, field, is_dataclass
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


@dataclass(frozen=True)
class FileRecord:
    """An input or output file of a stage, with the SHA-256 of its bytes."""

    path: str
    sha256: str


@dataclass
class Manifest:
    """What a stage did: the typed result of every training stage, also written to its ``manifest.json``.

    Attributes:
        stage: The stage's name (``data_build``, ``rewrite``, ``train_lora``, ``train_generate``, ``train_openai``).
        created: When it was written (UTC, ISO 8601).
        inputs: Input files by role, with hashes.
        parameters: The stage's config as JSON values, secrets redacted.
        counts: What it counted (named per stage; documented with each stage).
        outputs: Output files by role, with hashes.
        versions: Python, platform and package versions.
        extra: Stage-specific records (the LoRA adapters, the fine-tuning job, ...).
    """

    stage: str
    created: str
    inputs: dict[str, FileRecord]
    parameters: Any
    counts: dict[str, Any]
    outputs: dict[str, FileRecord]
    versions: dict[str, str | None]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest as written: the fixed fields, then the stage-specific ones at the top level."""
        record = {name: getattr(self, name) for name in ("stage", "created", "inputs", "parameters", "counts",
                                                           "outputs", "versions")}  # fmt: skip
        record["inputs"] = {k: asdict(v) for k, v in self.inputs.items()}
        record["outputs"] = {k: asdict(v) for k, v in self.outputs.items()}
        return {**record, **self.extra}


def _records(files: Mapping[str, str | Path] | None) -> dict[str, FileRecord]:
    return {k: FileRecord(str(v), file_sha256(v)) for k, v in (files or {}).items() if Path(v).is_file()}


def write_manifest(
    path: str | Path | None,
    *,
    stage: str,
    inputs: Mapping[str, str | Path] | None = None,
    parameters: Any = None,
    counts: dict[str, Any] | None = None,
    outputs: Mapping[str, str | Path] | None = None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """Write a stage's manifest as JSON and return it. Input and output files are recorded with their SHA-256.

    ``path`` None builds the manifest without writing it (a non-main process of a distributed run).
    """
    params = asdict(parameters) if is_dataclass(parameters) and not isinstance(parameters, type) else parameters
    manifest = Manifest(
        stage=stage, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), inputs=_records(inputs),
        parameters=_redacted(params), counts=counts or {}, outputs=_records(outputs), versions=versions(),
        extra=dict(extra or {}),
    )  # fmt: skip
    if path is not None:
        write_atomic(Path(path), json.dumps(manifest.to_json(), indent=1, default=str, ensure_ascii=False))
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
