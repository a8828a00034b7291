"""Answers out of free text: the MMLU letter and the GSM8K final number, strictly (`INVALID` when none)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# lm-eval's regex filters return this when nothing matches; warmeval's own filters return it too.
INVALID = "[invalid]"
# The target of a document without one: never equal to any extracted answer, [invalid] included.
NO_TARGET = "[no target]"
LETTERS = "ABCD"
# lm-eval's exact-match metric, the score of both controls.
METRIC = "exact_match"


# "The best answer is C.", "Answer: (B)", "**Answer:** D", "the answer would be option A".
_ANSWER_LETTER = re.compile(
    r"(?i:\banswer)(?:\s+(?i:is|would\s+be|will\s+be))?[\s:*(\[\"'=]{0,8}(?:(?i:option|choice)\s*\(?)?([A-D])(?![A-Za-z0-9])"
)
# A response that is only a letter: "B", "(B)", "B.", "**B**".
_LONE_LETTER = re.compile(r"^[\s*(\[]*([A-D])[\s*)\].:]*$")
# A response that opens with a lettered option: "B. Mitochondrion", "C) ...".
_LEADING_LETTER = re.compile(r"^[\s*(\[]*([A-D])[.):\]]\s")

# A number: optional sign and dollar sign, thousands groups or plain digits, optional decimals. Commas only in
# groups of three, so a list "1,2,3" is three numbers, not 123.
_NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_HASH_ANSWER = re.compile(r"####\s*(" + _NUMBER + ")")
_STATED_ANSWER = re.compile(r"(?i:\banswer)(?:\s+(?i:is))?[\s:*=]{0,6}(" + _NUMBER + ")")
_ANY_NUMBER = re.compile(r"(?<![\w.])(" + _NUMBER + r")(?![\w])")


def extract_choice_letter(response: str | None) -> str | None:
    """The option letter (A-D) a response gives, or None when it gives none.

    The last "answer ... X" statement wins (chain-of-thought responses may mention letters before concluding); else
    a response that is only a letter or opens with "X." / "X)". A bare capital A elsewhere is not taken: it is too
    often the article.
    """
    if not response:
        return None
    stated = _ANSWER_LETTER.findall(response)
    if stated:
        return str(stated[-1])
    for pattern in (_LONE_LETTER, _LEADING_LETTER):
        match = pattern.match(response)
        if match:
            return match.group(1)
    return None


def normalize_number(text: str) -> str | None:
    """Canonical form of a number ("$1,200.50" -> "1200.5", "18.00" -> "18"), or None if it is not one."""
    cleaned = text.strip().replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_final_number(response: str | None) -> str | None:
    """The final numeric answer of a response (canonical form), or None when it has no number.

    Prefers the last "#### N", then the last "answer is N", then the last number anywhere.
    """
    if not response:
        return None
    for pattern in (_HASH_ANSWER, _STATED_ANSWER, _ANY_NUMBER):
        found = pattern.findall(response)
        if found:
            return normalize_number(found[-1])
    return None


# ------------------------------------------------------------------------------------------------------ local files


