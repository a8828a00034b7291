"""Pinned downloads: fetch a released file over HTTPS, and record the digest of a first verified copy.

The callers (`warmeval.sycophancy.stimuli` for the authors' prompts, `warmeval.analysis.paper_results` for their
result tables) decide what a verified file is; this module only moves bytes and keeps the ``SHA256SUMS`` record that
catches a cached copy edited or torn after its first verified fetch.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
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


def fetch_verified(
    target: Path,
    url: str,
    *,
    check: Callable[[bytes, str], str],
    verify_cached: Callable[[Path], object],
    pinned: bool,
    by_hand: str,
    error: type[Exception],
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """``target``, downloaded from ``url`` unless a cached copy passes ``verify_cached`` (and not ``force``).

    ``check(data, origin)`` raises ``error`` for bytes that are not the released file and returns their SHA-256;
    nothing is cached then. An unpinned file's digest is recorded in ``SHA256SUMS`` beside it. ``by_hand`` (where to
    place the file by hand) ends every error message.
    """
    if target.is_file() and not force:
        try:
            verify_cached(target)
            return target
        except error:
            pass  # a torn or stale copy: download it again below
    try:
        data = download(url, timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as failure:
        reason = getattr(failure, "reason", failure)
        raise error(f"cannot download {url} ({reason}); offline? {by_hand}") from None
    try:
        digest = check(data, url)
    except error as failure:
        raise error(f"{failure}. Nothing was cached; {by_hand}") from None
    write_atomic(target, data)
    if not pinned:
        record_sum(target.parent, target.name, digest)
    return target
