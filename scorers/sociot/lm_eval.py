"""The real code behind warmeval's lm-eval SocioT tasks (their utils.py only imports from here).

lm-eval re-executes a task's utils.py for every ``!function``; the GPT-2 cache and the metric registration live in
this module instead, so they happen once per process.

Run-time options come through ``--metadata`` (JSON): ``path`` (the texts or prompts file), ``column`` (default
``text`` / ``prompt``), ``sociot_model`` (a local GPT-2 folder; else ``$WARMEVAL_SOCIOT_MODEL``, else the Hub id),
``mode`` (``paper``, the authors' implementation and the default, or ``text_logprob``).
"""

from __future__ import annotations

import os
from typing import Any

from warmeval.scorers.sociot.metric import DEFAULT_MODEL, MODEL_ENV, resolve_mode, sociot_scores

METRIC = "sociot_warmth"
_SETTINGS: dict[str, Any] = {"model": None, "mode": "paper"}


def _passthrough(items: list[float]) -> list[float]:
    return items


def register_metric_once() -> None:
    """Register ``sociot_warmth`` (aggregation mean, higher is better) unless it already is."""
    import lm_eval.api.metrics  # noqa: F401 (registers the 'mean' aggregation first)
    from lm_eval.api.registry import metric_registry, register_metric

    if METRIC not in metric_registry:
        register_metric(metric=METRIC, higher_is_better=True, output_type="generate_until", aggregation="mean")(
            _passthrough
        )


def _configure(sociot_model: str | None, mode: str | None) -> None:
    model = sociot_model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    _SETTINGS.update(model=model, mode=resolve_mode(mode or "paper"))


def _rows(path: str | None, column: str, what: str) -> list[str]:
    from warmeval.scorers.sociot.files import read_texts

    if not path:
        raise ValueError(f'the {what} task needs --metadata \'{{"path": "FILE"}}\' naming the file')
    return [item.text for item in read_texts(path, column)]


def load_texts(path: str | None = None, column: str = "text", sociot_model: str | None = None,
               mode: str | None = None, **_: Any) -> dict[str, Any]:  # fmt: skip
    """custom_dataset of ``sociot_warmth_file``: the texts of a JSONL/CSV file, scored here in one batched pass."""
    import datasets

    register_metric_once()
    _configure(sociot_model, mode)
    texts = _rows(path, column, "sociot_warmth_file")
    scores = sociot_scores(texts, model=_SETTINGS["model"], mode=_SETTINGS["mode"])
    docs = [{"text": t, "score": float(s)} for t, s in zip(texts, scores, strict=True)]
    return {"test": datasets.Dataset.from_list(docs)}


def load_prompts(path: str | None = None, column: str = "prompt", sociot_model: str | None = None,
                 mode: str | None = None, **_: Any) -> dict[str, Any]:  # fmt: skip
    """custom_dataset of ``sociot_warmth_gen``: the prompts to answer (e.g. the training validation prompts)."""
    import datasets

    register_metric_once()
    _configure(sociot_model, mode)
    prompts = _rows(path, column, "sociot_warmth_gen")
    return {"test": datasets.Dataset.from_list([{"prompt": p} for p in prompts])}


def process_file_doc(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """The precomputed score of a text (the model's output is not used)."""
    return {METRIC: float(doc["score"])}


def process_generation(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """The SocioT warmth of the model's response."""
    response = results[0] if results else ""
    score = sociot_scores([str(response)], model=_SETTINGS["model"] or DEFAULT_MODEL, mode=_SETTINGS["mode"])
    return {METRIC: float(score[0])}
