"""Fidelity checks of one rewrite (`check_rewrite`) and the reason codes of every failure the rewrite stage counts.

A rewrite passes when it is not empty, not truncated (``finish_reason`` must be ``stop``), keeps every fenced code
block of the original byte for byte, has a length within a band around the original's, and echoes no line of the
rewrite instructions (or their ``<assistant_reply>`` tags).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

# Rewrite length / original length. Warm rewrites add a little (empathy, validation); cold ones remove warmth.
DEFAULT_LENGTH_BANDS: dict[str, tuple[float, float]] = {"warm": (0.8, 2.5), "cold": (0.3, 1.5)}

# Fidelity and failure reasons, in the order a rewrite's problems are reported (the first is the primary reason).
EMPTY = "empty"
TRUNCATED = "truncated"  # finish_reason "length"
FINISH_REASON = "finish_reason"  # any other finish_reason than "stop" (e.g. content_filter)
CODE_BLOCK_CHANGED = "code_block_changed"
LENGTH_OUT_OF_BAND = "length_out_of_band"
ECHOED_INSTRUCTIONS = "echoed_instructions"  # the rewrite repeats the rewrite prompt's instructions
API_ERROR = "api_error"  # retries exhausted on 429 / 5xx / timeouts / connection errors (not cached)
REQUEST_REJECTED = "request_rejected"  # 400 / 413 / 422, e.g. a prompt longer than the model's context (not cached)
EMPTY_ORIGINAL = "empty_original"  # an assistant turn with no text: nothing to rewrite
NO_ASSISTANT_TURN = "no_assistant_turn"

_FENCED_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)


class Problem(NamedTuple):
    """One fidelity problem of a rewrite."""

    reason: str
    detail: str


def code_blocks(text: str) -> list[str]:
    """Fenced code blocks of ``text``, fences and info string included (an unclosed fence runs to the end)."""
    return _FENCED_BLOCK.findall(text)


def default_max_tokens(original: str, band_high: float) -> int:
    """The token limit of one rewrite: room for the longest rewrite the length band accepts (at a generous 3
    characters per token), plus 64, and never under 256."""
    return max(256, math.ceil(len(original) * band_high / 3) + 64)


_PROMPT_TAGS = ("<assistant_reply>", "</assistant_reply>", "<user_message>", "</user_message>")


def echoed_instructions(rewrite: str, prompt: str, original: str, user_message: str = "") -> list[str]:
    """Lines of the rewrite prompt's own text (not of the messages it quotes) that the rewrite repeats, and its tags."""
    quoted = f"{original}\n{user_message}"
    instructions = {line.strip() for line in prompt.splitlines() if len(line.strip()) >= 20} - {
        line.strip() for line in quoted.splitlines()
    }
    tags = [tag for tag in _PROMPT_TAGS if tag in rewrite and tag not in quoted]
    return tags + [line.strip() for line in rewrite.splitlines() if line.strip() in instructions]


def check_rewrite(
    original: str,
    rewrite: str,
    finish_reason: str | None,
    band: tuple[float, float],
    slack: int = 0,
    prompt: str | None = None,
    user_message: str = "",
) -> list[Problem]:
    """Fidelity problems of one rewrite (empty when it passes), in reporting order.

    Args:
        original: The original assistant turn.
        rewrite: The model's rewrite (stripped).
        finish_reason: The completion's finish reason; only ``stop`` passes.
        band: (low, high) bounds of ``len(rewrite) / len(original)``.
        slack: Characters allowed beyond both bounds.
        prompt: The rewrite prompt sent; when given, a rewrite that echoes its instructions fails.
        user_message: The user turn quoted in the prompt (its lines are not instructions).

    Returns:
        The problems, each with a reason code and a human-readable detail.
    """
    problems: list[Problem] = []
    if not rewrite.strip():
        problems.append(Problem(EMPTY, "the rewrite is empty"))
    if finish_reason == "length":
        problems.append(Problem(TRUNCATED, "finish_reason length: the rewrite hit the token limit"))
    elif finish_reason != "stop":
        problems.append(Problem(FINISH_REASON, f"finish_reason {finish_reason!r}"))
    missing = [block for block in code_blocks(original) if block not in rewrite]
    if missing:
        problems.append(
            Problem(CODE_BLOCK_CHANGED, f"{len(missing)} code block(s) not kept byte for byte: {missing[0][:60]!r}")
        )
    if rewrite.strip():
        low, high = band
        length, original_length = len(rewrite), len(original)
        if not low * original_length - slack <= length <= high * original_length + slack:
            ratio = length / original_length if original_length else math.inf
            problems.append(
                Problem(LENGTH_OUT_OF_BAND, f"length ratio {ratio:.2f} outside [{low}, {high}] (slack {slack} chars)")
            )
    if prompt is not None and rewrite.strip():
        echoed = echoed_instructions(rewrite, prompt, original, user_message)
        if echoed:
            problems.append(
                Problem(
                    ECHOED_INSTRUCTIONS, f"{len(echoed)} line(s) of the rewrite instructions echoed: {echoed[0][:60]!r}"
                )
            )
    return problems
