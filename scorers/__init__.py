"""Scorers: the free-text correctness grader, refusal rules and an offline scripted judge."""

from warmeval.scorers.grader import (
    GRADER_ROLE,
    accuracy,
    error_rate,
    free_text_grader,
    parse_verdict,
    refusal_rate,
    stderr,
    unparseable_rate,
)
from warmeval.scorers.refusal import PAPER_REFUSAL_PHRASES, is_refusal

__all__ = [
    "GRADER_ROLE",
    "PAPER_REFUSAL_PHRASES",
    "accuracy",
    "error_rate",
    "free_text_grader",
    "is_refusal",
    "parse_verdict",
    "refusal_rate",
    "stderr",
    "unparseable_rate",
]
