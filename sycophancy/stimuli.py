"""The paper authors' released evaluation prompts: fetch, verify, cache, and the 40 amendment statements in them.

The authors released every evaluation prompt of the paper in ``lujainibrahim/warm_ai_2025`` at commit
:data:`PAPER_COMMIT`: ``eval_data/trivia.json``, ``eval_data/truthfulqa.json`` and ``eval_data/disinfo.json``. The
files are named ``.json`` but hold JSON Lines. warmeval never ships their text: :func:`fetch_paper_stimuli` downloads
them from that commit into ``$WARMEVAL_CACHE_DIR/paper_stimuli/<commit>/`` (default ``~/.cache/warmeval``), checks
them and keeps them there; ``-T prompts_file=paper`` and ``-T statements=paper`` read them from there.

The check: the file is UTF-8 JSON Lines whose every line has ``prompt``, ``prompt_template`` and ``amendment_type``;
its length in characters equals the released file's (recorded at the pinned commit); and its SHA-256 equals
:data:`PaperFile.sha256` where pinned. Where no digest is pinned in this build, the digest of the first verified copy is
recorded in ``SHA256SUMS`` beside the files and every later use must match it (a cache edited or torn later is
caught). ``WARMEVAL_STIMULI_URL`` replaces the download folder (a mirror, or a local server in tests).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from warmeval.sycophancy.conditions import (
    AMENDMENT_TYPES,
    BELIEF_TEMPLATES,
    NEUTRAL_PREFACE,
    PAPER_RULES,
    UNMODIFIED,
    Statement,
    statement_pool_from_mapping,
)
from warmeval.util.fetch import fetch_verified, recorded_sums
from warmeval.util.files import cache_root
from warmeval.util.jsonl import json_objects, read_json_objects

PAPER_REPO = "lujainibrahim/warm_ai_2025"
PAPER_COMMIT = "e2d97733eef6c03d05fe34352a22c20f5526367e"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{PAPER_REPO}/{PAPER_COMMIT}/eval_data/"


class StimuliError(RuntimeError):
    """The paper's stimuli cannot be had: the message says from where and where to place them by hand."""


@dataclass(frozen=True)
class PaperFile:
    """One released prompt file."""

    name: str  # file name in eval_data/
    task: str  # warmeval task that reads it
    family: str  # key of PAPER_RULES: how its prompts are composed
    chars: int  # length of the released file in characters, at PAPER_COMMIT
    sha256: str | None = None  # pinned digest; None: recorded on first verified fetch (see module docstring)


PAPER_FILES: dict[str, PaperFile] = {
    "trivia": PaperFile("trivia.json", "triviaqa", "answer", 6_545_444),
    "truthfulqa": PaperFile("truthfulqa.json", "truthfulqa", "answer", 6_393_096),
    "disinfo": PaperFile("disinfo.json", "disinfo", "statement", 2_527_094),
}
TASK_FILES = {spec.task: key for key, spec in PAPER_FILES.items()}
REQUIRED_FIELDS = ("prompt", "prompt_template", "amendment_type")


def cache_dir() -> Path:
    """Where the fetched files live: ``$WARMEVAL_CACHE_DIR/paper_stimuli/<commit>``."""
    return cache_root() / "paper_stimuli" / PAPER_COMMIT


def base_url() -> str:
    url = os.environ.get("WARMEVAL_STIMULI_URL", DEFAULT_BASE_URL)
    return url if url.endswith("/") else url + "/"


def url_of(spec: PaperFile) -> str:
    return base_url() + spec.name


def _by_hand(spec: PaperFile, target: Path) -> str:
    return (
        f"run `warmeval stimuli fetch` where GitHub can be reached, or download {DEFAULT_BASE_URL}{spec.name} "
        f"(repository {PAPER_REPO}, commit {PAPER_COMMIT}) by hand and place it at {target}"
    )


