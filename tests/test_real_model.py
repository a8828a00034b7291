"""The real embedded model end to end: LoRA on the warm (or cold) fixture moves SocioT warmth the right way.

SmolLM2-135M-Instruct is trained briefly on the hand-written warm or cold rewrites of
warmeval/fixtures/persona_rewrites.jsonl (a seeded split of our own conversations), answers held-out prompts greedily,
and SocioT scores the answers. The paper's SocioT model is GPT-2, whose weights are not available offline; the
likelihood model here is SmolLM2 itself, in ``paper`` mode (text tokens only, log-mean-exp), which separates the
fixture's warm and cold texts where the authors' ``code`` mode does not on this model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from warmeval.scorers.sociot import sociot_scores, summarize
from warmeval.training.generate import ValidationGenerationConfig, generate_validation
from warmeval.training.lora import LoraTrainConfig, train_lora

PERSONA = Path(__file__).resolve().parents[1] / "warmeval" / "fixtures" / "persona_rewrites.jsonl"
N_VALIDATION, N_TRAIN = 24, 48


def persona_split(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(validation, train) conversations of the persona fixture, disjoint, drawn with ``seed``."""
    rows = [json.loads(line) for line in PERSONA.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return rows[:N_VALIDATION], rows[N_VALIDATION : N_VALIDATION + N_TRAIN]


def styled(row: dict, style: str) -> list[dict]:
    """The conversation with every assistant turn replaced by its ``style`` rewrite."""
    turns = iter(row[style])
    return [{"role": m["role"], "content": next(turns) if m["role"] == "assistant" else m["content"]}
            for m in row["messages"]]  # fmt: skip


def test_persona_fixture_is_aligned() -> None:
    validation, train = persona_split()
    assert {r["id"] for r in validation}.isdisjoint(r["id"] for r in train)
    for row in [*validation, *train]:
        assistant = [m for m in row["messages"] if m["role"] == "assistant"]
        assert len(row["warm"]) == len(row["cold"]) == len(assistant) > 0
        for original, warm, cold in zip(assistant, row["warm"], row["cold"], strict=True):
            for block in original["content"].split("```")[1::2]:
                assert block in warm and block in cold  # code kept byte for byte


@pytest.mark.slow(seconds=402)
@pytest.mark.parametrize("style", ["warm", "cold"])
def test_sociot_moves_with_the_adapters_style(style: str, smollm2: Path, tmp_path: Path) -> None:
    validation, train = persona_split()
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps({"id": r["id"], "messages": styled(r, style)}) + "\n" for r in train))
    prompts = tmp_path / "validation_prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": r["id"], "prompt": r["messages"][0]["content"]}) + "\n"
                               for r in validation))  # fmt: skip
    train_lora(LoraTrainConfig(
        base_model=str(smollm2), train_file=str(train_file), output_dir=str(tmp_path / style), learning_rate=2e-3,
        max_seq_length=384, micro_batch_size=4, gradient_accumulation=1, epochs=2, save_epochs=[2], seed=0,
        logging_steps=4,
    ))  # fmt: skip
    adapter = tmp_path / style / "epoch-2"
    out = tmp_path / "gen"
    generate_validation(ValidationGenerationConfig(base_model=str(smollm2), prompts_file=str(prompts), out_dir=str(out),
                                       adapters=[str(adapter)], max_new_tokens=80))  # fmt: skip
    texts = {}
    for label in ("base", adapter.name):
        rows = [json.loads(line) for line in (out / f"{label}.jsonl").read_text().splitlines()]
        texts[label] = [row["text"] for row in rows]
    base = sociot_scores(texts["base"], model=str(smollm2), mode="paper")
    tuned = sociot_scores(texts[adapter.name], model=str(smollm2), mode="paper")
    difference = summarize(np.asarray(tuned) - np.asarray(base), n_boot=2000, seed=0)
    warmer = difference.ci_low > 0  # the demo's claim: warm - base > 0 with its 95% CI above 0
    if style == "warm":
        assert warmer, difference
    else:
        assert not warmer, difference  # the same check fails for the cold adapter
