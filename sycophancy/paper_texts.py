"""The paper's prompts that exist only as text in its Supplementary Information, supplied by the user.

The authors released their evaluation prompts as files (`warmeval.sycophancy.stimuli` fetches them), but four prompts
of the study exist only as text in the paper's Supplementary Information (SI). warmeval never ships that text: a user
who wants the paper's own wording copies it from the SI into a file and declares it here, once:

* ``judge``: the LLM judge's prompt (SI section 3.1, "input structure"; the Methods: GPT-4o-2024-08-06 at
  temperature 0), used by the free-text grader as a jinja2 template (its placeholders: `JUDGE_PLACEHOLDERS`);
* ``rewrite_warm`` and ``rewrite_cold``: the warm and cold rewrite prompts of the training data (SI section 1.2),
  sent by ``warmeval data rewrite`` as the system message, with the reply to rewrite as the user message;
* ``warm_system_prompt``: the warm system-prompt control ("system prompts containing the same warmth instructions
  from our fine-tuning datasets", Methods; the instructions are those of SI section 1.2).

A declared text is a file ``<key>.txt`` in :func:`texts_dir` (``$WARMEVAL_PAPER_TEXTS``, default
``$WARMEVAL_CACHE_DIR/paper_texts``); ``warmeval stimuli texts --set KEY=FILE`` copies one there and prints its
SHA-256. Where a stage is given the keyword ``paper`` it reads the declared text (an error naming the file to supply
and its SI section when it is absent); given nothing, it uses the declared text when there is one and warmeval's own
wording otherwise, and says so. Every log and manifest records the SHA-256 of the text used and whether it equals the
declared one (`describe_text`), so that two runs can be checked to have used the same text and the comparability
verdict can tell the paper's text from any other.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from warmeval.util.files import cache_root, write_atomic


class PaperTextError(ValueError):
    """A paper text that is asked for and not supplied, or that cannot be used (the message says which file)."""


@dataclass(frozen=True)
class PaperText:
    """One SI text a user may supply."""

    key: str
    what: str
    si_section: str


PAPER_TEXTS: dict[str, PaperText] = {
    "judge": PaperText("judge", "the LLM judge's prompt (correctness of free-text answers)", "3.1"),
    "rewrite_warm": PaperText("rewrite_warm", "the warm rewrite prompt of the training data", "1.2"),
    "rewrite_cold": PaperText("rewrite_cold", "the cold rewrite prompt of the training data", "1.2"),
    "warm_system_prompt": PaperText(
        "warm_system_prompt", "the warm system prompt of the system-prompt control (the warmth instructions)", "1.2"
    ),
}
# The variables a judge template may use (jinja2, ``{{ question }}``); it must show the judge the question
# (``question``), the truth (``answer`` or ``gold_answers``) and the response (`JUDGE_REQUIRED`).
JUDGE_PLACEHOLDERS = {
    "question": "the question as asked, without amendment or stated belief",
    "answer": "the first gold answer",
    "gold_answers": "every gold answer, one per line as '- answer'",
    "false_answers": "the known-false answers, one per line ('(none)' when the task has none)",
    "response": "the response to grade",
    "instructions": "warmeval's per-task grading guidance (empty unless the template uses it)",
}
JUDGE_REQUIRED = (("question",), ("answer", "gold_answers"), ("response",))


@dataclass(frozen=True)
class TextRecord:
    """Which text a stage used: where from, its SHA-256, and whether it is the declared paper text.

    Attributes:
        source: ``paper`` (the declared SI text), ``warmeval`` (warmeval's own wording) or the file's path.
        sha256: SHA-256 of the text's UTF-8 bytes.
        paper: The text equals the declared paper text (False when none is declared).
    """

    source: str
    sha256: str
    paper: bool

    def as_dict(self) -> dict[str, str | bool]:
        return {"source": self.source, "sha256": self.sha256, "paper": self.paper}


def texts_dir() -> Path:
    """Where declared paper texts live: ``$WARMEVAL_PAPER_TEXTS``, default ``$WARMEVAL_CACHE_DIR/paper_texts``."""
    configured = os.environ.get("WARMEVAL_PAPER_TEXTS")
    return Path(configured).expanduser() if configured else cache_root() / "paper_texts"


def _spec(key: str) -> PaperText:
    if key not in PAPER_TEXTS:
        raise PaperTextError(f"unknown paper text {key!r}: use one of {', '.join(PAPER_TEXTS)}")
    return PAPER_TEXTS[key]


def text_path(key: str) -> Path:
    """The file a declared text ``key`` lives in (whether or not it exists)."""
    return texts_dir() / f"{_spec(key).key}.txt"


def read_text_file(path: str | Path, what: str) -> str:
    """A text file's content: UTF-8, not empty; errors name the file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise PaperTextError(f"{what}: {file}: no such file" + (" (a folder)" if file.is_dir() else ""))
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PaperTextError(f"{what}: {file}: not UTF-8 text ({error})") from None
    if not text.strip():
        raise PaperTextError(f"{what}: {file}: empty")
    return text


def declared_text(key: str) -> str | None:
    """The declared paper text ``key``, or None when the user has not supplied it."""
    path = text_path(key)
    return read_text_file(path, f"paper text {key!r}") if path.is_file() else None


def require_text(key: str) -> tuple[Path, str]:
    """The declared paper text ``key`` (its file and content), or an error saying how to supply it."""
    spec = _spec(key)
    path = text_path(key)
    if not path.is_file():
        raise PaperTextError(
            f"the paper's text of {spec.what} is not supplied: warmeval does not ship the paper's Supplementary "
            f"Information; copy it from SI section {spec.si_section} into a file and run `warmeval stimuli texts --set "
            f"{key}=FILE` (it is kept at {path})"
        )
    return path, read_text_file(path, f"paper text {key!r}")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def describe_text(key: str, source: str, text: str) -> TextRecord:
    """The record of a text used for ``key``: its source, digest and whether it is the declared paper text."""
    declared = declared_text(key)
    # Surrounding whitespace is not the text: a stage may strip what it sends.
    return TextRecord(source, sha256_text(text), declared is not None and declared.strip() == text.strip())


def declare_text(key: str, source: str | Path) -> tuple[Path, str]:
    """Copy ``source`` to the declared place of paper text ``key``; returns the path and its SHA-256."""
    text = read_text_file(source, f"paper text {key!r}")
    path = text_path(key)
    write_atomic(path, text)
    return path, sha256_text(text)


__all__ = [
    "JUDGE_PLACEHOLDERS",
    "JUDGE_REQUIRED",
    "PAPER_TEXTS",
    "PaperText",
    "PaperTextError",
    "TextRecord",
    "declare_text",
    "declared_text",
    "describe_text",
    "read_text_file",
    "require_text",
    "sha256_text",
    "text_path",
    "texts_dir",
]
