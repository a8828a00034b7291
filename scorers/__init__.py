"""Scorers: the free-text correctness grader, refusal rules and an offline scripted judge."""

from warmeval.scorers.grader import (
    GRADER_ROLE,
    free_text_grader,
    graded_accuracy,
    graded_error_rate,
    graded_stderr,
    parse_verdict,
    read_verdict,
    refusal_rate,
    unparseable_rate,
)
from warmeval.scorers.refusal import PAPER_REFUSAL_PHRASES, is_refusal

__all__ = [
    "GRADER_ROLE",
    "PAPER_REFUSAL_PHRASES",
    "free_text_grader",
    "graded_accuracy",
    "graded_error_rate",
    "graded_stderr",
    "is_refusal",
    "parse_verdict",
    "read_verdict",
    "refusal_rate",
    "unparseable_rate",
]
