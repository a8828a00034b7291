"""The GPU suite's CPU smoke: the prepared script (`benchmarks/gpu_suite.py`) keeps running between GPU sessions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_file

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_suite.py"


@pytest.mark.slow(seconds=33)
def test_gpu_suite_smoke_runs_every_mode_and_writes_its_figures(tmp_path: Path) -> None:
    # The suite reads ../shared/data (its LoRA conversations, SocioT's tokenizer): skip with a reason when absent.
    shared_file("sharegpt/sharegpt_v3_unfiltered_sample2000.jsonl")
    shared_file("gpt2_tokenizer/encoder.json")
    out = tmp_path / "suite.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], capture_output=True, text=True,
                          timeout=900, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    figures = json.loads(out.read_text())
    modes = [(r["mode"], r["micro"], r["gradient_checkpointing"]) for r in figures["lora"]]
    assert modes[:3] == [("plain", 4, False), ("padded", 4, False), ("packed", 4, False)]
    assert {("padded", 8, True), ("packed", 8, True), ("padded", 8, False), ("packed", 8, False)} <= set(modes)
    for run in figures["lora"]:
        assert run["accum"] * run["micro"] == 16  # the paper's effective batch in every mode
        assert run["tokens_per_s"] > 0 and 0 <= run["padding_share"] < 1 and run["ratio_to_plain"] > 0
    assert figures["lora"][2]["padding_share"] == 0  # padding-free
    sociot = figures["sociot"]
    assert sociot["fp32_texts_per_s"] > 0 and sociot["bf16_texts_per_s"] > 0 and sociot["naive_texts_per_s"] > 0
    assert sociot["fp32_max_abs_diff_vs_original"] < 1e-5  # the original procedure's values, to 1e-5
    assert "vs plain" in done.stdout and "vs original" in done.stdout
