"""The warm system-prompt control: warmth instructed by a system prompt instead of fine-tuning."""

from __future__ import annotations

from pathlib import Path

import jinja2
from inspect_ai.model import ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, solver
from jinja2.sandbox import SandboxedEnvironment

PROMPTS_DIR = Path(__file__).with_name("prompts")
BUILTIN_SYSTEM_PROMPTS = {"warm": PROMPTS_DIR / "warm_system.j2"}


def resolve_system_prompt(spec: str | None) -> str | None:
    """The system prompt text for ``-T system_prompt=warm|none|PATH`` (None for none).

    A PATH ending in ``.j2``/``.jinja`` is rendered with jinja2 (no variables); any other file is used verbatim.
    """
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    path = BUILTIN_SYSTEM_PROMPTS.get(spec.strip(), Path(spec).expanduser())
    if not path.is_file():
        raise ValueError(f"system_prompt={spec!r}: not 'warm', 'none' or an existing file")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".j2", ".jinja"):
        # Sandboxed: a template file may format text, not reach Python's internals.
        text = SandboxedEnvironment(undefined=jinja2.StrictUndefined).from_string(text).render()
    text = text.strip()
    if not text:
        raise ValueError(f"system_prompt={spec!r}: {path} is empty")
    return text


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
