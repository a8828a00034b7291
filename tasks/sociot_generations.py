"""SocioT validation generations: a model's answers to the held-out validation prompts, scored for warmth.

The warmth trajectory of Ibrahim, Hafner & Rocher, "Training language models to be warm can reduce accuracy and
increase sycophancy" (Nature 2026, arXiv 2507.21919): the base model and every training checkpoint answer the same
validation prompts, and SocioT (GPT-2 likelihood under warm vs cold speaker contexts) scores each answer. Run as an
Inspect task, the generations get Inspect's retries, logs and resume; ``warmeval run`` puts one per checkpoint in
its ``eval_set`` and builds the trajectory from the logs.

    inspect eval warmeval/sociot_generations --model vllm/warm-epoch-2 \\
        -T prompts_file=data/conversations/validation_prompts.jsonl -T n=300 -T sociot_model=gpt2

Source: the ``validation_prompts.jsonl`` that ``warmeval data build`` writes (``id``, ``prompt``: the first user turn
of each held-out conversation), asked as a single user message. Scorer: `warmeval.scorers.sociot_warmth` (``mean``
and ``stderr`` of the raw SocioT score; ``inspect eval --no-score`` generates only). Defaults: every prompt, max 300
tokens, temperature 0.8 (the evaluation tasks' settings).
"""

from __future__ import annotations

from typing import Any, Literal

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.solver import generate

from warmeval.scorers.sociot.inspect_scorer import sociot_warmth
from warmeval.scorers.sociot.metric import DEFAULT_MODEL, is_gpt2, resolve_mode, resolve_model
from warmeval.tasks.common import DataError
from warmeval.util.jsonl import read_validation_prompts

TASK_NAME = "sociot_generations"
VERSION = 2
# Bump VERSION when a change alters the samples or the scores; say what changed here.
CHANGELOG = {
    1: (
        "first release: the validation prompts as an Inspect task scored by sociot_warmth (replaces "
        "warmeval's own generation thread pool)"
    ),
    2: (
        "SocioT's modes renamed so that `paper` means the authors' released behaviour: the authors' implementation "
        "(formerly `code`, still the default, same scores) is `paper`; warmeval's text-tokens-only variant (formerly "
        "`paper`) is `text_logprob`; `code` still works for one release with a FutureWarning; the metadata records "
        "SocioT's model and whether it is GPT-2"
    ),
}


def record_to_sample(record: dict[str, Any]) -> Sample:
    """One validation prompt as a sample (id kept, so that every model's answer to it lines up)."""
    return Sample(id=record["id"], input=record["prompt"],
                  metadata={"task": TASK_NAME, "question_id": record["id"]})  # fmt: skip


@task
def sociot_generations(
    prompts_file: str,
    n: int | None = None,
    max_tokens: int = 300,
    temperature: float = 0.8,
    sociot_model: str | None = None,
    mode: Literal["paper", "text_logprob", "code"] = "paper",
) -> Task:
    """Answers to the validation prompts, scored by SocioT warmth.

    Args:
        prompts_file: Validation prompts JSONL (``id``, ``prompt``), from ``warmeval data build``.
        n: Use the first ``n`` prompts (default: all).
        max_tokens: Tokens per answer.
        temperature: Sampling temperature (0: greedy).
        sociot_model: SocioT's language model, HF id or folder (default GPT-2, or ``$WARMEVAL_SOCIOT_MODEL``).
        mode: SocioT's procedure: ``paper`` (the authors' implementation, the paper's scale; default; ``code`` is its
            deprecated name) or ``text_logprob`` (warmeval's text-tokens-only variant, on another scale).
    """
    try:
        mode = resolve_mode(mode)
    except ValueError as error:
        raise DataError(f"mode={mode!r}: {error}") from None
    samples = [record_to_sample(row) for row in read_validation_prompts(prompts_file, n, DataError)]
    return Task(
        dataset=MemoryDataset(samples, name=TASK_NAME),
        solver=generate(),
        scorer=sociot_warmth(model=sociot_model or DEFAULT_MODEL, mode=mode),
        config=GenerateConfig(max_tokens=max_tokens, temperature=temperature),
        name=TASK_NAME,
        version=VERSION,
        metadata={
            "task": TASK_NAME,
            "prompts_file": str(prompts_file),
            "sociot_mode": mode,
            "sociot_model": resolve_model(sociot_model),
            "sociot_model_is_gpt2": is_gpt2(resolve_model(sociot_model)),
        },  # fmt: skip
    )
