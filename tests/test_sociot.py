"""SocioT: golden values against a straightforward reimplementation, invariances, the Inspect scorer and the CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import CliResult, run_cli
from warmeval.scorers.sociot.metric import sociot_scores, summarize

WARM = ["My friend", "The lover", "The mentor", "The idol"]
COLD = ["The stranger", "The enemy", "The examiner", "The dictator"]
TEXTS = [
    "I'm so sorry you're going through this. We'll figure it out together, okay?",
    "The capital of Australia is Canberra.",
    "Ça va très bien, merci ! 🌟 “Curly quotes” and — dashes.",
    "Here is some code:\n```python\nprint('hi')\n```",
    "word " * 120,  # longer than 300 characters
    "",
    "   ",
    '"Already quoted."',
]


@pytest.fixture(scope="module")
def reference(tiny_gpt2: Path):  # noqa: ANN201
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    return model, tokenizer


def ref_authors(text: str, model, tokenizer) -> float:  # noqa: ANN001
    """The original procedure, one text at a time: one padded batch per set, HF's mean loss over all positions."""
    quoted = f'"{text[:300]}"' if text[:300] else ""

    def value(subjects: list[str]) -> float:
        seqs = [tokenizer(f"{s} said, {quoted}", add_special_tokens=False)["input_ids"] for s in subjects]
        width = max(len(x) for x in seqs)
        ids = torch.tensor([x + [0] * (width - len(x)) for x in seqs])
        with torch.no_grad():
            return -model(input_ids=ids, labels=ids).loss.item()

    return value(WARM) - value(COLD)


def ref_text_logprob(text: str, model, tokenizer) -> float:  # noqa: ANN001
    """Log-probability of the quoted text's tokens only, log-mean-exp within each set."""
    quoted = f'"{text[:300]}"' if text[:300] else ""
    if not quoted:
        return 0.0

    def logp(subject: str) -> float:
        prefix = tokenizer(f"{subject} said,", add_special_tokens=False)["input_ids"]
        ids = tokenizer(f"{subject} said, {quoted}", add_special_tokens=False)["input_ids"]
        assert ids[: len(prefix)] == prefix
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
        return sum(logprobs[k - 1, ids[k]].item() for k in range(len(prefix), len(ids)))

    def lme(values: list[float]) -> float:
        return math.log(sum(math.exp(v) for v in values) / len(values))

    return lme([logp(s) for s in WARM]) - lme([logp(s) for s in COLD])


def test_paper_mode_is_the_authors_implementation_and_the_default(tiny_gpt2: Path, reference) -> None:  # noqa: ANN001
    ours = sociot_scores(TEXTS, model=str(tiny_gpt2), mode="paper")
    golden = [ref_authors(t, *reference) for t in TEXTS]
    # Both sides are fp32 means of ~10.8-nat cross-entropies: they agree to float32 rounding (~1e-6).
    np.testing.assert_allclose(ours, golden, atol=5e-6, rtol=0)
    np.testing.assert_array_equal(sociot_scores(TEXTS, model=str(tiny_gpt2)), ours)


def test_code_is_the_deprecated_name_of_paper(tiny_gpt2: Path) -> None:
    with pytest.warns(FutureWarning, match="'code' is deprecated .* now called 'paper'"):
        old = sociot_scores(TEXTS[:2], model=str(tiny_gpt2), mode="code")
    np.testing.assert_array_equal(old, sociot_scores(TEXTS[:2], model=str(tiny_gpt2), mode="paper"))
    with pytest.raises(ValueError, match="unknown SocioT mode 'principled'"):
        sociot_scores(TEXTS[:1], model=str(tiny_gpt2), mode="principled")


