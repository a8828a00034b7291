"""Judges: who decides whether a response is correct or a refusal, and how far that decision can be trusted.

    grader.py         the free-text correctness grader of the four reliability tasks (Inspect scorer + metrics)
    judge.py          the ``grader`` model role: its pinned default (the paper's GPT-4o snapshot), the pre-flight
                      check, the judge prompt (the SI text the user supplies, or warmeval's own)
    refusal.py        the refusal phrase rules (``paper``: the authors' regex, quirks included; ``improved``)
    refusal_judge.py  AdvBench's refusal judge and its metrics
    scripted.py       an offline scripted judge (``warmeval-scripted/match``) for tests and the demo

The judge-agreement study (re-grade the authors' released responses, compare with their labels) builds each
sample with the live task's own record builder and reads the release through the analysis's loader, so it sits
above both: `warmeval.agreement`, fronted by ``warmeval judges agreement``.
"""

from warmeval.scorers.judges.grader import (
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
from warmeval.scorers.judges.refusal import PAPER_REFUSAL_PHRASES, RefusalRule, is_refusal

__all__ = [
    "GRADER_ROLE",
    "PAPER_REFUSAL_PHRASES",
    "RefusalRule",
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
