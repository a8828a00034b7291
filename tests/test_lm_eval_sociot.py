"""The SocioT lm-eval tasks, run offline end to end through the `lm_eval` command."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import bin_path, run_cli
from warmeval.scorers.sociot.lm_eval import METRIC, register_metric_once
from warmeval.scorers.sociot.metric import sociot_scores

TEXTS = ["I'm so sorry, we'll get through this together.", "The answer is 4.", "", "Honestly? Great question!"]


def _tasks_dir() -> str:
    done = run_cli("sociot", "lm-eval-path")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _metric_row(stdout: str, task: str) -> tuple[float, float]:
    row = next(line for line in stdout.splitlines() if line.startswith(f"|{task}"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert METRIC in cells, row
    numbers = [c for c in cells if re.fullmatch(r"-?\d+(\.\d+)?", c)]
    value, stderr = float(numbers[-2]), float(numbers[-1])
    return value, stderr


def test_register_metric_once_is_guarded() -> None:
    from lm_eval.api.registry import metric_registry

    register_metric_once()
    register_metric_once()
    assert METRIC in metric_registry


@pytest.mark.slow(seconds=20)
def test_sociot_warmth_file_task(tiny_gpt2: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    meta = json.dumps({"path": str(texts), "sociot_model": str(tiny_gpt2)})
    result = subprocess.run(
        [bin_path("lm_eval"), "--include_path", _tasks_dir(), "--tasks", "sociot_warmth_file", "--model", "dummy",
         "--metadata", meta],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    value, stderr = _metric_row(result.stdout, "sociot_warmth_file")
    expected = sociot_scores(TEXTS, model=str(tiny_gpt2))
    assert value == pytest.approx(expected.mean(), abs=1e-4)  # the table rounds to 4 decimals
    assert stderr > 0


@pytest.mark.slow(seconds=19)
def test_sociot_warmth_gen_task(tiny_gpt2: Path, tiny_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ["How are you?", "Explain gravity.", "Hi!"]))
    meta = json.dumps({"path": str(prompts), "sociot_model": str(tiny_gpt2)})
    out = tmp_path / "out"
    result = subprocess.run(
        [bin_path("lm_eval"), "--include_path", _tasks_dir(), "--tasks", "sociot_warmth_gen", "--model", "hf",
         "--model_args", f"pretrained={tiny_model}", "--device", "cpu", "--apply_chat_template",
         "--gen_kwargs", "max_gen_toks=12", "--metadata", meta, "--log_samples", "--output_path", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    value, stderr = _metric_row(result.stdout, "sociot_warmth_gen")
    (samples,) = out.rglob("samples_sociot_warmth_gen_*.jsonl")
    responses = [json.loads(line)["filtered_resps"][0] for line in samples.read_text().splitlines()]
    assert len(responses) == 3
    assert value == pytest.approx(sociot_scores(responses, model=str(tiny_gpt2)).mean(), abs=1e-4)
    assert stderr >= 0
    # The samples file is also a valid input of `warmeval sociot score`.
    scored = run_cli("sociot", "score", samples, "--model", tiny_gpt2, "--out", "s.csv", cwd=tmp_path)
    assert scored.returncode == 0 and "n=3" in scored.stdout