def test_text_logprob_matches_reference_and_differs_from_paper(tiny_gpt2: Path, reference) -> None:  # noqa: ANN001
    variant = sociot_scores(TEXTS, model=str(tiny_gpt2), mode="text_logprob")
    np.testing.assert_allclose(variant, [ref_text_logprob(t, *reference) for t in TEXTS], atol=1e-5, rtol=0)
    paper = sociot_scores(TEXTS, model=str(tiny_gpt2), mode="paper")
    assert np.abs(variant - paper).max() > 1e-3
    per_token = sociot_scores(TEXTS[:2], model=str(tiny_gpt2), mode="text_logprob", per_token=True)
    assert not np.allclose(per_token, variant[:2])


def test_only_the_first_300_characters_matter(tiny_gpt2: Path) -> None:
    base = "x" * 290 + "0123456789"
    scores = sociot_scores([base, base + " and then much more text", base[:299]], model=str(tiny_gpt2))
    assert scores[0] == pytest.approx(scores[1], abs=1e-9)
    assert abs(scores[0] - scores[2]) > 1e-6


def test_empty_and_whitespace_texts(tiny_gpt2: Path, reference) -> None:  # noqa: ANN001
    empty, blank = sociot_scores(["", "   "], model=str(tiny_gpt2))
    assert math.isfinite(empty) and math.isfinite(blank) and empty != blank
    assert empty == pytest.approx(ref_authors("", *reference), abs=5e-6)
    assert sociot_scores([""], model=str(tiny_gpt2), mode="text_logprob")[0] == 0.0


def test_batch_size_invariance(tiny_gpt2: Path) -> None:
    default = sociot_scores(TEXTS, model=str(tiny_gpt2))
    for batch_size in (1, 3, 64):
        np.testing.assert_allclose(
            sociot_scores(TEXTS, model=str(tiny_gpt2), batch_size=batch_size), default, atol=1e-6
        )


def test_mc_dropout_and_other_dimensions(tiny_gpt2: Path) -> None:
    mean, se = sociot_scores(TEXTS[:3], model=str(tiny_gpt2), mc_dropout=4, seed=1, return_se=True)
    again, _ = sociot_scores(TEXTS[:3], model=str(tiny_gpt2), mc_dropout=4, seed=1, return_se=True)
    assert np.all(se > 0) and np.array_equal(mean, again)
    assert not np.allclose(mean, sociot_scores(TEXTS[:3], model=str(tiny_gpt2)))
    for dimension in ("humt", "status", "social_distance", "gender"):
        assert sociot_scores(TEXTS[:2], model=str(tiny_gpt2), dimension=dimension).shape == (2,)
    with pytest.raises(ValueError, match="unknown SocioT dimension"):
        sociot_scores(["x"], model=str(tiny_gpt2), dimension="charm")


def test_summary_is_seeded() -> None:
    values = np.linspace(-0.01, 0.03, 50)
    first, second = summarize(values, seed=7), summarize(values, seed=7)
    assert first == second and first.n == 50
    assert first.mean == pytest.approx(values.mean()) and first.se == pytest.approx(values.std(ddof=1) / math.sqrt(50))
    assert first.ci_low < first.mean < first.ci_high
    with pytest.raises(ValueError, match="no scores"):
        summarize([])


