"""SocioT warmth, one package: the metric, its files, the Inspect scorer, the lm-eval metric, and the trajectory a run
writes from its logs.

Map: `metric` (`sociot_scores`, the ``paper`` and ``text_logprob`` modes, `summarize`), `files` (reading texts,
per-text scores, `write_trajectory`, `trajectories_from_logs` for `warmeval run`), `inspect_scorer` (`sociot_warmth`),
`lm_eval` (the metric behind ``scorers/lm_eval_tasks/sociot/``; lm-eval reads its YAML there, beside the capability
tasks, through one ``--include_path``). The generations task is `warmeval.tasks.sociot_generations`; the command,
`warmeval sociot`.
"""

from __future__ import annotations

from warmeval.scorers.sociot.metric import (
    DEFAULT_MODEL,
    DIMENSIONS,
    MODES,
    SocioTSummary,
    is_gpt2,
    load_model,
    resolve_mode,
    resolve_model,
    sociot_scores,
    summarize,
)

__all__ = [
    "DEFAULT_MODEL", "DIMENSIONS", "MODES", "SocioTSummary", "is_gpt2", "load_model", "resolve_mode", "resolve_model",
    "sociot_scores", "summarize",
]  # fmt: skip
