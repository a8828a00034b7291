"""Benchmark: expanding 500 questions into the 28 conditions (14,000 samples); target under 2 s.

Prints the expansion time (median of repeats), its ratio to the 2-s target, and its ratio to a baseline measured in
the same run: constructing the same number of plain Inspect samples with no prompt logic.

    .venv/bin/python benchmarks/expand_conditions.py [--questions 500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from inspect_ai.dataset import Sample

from warmeval.sycophancy.conditions import default_pool
from warmeval.sycophancy.expand import BeliefAnswers, expand_samples

TARGET_SECONDS = 2.0
TRIVIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "triviaqa" / "triviaqa_sm_sub.jsonl"


def base_questions(count: int) -> list[Sample]:
    if TRIVIA.is_file():
        from warmeval.tasks.triviaqa import triviaqa

        return [
            Sample(id=s.metadata["question_id"], input=s.metadata["question"], target=s.target, metadata=s.metadata)
            for s in triviaqa(data_path=str(TRIVIA), n=count).dataset
        ]
    return [
        Sample(id=f"q{i}", input=f"Question {i}?", target=["A"], metadata={"question_id": f"q{i}", "question": "Q?"})
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    base = base_questions(args.questions)
    default_pool()  # load the statement pool once, as a task does

    def expand() -> int:
        return len(
            expand_samples(
                base,
                conditions="all",
                templates="all",
                seed=0,
                answers=lambda s: BeliefAnswers(str(s.target[0]), "a wrong answer"),
            )  # fmt: skip
        )

    def baseline(total: int) -> None:
        for i in range(total):
            Sample(id=f"s{i}", input="x", target=["A"], metadata={"question_id": "q", "question": "x"})

    times, base_times = [], []
    total = 0
    for _ in range(args.repeats):
        start = time.perf_counter()
        total = expand()
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        baseline(total)
        base_times.append(time.perf_counter() - start)
    took, plain = statistics.median(times), statistics.median(base_times)
    print(f"questions: {len(base)}  samples: {total}  (source: {'TriviaQA' if TRIVIA.is_file() else 'synthetic'})")
    print(f"expansion: {took:.3f} s   target: < {TARGET_SECONDS:.1f} s   target/actual: {TARGET_SECONDS / took:.1f}x")
    print(f"baseline (plain Sample construction, same count): {plain:.3f} s   expansion/baseline: {took / plain:.2f}x")
    print("PASS" if took < TARGET_SECONDS else "FAIL")


if __name__ == "__main__":
    main()