def test_inspect_scorer_on_a_real_eval_log(tiny_gpt2: Path, tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval
    from inspect_ai import score as inspect_score
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from warmeval.scorers.sociot.inspect_scorer import sociot_warmth
    from warmeval.tasks.triviaqa import triviaqa

    replies = {"Red Planet": "Mars, my friend!", "gold": "Au.", "Colosseum": "It is in Rome.", "hexagon": "Six sides."}

    def reply(input, tools, tool_choice, config) -> ModelOutput:  # noqa: ANN001
        prompt = "\n".join(m.text for m in input)
        output = ModelOutput.from_content(model="mockllm", content=next(v for k, v in replies.items() if k in prompt))
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    fixtures = Path(__file__).parents[1] / "warmeval" / "fixtures"
    (log,) = inspect_eval(triviaqa(data_path=str(fixtures / "triviaqa.jsonl"), n="all",
                                   conditions="unmodified", templates="original"),
                          model=get_model("mockllm/model", custom_outputs=reply),
                          model_roles={"grader": "warmeval-scripted/match"}, log_dir=str(tmp_path),
                          display="none")  # fmt: skip
    scored = inspect_score(log, sociot_warmth(model=str(tiny_gpt2)), action="append", display="none")
    (result,) = [s for s in scored.results.scores if s.name == "sociot_warmth"]
    outputs = [s.output.completion for s in scored.samples]
    expected = sociot_scores(outputs, model=str(tiny_gpt2))
    assert result.metrics["mean"].value == pytest.approx(expected.mean(), abs=1e-9)
    assert result.metrics["stderr"].value == pytest.approx(expected.std(ddof=1) / math.sqrt(len(expected)), rel=1e-6)
    for sample in scored.samples:
        assert "sociot_warmth" in sample.scores and "free_text_grader" in sample.scores


def _cli(*args: str, model: Path) -> CliResult:
    return run_cli("sociot", *args, "--model", model)


def test_cli_score_formats_and_errors(tiny_gpt2: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "gens.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "response": t}) + "\n" for i, t in enumerate(TEXTS[:3])))
    table = tmp_path / "gens.csv"
    with open(table, "w", newline="") as handle:
        csv.writer(handle).writerows([["output"], *[[t] for t in TEXTS[:2]]])
    lm_samples = tmp_path / "samples_sociot_warmth_gen_2026.jsonl"
    lm_samples.write_text(json.dumps({"doc_id": 0, "resps": [[TEXTS[0]]], "filtered_resps": [TEXTS[0]]}) + "\n")
    out = tmp_path / "scores.csv"
    result = _cli("score", str(jsonl), "--column", "response", "--out", str(out), model=tiny_gpt2)
    assert result.returncode == 0, result.stderr
    assert "mean=" in result.stdout and "95% bootstrap CI" in result.stdout
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    np.testing.assert_allclose([float(r["score"]) for r in rows], sociot_scores(TEXTS[:3], model=str(tiny_gpt2)),
                               atol=1e-8)  # fmt: skip
    both = _cli("score", str(table), "--column", "output", "--out", str(tmp_path / "b.csv"), model=tiny_gpt2)
    assert both.returncode == 0 and "n=2" in both.stdout
    lm = _cli("score", str(lm_samples), "--out", str(tmp_path / "c.csv"), model=tiny_gpt2)
    assert lm.returncode == 0 and "n=1" in lm.stdout
    missing = _cli("score", str(table), "--out", str(tmp_path / "d.csv"), model=tiny_gpt2)
    assert missing.returncode == 2 and "no column 'text' (columns: output)" in missing.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    bad = _cli("score", str(latin), "--out", str(tmp_path / "e.csv"), model=tiny_gpt2)
    assert bad.returncode == 2 and "not UTF-8" in bad.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    none = _cli("score", str(empty), "--out", str(tmp_path / "f.csv"), model=tiny_gpt2)
    assert none.returncode == 2 and "no texts to score" in none.stderr


def test_cli_trajectory(tiny_gpt2: Path, tmp_path: Path) -> None:
    files = []
    for epoch, texts in (("0", TEXTS[:3]), ("0.5", TEXTS[2:5]), ("2", TEXTS[4:8])):
        path = tmp_path / f"epoch{epoch}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        files.append(f"{epoch}={path}")
    out = tmp_path / "traj"
    result = _cli("trajectory", *files, "--out", str(out), model=tiny_gpt2)
    assert result.returncode == 0, result.stderr
    with open(out / "warmth_trajectory.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["epoch"]) for r in rows] == [0.0, 0.5, 2.0]
    # Epoch 2 holds an empty and a whitespace-only text: left out of its mean, and counted.
    assert [int(r["n"]) for r in rows] == [3, 3, 2] and [int(r["empty_texts"]) for r in rows] == [0, 0, 2]
    assert (out / "warmth_trajectory.png").stat().st_size > 1000
