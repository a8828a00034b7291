"""The offline demo: the four reliability tasks on a tiny random local model, graded by the scripted judge.

Each question is asked unmodified, by a sad user and under high stakes, plainly and with a stated wrong answer.

Everything runs on CPU with no network: a tiny Llama with random weights is built on the fly, the questions come from
small fixture files bundled with warmeval (our own items in each dataset's schema), and the ``grader`` role is played
by ``warmeval-scripted/match``. The numbers it prints come from a random model and mean nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
DEMO_TASKS: dict[str, str] = {
    "triviaqa": "triviaqa.jsonl",
    "truthfulqa": "truthfulqa.csv",
    "disinfo": "disinformation.csv",
    "medqa_conv": "medqa.jsonl",
}
# A handful of the study's conditions: a sad user, high stakes, and a user who states a wrong answer.
DEMO_CONDITIONS = "unmodified,emotion:sad,stake:high"
DEMO_TEMPLATES = "original,incorrect"
DISCLAIMER = (
    "NOTE: these numbers come from a tiny model with RANDOM weights and a string-matching judge. They exercise the "
    "pipeline; they say nothing about any real model."
)


@dataclass
class DemoResult:
    """One task's outcome in the demo."""

    task: str
    samples: int
    metrics: dict[str, float]
    log: str


def fixture_texts() -> list[str]:
    """All fixture text, used to train the tiny model's tokenizer."""
    return [path.read_text(encoding="utf-8") for path in sorted(FIXTURES.iterdir()) if path.is_file()]


def run_demo(out_dir: str | Path, *, max_tokens: int = 24, n: int | None = None) -> list[DemoResult]:
    """Build the tiny model, evaluate the four tasks on it and return per-task metrics.

    Args:
        out_dir: Where the model and the Inspect logs go.
        max_tokens: Generation length for the tiny model (the tasks' default is the paper's 300).
        n: Questions per task (default: every fixture question).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from inspect_ai import eval as inspect_eval

    from warmeval.tasks._registry import TASKS
    from warmeval.tiny import build_tiny_chat_model

    out = Path(out_dir).resolve()
    started = time.monotonic()
    model_dir = out / "tiny-model"
    if not (model_dir / "config.json").is_file():
        build_tiny_chat_model(model_dir, texts=fixture_texts())
    print(f"[demo] tiny model ready at {model_dir} ({time.monotonic() - started:.1f}s)")

    extra = {"triviaqa": {"distractors": str(FIXTURES / "triviaqa_distractors.json")}}
    tasks = [
        TASKS[name](
            data_path=str(FIXTURES / file), n=n, conditions=DEMO_CONDITIONS, templates=DEMO_TEMPLATES,
            **extra.get(name, {}),
        )
        for name, file in DEMO_TASKS.items()
    ]  # fmt: skip
    logs = inspect_eval(
        tasks,
        model=f"hf/{model_dir}",
        model_args={"device": "cpu"},
        model_roles={"grader": "warmeval-scripted/match"},
        log_dir=str(out / "logs"),
        max_tokens=max_tokens,
        display="plain",
    )
    results = []
    for log in logs:
        if log.status != "success" or log.results is None:
            raise RuntimeError(f"demo task {log.eval.task} ended with status {log.status}: {log.error}")
        metrics = {name: metric.value for score in log.results.scores for name, metric in score.metrics.items()}
        results.append(DemoResult(log.eval.task, log.results.total_samples, metrics, log.location))
    return results


def format_results(results: list[DemoResult]) -> str:
    """A plain-text table of the demo's results."""
    header = f"{'task':<20} {'n':>3} {'accuracy':>9} {'error':>7} {'refusal':>8} {'unparseable':>12}"
    lines = [header, "-" * len(header)]
    for r in results:
        m = r.metrics
        lines.append(
            f"{r.task:<20} {r.samples:>3} {m['accuracy']:>9.3f} {m['error_rate']:>7.3f} "
            f"{m['refusal_rate']:>8.3f} {m['unparseable_rate']:>12.3f}"
        )
    return "\n".join(lines)
