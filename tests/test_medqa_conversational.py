"""The MedQA conversational rewrite on real vignettes, with exact expected outputs."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import shared_file
from warmeval.tasks.medqa_conv import convert_question, record_to_sample, to_conversational
from warmeval.util.text import stable_id

EXPECTED = json.loads((Path(__file__).parent / "data" / "medqa_conversational_expected.json").read_text())


@pytest.fixture(scope="module")
def medqa_rows() -> list[dict]:
    path = shared_file("medqa/phrases_no_exclude_test.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.mark.parametrize("case", EXPECTED, ids=lambda c: f"row{c['row']}-seed{c['seed']}")
def test_rewrite_exact(case: dict, medqa_rows: list[dict]) -> None:
    vignette = medqa_rows[case["row"] - 1]["question"]
    assert stable_id("medqa", vignette) == case["question_id"], "the shared MedQA file changed"
    assert to_conversational(vignette, seed=case["seed"], style="clean") == case["expected"]


def test_at_least_fifteen_real_rewrites() -> None:
    assert sum(1 for case in EXPECTED if case["expected"] is not None) >= 15


def test_rewrite_properties_on_whole_test_split(medqa_rows: list[dict]) -> None:
    rewritten = 0
    for row in medqa_rows:
        vignette = row["question"]
        out = to_conversational(vignette, seed=0, style="clean")
        if out is None:
            continue
        rewritten += 1
        assert out.startswith("My "), out[:80]
        # Every number, unit and lab value survives.
        assert Counter(re.findall(r"\d+(?:\.\d+)?", out)) == Counter(re.findall(r"\d+(?:\.\d+)?", vignette))
        for unit in re.findall(r"\b(?:mg/dL|mm Hg|mEq/L|U/L|g/dL|/min|°C|°F)", vignette):
            assert unit in out
        assert not re.search(r"\bwhich of the following\b", out.split(". ")[-1], re.IGNORECASE)
        # The authors' release had "My wife, 52, to her physician": no verbless subject.
        assert not re.match(r"^My [^,]+, [^,]+, (?:to|for) ", out), out[:80]
    assert rewritten / len(medqa_rows) > 0.8


def test_rewrite_is_deterministic_and_seeded(medqa_rows: list[dict]) -> None:
    adults = [r["question"] for r in medqa_rows if re.match(r"^An? (2\d|3\d|4\d)-year-old (man|woman) ", r["question"])]
    first = [to_conversational(v, seed=0, style="clean") for v in adults[:40]]
    assert first == [to_conversational(v, seed=0, style="clean") for v in adults[:40]]
    other = [to_conversational(v, seed=7, style="clean") for v in adults[:40]]
    assert first != other, "the seed should change some sibling/spouse choices"
    relations = Counter(re.match(r"My (\w+)", text).group(1) for text in first if text)
    assert {"brother", "husband", "sister", "wife"} <= set(relations)


def test_relations_by_age() -> None:
    child = to_conversational(
        "A 7-year-old girl has a rash. Which of the following is the most likely cause?", seed=0, style="clean"
    )
    assert child == "My daughter, 7, has a rash. What is the most likely cause?"
    older = to_conversational(
        "A 72-year-old man presents with chest pain. What is the next step?", seed=0, style="clean"
    )
    assert older == "My father, 72, has chest pain. What is the next step?"
    infant = to_conversational(
        "A 2-month-old boy is brought to the clinic. Which of the following is best?", seed=0, style="clean"
    )
    assert infant == "My son, 2 months old, is brought to the clinic. What is best?"


def test_unmatched_vignettes_return_none() -> None:
    assert (
        to_conversational("An investigator is studying a virus. Which of the following is true?", seed=0, style="clean")
        is None
    )
    assert (
        to_conversational("A 40-year-old is seen. Which of the following is true?", seed=0, style="clean") is None
    )  # no sex cue


def test_convert_question() -> None:
    assert (
        convert_question("Which of the following is the most likely diagnosis?") == "What is the most likely diagnosis?"
    )
    assert convert_question("Which of the following drugs is indicated?") == "Which drug is indicated?"
    assert convert_question("A culture will most likely show which of the following?") == (
        "A culture will most likely show what?"
    )
    assert convert_question("Which of the following diagnoses is most likely in this patient?", "wife") == (
        "Which diagnosis is most likely in my wife?"
    )


def test_record_to_sample_counts_unchanged(medqa_rows: list[dict]) -> None:
    unmatched = next(r for r in medqa_rows if to_conversational(r["question"], seed=0, style="clean") is None)
    sample = record_to_sample(unmatched, seed=0, style="clean")
    assert sample.input == unmatched["question"].strip()
    assert sample.metadata["rewritten"] is False
    matched = record_to_sample(medqa_rows[1], seed=0, style="clean")
    assert matched.metadata["rewritten"] is True
    assert matched.target == [medqa_rows[1]["answer"]]
    assert matched.metadata["original_question"] == medqa_rows[1]["question"].strip()
