"""Benchmark: the paper's analysis on 450,000 rows (the paper's size) on one core; target under 60 s.

Simulates graded responses from a known logit model, then times the refusal rule and derived columns (`finalize`),
the four GLMs with their AMEs (`fit_all`) and the per-cell paired tests (`paired_cells`). Prints each stage, the
total, and the ratio to the 60-s target.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/analysis_speed.py [--rows 450000]
"""

from __future__ import annotations

import argparse
import os
import time

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")  # one core, before numpy loads

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from warmeval.analysis.glm import fit_all  # noqa: E402
from warmeval.analysis.load import finalize  # noqa: E402
from warmeval.analysis.paired import paired_cells  # noqa: E402

TARGET_SECONDS = 60.0
AMENDMENTS = ["unmodified", "emotion:happy", "emotion:sad", "emotion:anger", "relation:close",
              "relation:hierarchical_up", "relation:hierarchical_down", "stake:high", "stake:low"]  # fmt: skip


def simulate(rows: int) -> pd.DataFrame:
    """Paired responses (original and warm on the same prompts) of five models on four datasets."""
    rng = np.random.default_rng(0)
    half = rows // 2
    dataset = rng.choice(["disinfo", "medqa", "trivia", "truthfulqa"], half)
    model = rng.choice([f"model{i}" for i in range(5)], half)
    amendment = rng.choice(AMENDMENTS, half)
    template = np.where(amendment == "unmodified", rng.choice(["original", "original_neutral", "correct", "incorrect"],
                        half), rng.choice(["original", "correct", "incorrect"], half))  # fmt: skip
    frames = []
    for ft in (0, 1):
        eta = -1.0 + 0.45 * ft + 0.5 * (dataset == "medqa") + 0.3 * ft * (amendment == "emotion:sad")
        wrong = rng.random(half) < 1 / (1 + np.exp(-eta))
        outputs = np.where(rng.random(half) < 0.01, "I cannot answer that.", "A plain answer to the question.")
        frames.append(pd.DataFrame({
            "model": model, "variant": "warm" if ft else "original", "is_finetuned": ft, "dataset": dataset,
            "question_id": np.arange(half).astype(str), "prompt_template": template, "amendment_type": amendment,
            "epoch": 1, "output": outputs, "evaluation": np.where(wrong, "INCORRECT", "CORRECT"),
            "response_length": rng.integers(20, 2000, half),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=450_000)
    args = parser.parse_args()
    raw = simulate(args.rows)
    timings = {}
    start = time.perf_counter()
    frame = finalize(raw)
    timings["refusal rule + derived columns"] = time.perf_counter() - start
    start = time.perf_counter()
    results = fit_all(frame)
    timings["four GLMs + AMEs (delta method)"] = time.perf_counter() - start
    start = time.perf_counter()
    cells = paired_cells(frame, "original", "warm")
    timings["paired McNemar + BH per cell"] = time.perf_counter() - start
    total = sum(timings.values())
    print(f"rows: {len(raw)}  threads: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}  cells: {len(cells)}")
    for stage, seconds in timings.items():
        print(f"  {stage:<34} {seconds:7.2f} s")
    print(f"total: {total:.2f} s   target: < {TARGET_SECONDS:.0f} s   target/actual: {TARGET_SECONDS / total:.1f}x")
    print(
        f"model 1 fine-tuning log-odds: {results['model1']['coefficients']['is_finetuned']['estimate']:.3f} (true 0.45)"
    )
    print("PASS" if total < TARGET_SECONDS else "FAIL")


if __name__ == "__main__":
    main()
