"""The warm system-prompt control: warmth instructed by a system prompt instead of fine-tuning.

``-T system_prompt=``: ``paper`` (the paper's warmth instructions, SI section 1.2, as the user declared them:
`warmeval.sycophancy.paper_texts`), ``warm`` (warmeval's own wording, ``prompts/warm_system.j2``), ``none`` or a file.
`system_prompt_record` says which text a run used, with its SHA-256, for the log.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from inspect_ai.model import ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, solver
from jinja2.sandbox import SandboxedEnvironment

from warmeval.sycophancy.paper_texts import PaperTextError, describe_text, require_text

PROMPTS_DIR = Path(__file__).with_name("prompts")
BUILTIN_SYSTEM_PROMPTS = {"warm": PROMPTS_DIR / "warm_system.j2"}


class SystemPromptError(PaperTextError):
    """A system prompt that cannot be used (a `ValueError`; the tasks report it as a `DataError`, as they do every
    `PaperTextError` of their ``system_prompt`` argument)."""


def resolve_system_prompt(spec: str | None) -> str | None:
    """The system prompt text for ``-T system_prompt=paper|warm|none|PATH`` (None for none).

    A PATH ending in ``.j2``/``.jinja`` is rendered with jinja2 (no variables); any other file is used verbatim.
    """
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    if spec.strip() == "paper":
        return require_text("warm_system_prompt")[1].strip()
    path = BUILTIN_SYSTEM_PROMPTS.get(spec.strip(), Path(spec).expanduser())
    if path.is_dir():
        raise SystemPromptError(f"{path}: a folder, not a system prompt file")
    if not path.is_file():
        raise SystemPromptError(f"system_prompt={spec!r}: not 'paper', 'warm', 'none' or an existing file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise SystemPromptError(
            f"{path}: line {line}: byte {error.object[error.start]:#04x} is not UTF-8; a system prompt file must be "
            "UTF-8 text"
        ) from None
    if path.suffix in (".j2", ".jinja"):
        # Sandboxed: a template file may format text, not reach Python's internals.
        text = SandboxedEnvironment(undefined=jinja2.StrictUndefined).from_string(text).render()
    text = text.strip()
    if not text:
        raise SystemPromptError(f"system_prompt={spec!r}: {path} is empty")
    return text


def system_prompt_record(spec: str | None) -> dict[str, str | bool] | None:
    """Which system prompt text ``spec`` names: its source, SHA-256 and whether it is the declared paper text."""
    text = resolve_system_prompt(spec)
    if text is None or spec is None:
        return None
    return describe_text("warm_system_prompt", spec.strip(), text).as_dict()


@solver
def system_prompt(text: str) -> Solver:
    """Insert ``text`` verbatim as a system message (after any existing system messages)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        position = sum(1 for message in state.messages if message.role == "system")
        state.messages.insert(position, ChatMessageSystem(content=text))
        return state

    return solve


def system_prompt_solver(spec: str | None) -> Solver | None:
    """A solver adding the system prompt named by ``spec``, or None when ``spec`` is none."""
    text = resolve_system_prompt(spec)
    return system_prompt(text) if text else None
