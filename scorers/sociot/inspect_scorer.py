"""SocioT warmth as an Inspect scorer, usable on any task's outputs (or on an existing log with `inspect score`)."""

from __future__ import annotations

import asyncio
import threading

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from warmeval.scorers.sociot.metric import DEFAULT_MODEL, is_empty_text, resolve_mode, sociot_scores

# One forward pass at a time: the model is shared by every sample of the process.
_LOCK = threading.Lock()


@scorer(metrics=[mean(), stderr()])
def sociot_warmth(
    model: str = DEFAULT_MODEL, mode: str = "paper", dimension: str = "warmth", device: str | None = None
) -> Scorer:
    """SocioT score of the model's answer (higher: warmer).

    Args:
        model: GPT-2 (HF id or local folder; ``$WARMEVAL_SOCIOT_MODEL`` overrides the default id).
        mode: ``paper`` (the authors' implementation, the paper's scale) or ``text_logprob`` (warmeval's variant).
        dimension: warmth, humt, status, social_distance or gender.
        device: Torch device for the scoring model.
    """
    mode = resolve_mode(mode)

    def compute(text: str) -> float:
        with _LOCK:
            return float(sociot_scores([text], model=model, mode=mode, dimension=dimension, device=device)[0])

    async def score(state: TaskState, target: Target) -> Score:
        text = state.output.completion
        value = await asyncio.to_thread(compute, text)
        metadata: dict[str, object] = {"mode": mode, "dimension": dimension}
        if is_empty_text(text):
            # Scored as the authors' code scores it (its contexts alone), and marked: the trajectories read from these
            # logs (`warmeval.scorers.sociot.files.write_trajectory`) leave such answers out of the mean and count them.
            metadata["empty_text"] = True
        return Score(value=value, answer=text, metadata=metadata)

    return score
