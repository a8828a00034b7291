"""The persona fixture behind the real-model checks is aligned: warm and cold rewrites per assistant turn.

The behaviour itself (LoRA on the warm rewrites moves SmolLM2's SocioT warmth up, 95% CI of warm - base above 0, and
the cold adapter's does not) is asserted by the demo test (tests/test_e2e.py::test_warmeval_demo), which trains both
adapters on these rewrites and scores the validation answers through the same pipeline; training them a second time
here cost about 13 minutes of the suite on 2 cores.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PERSONA = Path(__file__).resolve().parents[1] / "warmeval" / "fixtures" / "persona_rewrites.jsonl"
N_VALIDATION, N_TRAIN = 24, 48


def persona_split(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(validation, train) conversations of the persona fixture, disjoint, drawn with ``seed``."""
    rows = [json.loads(line) for line in PERSONA.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return rows[:N_VALIDATION], rows[N_VALIDATION : N_VALIDATION + N_TRAIN]


def test_persona_fixture_is_aligned() -> None:
    validation, train = persona_split()
    assert {r["id"] for r in validation}.isdisjoint(r["id"] for r in train)
    for row in [*validation, *train]:
        assistant = [m for m in row["messages"] if m["role"] == "assistant"]
        assert len(row["warm"]) == len(row["cold"]) == len(assistant) > 0
        for original, warm, cold in zip(assistant, row["warm"], row["cold"], strict=True):
            for block in original["content"].split("```")[1::2]:
                assert block in warm and block in cold  # code kept byte for byte