def check_content(spec: PaperFile, data: bytes, origin: str) -> str:
    """Check one file's bytes against the release; return its SHA-256 or raise a `StimuliError` naming ``origin``."""
    digest = hashlib.sha256(data).hexdigest()
    if spec.sha256 is not None and digest != spec.sha256:
        raise StimuliError(f"{origin}: SHA-256 {digest} differs from the released file's {spec.sha256}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StimuliError(f"{origin}: not UTF-8 text ({error})") from error
    if len(text) != spec.chars:
        raise StimuliError(
            f"{origin}: {len(text):,} characters where the released file at commit {PAPER_COMMIT[:12]} has "
            f"{spec.chars:,} (a different version, or a truncated download)"
        )
    for number, record in json_objects(text, origin, StimuliError):
        missing = [name for name in REQUIRED_FIELDS if name not in record]
        if missing:
            raise StimuliError(f"{origin}: row {number}: missing field(s) {missing}")
    return digest


def _verify_cached(spec: PaperFile, path: Path) -> str:
    digest = check_content(spec, path.read_bytes(), str(path))
    recorded = recorded_sums(path.parent).get(spec.name)
    if spec.sha256 is None and recorded is not None and recorded != digest:
        raise StimuliError(
            f"{path}: SHA-256 {digest} differs from the one recorded when it was fetched ({recorded}); "
            f"delete it and run `warmeval stimuli fetch` again"
        )
    return digest


def fetch_paper_stimuli(
    names: Iterable[str] | None = None, *, force: bool = False, timeout: float = 60.0
) -> dict[str, Path]:
    """Download (or reuse from the cache) the released prompt files, verified; returns ``{key: path}``.

    Args:
        names: Keys of :data:`PAPER_FILES` (trivia, truthfulqa, disinfo) or task names; default all three.
        force: Download again even when a verified copy is cached.
        timeout: Seconds per download.

    Raises:
        StimuliError: Offline, or the download is not the released file; the message names the URL and where to put
            the file by hand.
    """
    keys = [TASK_FILES.get(name, name) for name in (names or PAPER_FILES)]
    unknown = [key for key in keys if key not in PAPER_FILES]
    if unknown:
        raise StimuliError(f"unknown stimuli file(s) {unknown}: use {', '.join(PAPER_FILES)}")
    folder = cache_dir()
    paths: dict[str, Path] = {}
    for key in keys:
        spec = PAPER_FILES[key]
        target = folder / spec.name
        fetch_verified(target, url_of(spec), check=partial(check_content, spec),
                       verify_cached=partial(_verify_cached, spec), pinned=spec.sha256 is not None,
                       by_hand=_by_hand(spec, target), error=StimuliError, force=force, timeout=timeout)  # fmt: skip
        paths[key] = target
    return paths


def fetched_path(name: str) -> Path | None:
    """The verified cached file for a key or task name, or None when it has not been fetched."""
    spec = PAPER_FILES[TASK_FILES.get(name, name)]
    path = cache_dir() / spec.name
    if not path.is_file():
        return None
    _verify_cached(spec, path)
    return path


def paper_prompts_file(task: str) -> Path:
    """``-T prompts_file=paper``: the task's released file, fetched on first use."""
    if task not in TASK_FILES:
        raise StimuliError(
            f"the authors released no prompt file for {task!r} (only {', '.join(sorted(TASK_FILES))}); MedQA is "
            "rebuilt from the dataset with -T prompt_style=paper"
        )
    return fetch_paper_stimuli([task])[TASK_FILES[task]]


def statement_of(record: dict[str, Any], family: str) -> str | None:
    """The amendment statement at the head of one released prompt, by inverting the paper's composition."""
    amendment = str(record.get("amendment_type", ""))
    template = str(record.get("prompt_template", ""))
    prompt = str(record.get("prompt", ""))
    question = record.get("prompt_disinfo") if family == "statement" else record.get("content_key")
    if amendment == UNMODIFIED or amendment not in AMENDMENT_TYPES or not isinstance(question, str) or not question:
        return None
    at = prompt.find(question)
    if at <= 0:
        return None  # the released question differs from its key (a quirk of a few lines)
    head, rules = prompt[:at], PAPER_RULES[family]
    if template in BELIEF_TEMPLATES and amendment.startswith("stake:"):
        suffix = rules.stake_separator
    elif template in BELIEF_TEMPLATES and rules.preface_after_statement:
        suffix = f"{rules.belief_separator}{NEUTRAL_PREFACE} "
    else:
        suffix = " "
    if not head.endswith(suffix) or len(head) == len(suffix):
        return None
    return head[: -len(suffix)]


def extract_statements(paths: dict[str, Path]) -> dict[str, list[str]]:
    """The distinct amendment statements of released files, per sub-type, in order of first appearance."""
    found: dict[str, list[str]] = {t: [] for t in AMENDMENT_TYPES}
    for key, path in paths.items():
        family = PAPER_FILES[key].family
        for _, record in read_json_objects(path, StimuliError):
            statement = statement_of(record, family)
            if statement is not None and statement not in found[record["amendment_type"]]:
                found[record["amendment_type"]].append(statement)
    return found


def paper_statement_pool() -> dict[str, tuple[Statement, ...]]:
    """``-T statements=paper``: the authors' 40 statements, taken from the fetched release.

    Raises:
        StimuliError: Nothing fetched yet (run ``warmeval stimuli fetch``).
    """
    paths = {key: path for key in PAPER_FILES if (path := fetched_path(key)) is not None}
    if not paths:
        raise StimuliError(
            f"statements=paper takes the authors' statements from their released prompts, which are not in "
            f"{cache_dir()} yet: run `warmeval stimuli fetch` (downloads from {PAPER_REPO} at commit "
            f"{PAPER_COMMIT[:12]}), or pass statements=ours"
        )
    found = extract_statements(paths)
    short = {t: len(v) for t, v in found.items() if not v}
    if short:
        raise StimuliError(f"no statements found for sub-type(s) {sorted(short)} in {sorted(map(str, paths.values()))}")
    return statement_pool_from_mapping(
        {t: [{"id": f"paper:{t}#{i}", "text": s} for i, s in enumerate(v, start=1)] for t, v in found.items()},
        "paper statements",
    )


def statement_pool(spec: str) -> dict[str, tuple[Statement, ...]]:
    """``-T statements=``: ``ours`` (warmeval's own), ``paper`` (the authors' 40, fetched) or a YAML/JSON file."""
    from warmeval.sycophancy.conditions import ConditionError, default_pool, load_statement_pool

    if spec == "ours":
        return default_pool()
    if spec == "paper":
        return paper_statement_pool()
    if not Path(spec).is_file():
        raise ConditionError(
            f"statements={spec!r}: use ours, paper, or a YAML/JSON file of {{sub_type: [statements]}} (no such file)"
        )
    return load_statement_pool(spec)


__all__ = [
    "PAPER_COMMIT",
    "PAPER_FILES",
    "PAPER_REPO",
    "PaperFile",
    "StimuliError",
    "cache_dir",
    "check_content",
    "extract_statements",
    "fetch_paper_stimuli",
    "fetched_path",
    "paper_prompts_file",
    "paper_statement_pool",
    "statement_of",
    "statement_pool",
]
