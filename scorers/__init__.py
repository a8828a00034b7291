"""Scorers, one package per concern; this face re-exports the judges' public names.

    judges/          the free-text grader, the ``grader`` role, refusal rules, the refusal judge, the scripted judge
    sociot/          SocioT warmth: the metric, its files, the Inspect scorer, the lm-eval metric
    capability/      the lm-eval capability controls (MMLU, GSM8K): readers, extractors, runner
    lm_eval_tasks/   the lm-eval task YAMLs (thin; their utils.py import the real code above)
"""

# The judges' public names, listed once (in `warmeval.scorers.judges.__all__`).
from warmeval.scorers.judges import *  # noqa: F403
from warmeval.scorers.judges import __all__ as __all__
