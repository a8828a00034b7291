"""Pinned downloads: fetch a released file over HTTPS, and record the digest of a first verified copy.

The callers (`warmeval.sycophancy.stimuli` for the authors' prompts, `warmeval.analysis.paper_results` for their
result tables) decide what a verified file is; this module only moves bytes and keeps the ``SHA256SUMS`` record that
catches a cached copy edited or torn after its first verified fetch.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from warmeval.util.files import write_atomic

SUMS_FILE = "SHA256SUMS"


def download(url: str, timeout: float) -> bytes:
    """The body of ``url`` (raises `urllib.error.URLError`, `OSError` or `TimeoutError` when it cannot be had)."""
    request = urllib.request.Request(url, headers={"User-Agent": "warmeval"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (a pinned https URL or a mirror)
        data: bytes = response.read()
        return data


def recorded_sums(folder: Path) -> dict[str, str]:
    """``{file name: SHA-256}`` recorded in ``folder/SHA256SUMS`` (empty when there is none)."""
    sums: dict[str, str] = {}
    path = folder / SUMS_FILE
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.strip().partition("  ")
            if digest and name:
                sums[name] = digest
    return sums


def record_sum(folder: Path, name: str, digest: str) -> None:
    """Record ``digest`` for ``name`` in ``folder/SHA256SUMS`` (atomically, keeping the other entries)."""
    sums = recorded_sums(folder)
    sums[name] = digest
    write_atomic(folder / SUMS_FILE, "".join(f"{value}  {key}\n" for key, value in sorted(sums.items())))
