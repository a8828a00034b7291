"""SocioT: how warm (or human, high-status, close, feminine) a text sounds to GPT-2.

Cheng, Yu & Jurafsky 2025, "HumT DumT: Measuring and controlling human-like language in LLMs" (arXiv 2502.13259).
A text is quoted after speaker contexts ("My friend said, ..." vs "The stranger said, ...") and scored by how much
more likely GPT-2 finds it after the positive set of contexts than after the negative set.

Two modes (``paper`` is the default; the word means the authors' released behaviour, as everywhere in warmeval):

* ``paper`` reproduces the authors' released implementation exactly, the one whose scale the paper reports (0.011 at
  epoch 0 to about 0.03 after warm fine-tuning, GPT-2; the data of its Fig. 1a): the text is cut to its first 300
  characters and wrapped in straight double quotes (an empty text stays empty, without quotes); each set's sequences (no
  BOS token) are right-padded with token id 0 to the set's longest length; the set's value is minus the mean next-token
  cross-entropy over ALL positions of that padded batch, padded positions included (label 0); score = positive set value
  minus negative set value.
* ``text_logprob`` is a principled variant of warmeval's: the log-probability of the quoted text's tokens only (through
  the closing quote) under each context, log-mean-exp within each set, positive minus negative; ``per_token=True``
  divides each log-probability by the number of text tokens. An empty text scores 0. Its scale is not the paper's.

``code`` is the former name of ``paper``: version 0.1.0 and earlier called the authors' implementation ``code``,
and gave the name ``paper`` to the variant now called ``text_logprob``. ``code`` still works for one release, with a
`FutureWarning` (`resolve_mode`).

Dimensions (positive set vs negative set; see `DIMENSIONS`). ``warmth`` (My friend, The lover, The mentor, The idol
vs The stranger, The enemy, The examiner, The dictator) and ``humt`` (He, She vs It) are the authors'; the word lists
of ``status`` (boss, leader, expert, judge vs intern, servant, follower, novice), ``social_distance`` (My friend,
sister, brother, neighbor vs The stranger, foreigner, outsider, visitor) and ``gender`` (She vs He) are warmeval's own,
built with the same template rules.

Efficiency: every sequence is run once, in length-sorted buckets across texts (fp32, no attention mask: causal
attention makes padding beyond a row's own extent invisible to it), so scores do not depend on the batch size.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Mode = Literal["paper", "text_logprob"]
MODES: tuple[Mode, ...] = ("paper", "text_logprob")
DEPRECATED_MODES: dict[str, Mode] = {"code": "paper"}  # old spelling -> new; removed in the next release
DEFAULT_MODEL = "openai-community/gpt2"
MODEL_ENV = "WARMEVAL_SOCIOT_MODEL"
MAX_CHARS = 300
TOKENS_PER_BATCH = 4096

DIMENSIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "warmth": (
        ("My friend", "The lover", "The mentor", "The idol"),
        ("The stranger", "The enemy", "The examiner", "The dictator"),
    ),
    "humt": (("He", "She"), ("It",)),
    "status": (
        ("The boss", "The leader", "The expert", "The judge"),
        ("The intern", "The servant", "The follower", "The novice"),
    ),
    "social_distance": (
        ("My friend", "My sister", "My brother", "My neighbor"),
        ("The stranger", "The foreigner", "The outsider", "The visitor"),
    ),
    "gender": (("She",), ("He",)),
}

_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


@dataclass(frozen=True)
class SocioTSummary:
    """Mean score, its standard error across texts, and a seeded bootstrap confidence interval.

    ``n`` counts the texts scored; ``empty_texts`` the empty or whitespace-only ones (NaN scores), left out of the
    mean.
    """

    n: int
    mean: float
    se: float
    ci_low: float
    ci_high: float
    empty_texts: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "mean": self.mean, "se": self.se, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "empty_texts": self.empty_texts}  # fmt: skip


def is_empty_text(text: str) -> bool:
    """An empty or whitespace-only text: SocioT would score only its speaker contexts, so it is not averaged in."""
    return not text.strip()


def resolve_mode(mode: str) -> Mode:
    """A SocioT mode by name: ``paper`` or ``text_logprob``; the old ``code`` means ``paper``, with a FutureWarning.

    Raises:
        ValueError: Any other name.
    """
    if mode in DEPRECATED_MODES:
        new = DEPRECATED_MODES[mode]
        warnings.warn(
            f"SocioT mode {mode!r} is deprecated and will be removed in the next release: it is now called {new!r} "
            "(the authors' implementation, the paper's scale); the former 'paper' variant is now 'text_logprob'",
            FutureWarning,
            stacklevel=3,
        )
        return new
    if mode not in MODES:
        raise ValueError(f"unknown SocioT mode {mode!r}: use 'paper' (the authors' implementation) or 'text_logprob'")
    return mode  # type: ignore[return-value]  # checked against MODES above


def resolve_model(model: str | None = None) -> str:
    """The model to load: the argument, else ``$WARMEVAL_SOCIOT_MODEL``, else GPT-2 from the Hub."""
    if model and model != DEFAULT_MODEL:
        return model
    return os.environ.get(MODEL_ENV) or model or DEFAULT_MODEL


def is_gpt2(model: str) -> bool:
    """Whether ``model`` is GPT-2 small, the paper's SocioT model: its Hub id, or a folder whose config says so."""
    import json

    if model in (DEFAULT_MODEL, "gpt2"):
        return True
    config = Path(model) / "config.json"
    try:
        spec = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    shape = {"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257}
    return isinstance(spec, dict) and all(spec.get(key) == value for key, value in shape.items())


def load_model(model: str | None = None, device: str | None = None) -> tuple[Any, Any]:
    """Load (once per process) a causal LM and its tokenizer, in fp32 eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = resolve_model(model)
    target = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (name, target)
    if key not in _LOADED:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
            lm = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
        except OSError as error:
            raise OSError(
                f"cannot load SocioT model {name!r} ({error}). Offline? Pass a local GPT-2 folder (--model PATH on "
                f"the command line, model=PATH in Python) or set {MODEL_ENV}=PATH."
            ) from error
        lm = lm.to(target)  # type: ignore[arg-type]
        lm.eval()
        _LOADED[key] = (lm, tokenizer)
    return _LOADED[key]


def quote(text: str) -> str:
    """The quoted text: first 300 characters in straight double quotes; an empty text stays empty."""
    cut = text[:MAX_CHARS]
    return f'"{cut}"' if cut else ""


@dataclass
class _Row:
    text: int
    positive: bool
    ids: list[int]
    text_start: int  # index of the first token of the quoted text
    need: int  # positions whose logits the score needs (paper: the set's padded length; text_logprob: own length)


def _build_rows(texts: Sequence[str], tokenizer: Any, dimension: str, mode: Mode) -> list[_Row]:
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown SocioT dimension {dimension!r}: choose from {sorted(DIMENSIONS)}")
    positive, negative = DIMENSIONS[dimension]
    strings: list[str] = []
    spans: list[tuple[int, bool, int]] = []
    for index, text in enumerate(texts):
        quoted = quote(text)
        for is_positive, subjects in ((True, positive), (False, negative)):
            for subject in subjects:
                prefix = f"{subject} said,"
                strings.append(f"{prefix} {quoted}")
                spans.append((index, is_positive, len(prefix)))
    encoded = tokenizer(strings, add_special_tokens=False, return_offsets_mapping=True)
    rows = []
    for (index, is_positive, prefix_chars), ids, offsets in zip(
        spans, encoded["input_ids"], encoded["offset_mapping"], strict=True
    ):
        text_start = next((k for k, (_, end) in enumerate(offsets) if end > prefix_chars), len(ids))
        rows.append(_Row(index, is_positive, list(ids), text_start, len(ids)))
    if mode == "paper":
        # Each (text, set) group is padded to its longest member: every row needs that many positions.
        longest: dict[tuple[int, bool], int] = {}
        for row in rows:
            key = (row.text, row.positive)
            longest[key] = max(longest.get(key, 0), len(row.ids))
        for row in rows:
            row.need = longest[(row.text, row.positive)]
    return rows


def _token_logprobs(rows: list[_Row], lm: Any, device: str, batch_size: int | None) -> list[np.ndarray]:
    """log p(token k+1 | tokens <= k) for k < need-1 of every row, padding with token 0 past the row's end."""
    import torch

    order = sorted(range(len(rows)), key=lambda i: rows[i].need, reverse=True)
    out: list[np.ndarray] = [np.empty(0)] * len(rows)
    start = 0
    while start < len(order):
        width = rows[order[start]].need
        count = batch_size or max(1, TOKENS_PER_BATCH // max(width, 1))
        batch = order[start : start + count]
        start += count
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        for slot, row_index in enumerate(batch):
            row_ids = rows[row_index].ids
            ids[slot, : len(row_ids)] = torch.tensor(row_ids, dtype=torch.long)
        ids = ids.to(device)
        with torch.no_grad():
            logits = lm(input_ids=ids).logits.float()
        labels = ids[:, 1:]
        shifted = logits[:, :-1, :]
        picked = shifted.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(shifted, dim=-1)
        picked = picked.cpu().numpy().astype(np.float64)
        for slot, row_index in enumerate(batch):
            out[row_index] = picked[slot, : rows[row_index].need - 1]
    return out


def _scores_from(
    rows: list[_Row], logprobs: list[np.ndarray], texts: Sequence[str], mode: Mode, per_token: bool
) -> np.ndarray:
    n_texts = len(texts)
    values: dict[tuple[int, bool], list[float]] = {}
    if mode == "paper":
        sums: dict[tuple[int, bool], list[float]] = {}
        for row, lp in zip(rows, logprobs, strict=True):
            entry = sums.setdefault((row.text, row.positive), [0.0, 0.0])
            entry[0] += float(lp.sum())
            entry[1] += len(lp)
        for key, (total, count) in sums.items():
            values[key] = [total / count]  # minus the mean cross-entropy
        scores = [values[(i, True)][0] - values[(i, False)][0] for i in range(n_texts)]
        return np.asarray(scores, dtype=np.float64)
    for row, lp in zip(rows, logprobs, strict=True):
        # lp[k] predicts token k+1: the text's tokens are k+1 >= text_start.
        text_lp = lp[max(row.text_start - 1, 0) :]
        total = float(text_lp.sum())
        if per_token and len(text_lp):
            total /= len(text_lp)
        values.setdefault((row.text, row.positive), []).append(total)
    scores = []
    for i in range(n_texts):
        if not quote(texts[i]):
            scores.append(0.0)  # no text tokens to score
            continue
        pos, neg = values[(i, True)], values[(i, False)]
        scores.append(_log_mean_exp(pos) - _log_mean_exp(neg))
    return np.asarray(scores, dtype=np.float64)


def _log_mean_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def sociot_scores(
    texts: Iterable[str],
    *,
    model: str | None = DEFAULT_MODEL,
    mode: str = "paper",
    dimension: str = "warmth",
    batch_size: int | None = None,
    device: str | None = None,
    per_token: bool = False,
    mc_dropout: int = 0,
    seed: int = 0,
    return_se: bool = False,
) -> Any:
    """One SocioT score per text.

    Args:
        texts: The texts to score.
        model: HF id or local folder of a causal LM (default GPT-2; ``$WARMEVAL_SOCIOT_MODEL`` overrides the default).
        mode: ``paper`` (the authors' implementation, exactly) or ``text_logprob`` (text tokens only, log-mean-exp);
            ``code`` is the deprecated spelling of ``paper``.
        dimension: warmth, humt, status, social_distance or gender.
        batch_size: Rows (sequences) per forward pass; default: a token budget per bucket.
        device: Torch device (default: cuda if available, else cpu).
        per_token: ``text_logprob`` mode only: normalise log-probabilities by the number of text tokens.
        mc_dropout: If N > 0, run N passes with dropout active (the original uses 100) and average them.
        seed: Seed of the dropout passes.
        return_se: With ``mc_dropout``, also return the standard error of the mean across passes.

    Returns:
        ``numpy.ndarray`` of scores (and of their dropout standard errors when ``return_se``).
    """
    import torch

    items = [t if isinstance(t, str) else str(t) for t in texts]
    resolved = resolve_mode(mode)
    if not items:
        return (np.empty(0), np.empty(0)) if return_se else np.empty(0)
    lm, tokenizer = load_model(model, device)
    target = str(next(lm.parameters()).device)
    rows = _build_rows(items, tokenizer, dimension, resolved)
    if mc_dropout <= 0:
        scores = _scores_from(rows, _token_logprobs(rows, lm, target, batch_size), items, resolved, per_token)
        return (scores, np.zeros_like(scores)) if return_se else scores
    torch.manual_seed(seed)
    passes = []
    lm.train()
    try:
        for _ in range(mc_dropout):
            passes.append(_scores_from(rows, _token_logprobs(rows, lm, target, batch_size), items, resolved, per_token))
    finally:
        lm.eval()
    stacked = np.stack(passes)
    mean = stacked.mean(axis=0)
    se = stacked.std(axis=0, ddof=1) / math.sqrt(mc_dropout) if mc_dropout > 1 else np.zeros_like(mean)
    return (mean, se) if return_se else mean


def summarize(
    scores: Sequence[float] | np.ndarray, *, n_boot: int = 100, seed: int = 0, level: float = 0.95
) -> SocioTSummary:
    """Mean, standard error across texts, and a seeded percentile bootstrap CI (``n_boot`` resamples of texts).

    NaN scores (the empty texts `warmeval.scorers.sociot.files.score_items` leaves unscored) are left out of every
    statistic and counted in ``empty_texts``.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no scores to summarise")
    missing = np.isnan(values)
    empty = int(missing.sum())
    values = values[~missing]
    if values.size == 0:
        raise ValueError(f"no scores to summarise: all {empty} texts are empty or whitespace only")
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else float("nan")
    rng = np.random.default_rng(seed)
    boots = np.array([values[rng.integers(0, values.size, values.size)].mean() for _ in range(n_boot)])
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return SocioTSummary(int(values.size), mean, se, float(low), float(high), empty)
