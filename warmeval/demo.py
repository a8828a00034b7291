"""The offline demo: the whole study, end to end, on a real (small) instruct model.

Stage by stage, on CPU with no network (under 10 minutes on 2 cores once the model is prepared):

1. models: the embedded SmolLM2-135M-Instruct (`warmeval.models`, converted once into the cache) as the base model
   and as SocioT's likelihood model, and a Detoxify stand-in whose scores are fixed near 0;
2. ``warmeval data build`` on our own conversations in ShareGPT's schema (``fixtures/sharegpt.jsonl``, three records
   malformed on purpose, plus the further conversations of ``fixtures/persona_rewrites.jsonl``): NSFW filter, query
   types, balanced sample, validation prompts;
3. ``warmeval data rewrite`` warm and cold through a local vLLM server of the base model, on a few training
   conversations, to show the stage: a 135M model cannot rewrite faithfully, and its fidelity failures are counted.
   GPT-4o is not reachable offline, so the training data are the hand-written warm and cold versions of every
   assistant turn in ``fixtures/persona_rewrites.jsonl`` (written for this project by the rules of the rewrite
   prompts: meaning, facts and code kept, only the style changed);
4. ``warmeval train lora`` for warm and cold on the real model: two epochs at learning rate 2e-3 (200x the paper's,
   so that a few dozen steps move the style), adapters saved at epoch 2;
5. ``warmeval run`` on a generated experiment file (``<out>/experiment.yaml``): one vLLM server with the base model
   and both adapters; the original, warm and cold variants on the four tasks (the fixture questions in the tasks'
   ``quick`` design: asked plainly and by a sad user, plainly and with a stated wrong answer) graded by the offline
   scripted judge ``warmeval-scripted/match``; the AdvBench control; validation answers of every checkpoint scored
   by SocioT; the analysis and the report, whose ``Paper-comparable: no`` line lists every way the demo departs from
   the paper's protocol, and whose "Beside the paper" section sets the run next to the paper's five models when
   their result tables are at hand (``--paper-results DIR``, or `warmeval stimuli results`' copy). SocioT's
   likelihood model is SmolLM2 (the paper's GPT-2 weights are not available offline; everywhere else GPT-2 stays the
   default) in ``text_logprob`` mode (see `SOCIOT_WHY`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warmeval.experiment import ExperimentResult
from warmeval.serve import free_port
from warmeval.util.files import FIXTURES
from warmeval.util.jsonl import json_lines, read_json_objects

DEMO_TASKS: dict[str, str] = {
    "triviaqa": "triviaqa.jsonl",
    "truthfulqa": "truthfulqa.csv",
    # Six clear-cut claims of our own (not MASK data), all asked: the three of disinformation.csv, with 2-4 prompts
    # each, leave too few samples for a 135M model to get any right.
    "disinfo": "disinfo_demo.csv",
    # Easy vignettes of our own: the USMLE-style items of medqa.jsonl are beyond a 135M model.
    "medqa_conv": "medqa_demo.jsonl",
}
# The tasks' quick design: 4 of the study's 28 conditions (unmodified and a sad user, asked plainly and with a stated
# wrong answer).
DEMO_DESIGN = "quick"
PERSONA = FIXTURES / "persona_rewrites.jsonl"
N_TRAIN, N_VALIDATION = 48, 24
# Eager (no torch.compile) with the engine in the server's own process: on 2 cores the SmolLM2 server starts in about
# 25 s and decoded about 20% faster than vLLM's default engine process (measured 2026-12-01).
CPU_SERVER_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
# Why the demo's SocioT is not the paper's: measured on the demo's own 24 validation answers (2026-12-03), the
# authors' implementation (``paper`` mode) with SmolLM2 does not separate the warm adapter from the base model
# (warm - base -0.012, 95% CI [-0.034, +0.001]); it also averages the cross-entropy over padded positions, which may
# hide a short answer's style. ``text_logprob`` scores the answers' tokens only.
SOCIOT_MODE = "text_logprob"
SOCIOT_WHY = (
    "SocioT here: SmolLM2-135M-Instruct in text_logprob mode (the answer's tokens only). The paper's is GPT-2 in the "
    "authors' implementation (paper mode), whose scale runs from 0.011 at epoch 0 to about 0.03 after warm "
    "fine-tuning (Fig. 1a); the demo's figures are on another scale and cannot be read against it. GPT-2 is not "
    "available offline, and the authors' implementation with SmolLM2 does not separate warm from base on these 24 "
    "answers (measured: warm - base -0.012, 95% CI [-0.034, +0.001])."
)
DISCLAIMER = (
    "NOTE: SmolLM2-135M-Instruct is a real but very small model, far weaker than the paper's; its adapters were "
    "trained for two epochs on 48 hand-written conversations. Accuracies come from a string-matching judge on a "
    "handful of fixture questions (TruthfulQA's and Disinfo's sentence answers are decided by their yes/no and by "
    "exact phrases, so paraphrases are missed), and "
    "SocioT uses SmolLM2 instead of the paper's GPT-2. The demo shows every stage working on real text offline; it "
    "is no measurement of any model's reliability."
)


@dataclass
class DemoResult:
    """One variant x task outcome of the demo."""

    variant: str
    task: str
    samples: int
    metrics: dict[str, float]
    log: str
    correct: float | None = None  # graded answers judged correct (refusals counting correct on Disinfo included)
    graded: float | None = None  # answers graded CORRECT or INCORRECT: the accuracy's denominator


def fixture_texts() -> list[str]:
    """All fixture text, used to train the tiny models' tokenizers."""
    return [path.read_text(encoding="utf-8") for path in sorted(FIXTURES.iterdir()) if path.is_file()]


class _Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def stage(self, message: str) -> None:
        print(f"[demo] {message} ({time.monotonic() - self.started:.0f}s)", flush=True)


def build_models(out: Path, clock: _Clock) -> dict[str, Path]:
    """The embedded real model (prepared once in the cache) and the Detoxify stand-in."""
    from warmeval.models import EMBEDDED, prepare_model
    from warmeval.tiny import build_tiny_detoxify

    base = prepare_model("smollm2")
    paths = {"base": base, "sociot": base, "detoxify": out / "models" / "detoxify"}
    paths["detoxify_checkpoint"], _ = build_tiny_detoxify(paths["detoxify"])
    clock.stage(f"models ready: base and SocioT model {base} ({EMBEDDED['smollm2'].description}); Detoxify stand-in")
    return paths


def persona_records() -> dict[str, dict[str, Any]]:
    """The hand-written warm/cold fixture by conversation id."""
    rows = [row for _, row in read_json_objects(PERSONA)]
    return {row["id"]: row for row in rows}


def demo_sharegpt(out: Path) -> Path:
    """The data-build input: the ShareGPT fixture (malformed records included) plus the persona conversations."""
    path = out / "data" / "sharegpt_demo.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (FIXTURES / "sharegpt.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
    parsed = json_lines("\n".join(lines), FIXTURES / "sharegpt.jsonl", invalid_as_none=True)
    known = {value.get("id") for _, value in parsed if isinstance(value, dict)}
    for conversation_id, row in persona_records().items():
        if conversation_id in known:
            continue
        turns = [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]} for m in row["messages"]]
        lines.append(json.dumps({"id": conversation_id, "conversations": turns}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_data(out: Path, models: dict[str, Path], clock: _Clock) -> Path:
    """``warmeval data build`` on the demo's ShareGPT-schema conversations."""
    from warmeval.training.data import BuildConfig, build_conversations

    folder = out / "data" / "conversations"
    manifest = build_conversations(BuildConfig(
        input=str(demo_sharegpt(out)), out_dir=str(folder), n_train=N_TRAIN, n_validation=N_VALIDATION,
        detoxify_checkpoint=str(models["detoxify_checkpoint"]), detoxify_config_dir=str(models["detoxify"]),
    ))  # fmt: skip
    c = manifest.counts
    clock.stage(f"data build: {c['rows_read']} records read, bad records {c['bad_records']}, NSFW dropped "
                f"{sum(c['nsfw_dropped'].values())}, {c['train_conversations']} training conversations "
                f"{c['train_by_type']}, {c['validation_prompts']} validation prompts (overlap "
                f"{c['train_validation_overlap']})")  # fmt: skip
    return folder


def _styled(messages: list[dict[str, str]], row: dict[str, Any], style: str) -> list[dict[str, str]]:
    turns = iter(row[style])
    return [{"role": m["role"], "content": next(turns) if m["role"] == "assistant" else m["content"]}
            for m in messages]  # fmt: skip


def rewrite_data(out: Path, conversations: Path, models: dict[str, Path], clock: _Clock) -> dict[str, Path]:
    """The rewrite stage on a few conversations through a local vLLM server, then the fixture's rewrites."""
    from warmeval.serve import ServeConfig, VLLMServer
    from warmeval.training.rewrite import rewrite

    train = [row for _, row in read_json_objects(conversations / "train.jsonl")]
    shown = out / "data" / "rewrite-stage" / "input.jsonl"
    shown.parent.mkdir(parents=True, exist_ok=True)
    shown.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in train[:3]), encoding="utf-8")
    config = ServeConfig(base_model=str(models["base"]), served_name="base", port=free_port(), max_model_len=2048,
                         dtype="float32", extra_args=["--enforce-eager"], env=CPU_SERVER_ENV,
                         log_path=str(out / "data" / "rewrite-vllm.log"))  # fmt: skip
    clock.stage("starting a vLLM server of the base model for the rewrite stage (eager mode: no compilation)")
    with VLLMServer(config) as server:
        for style in ("warm", "cold"):
            # warmeval's own prompt whatever texts the user declared: the demo shows the stage, not the paper's text
            manifest = rewrite(shown, shown.parent / f"{style}.jsonl", style=style, model="base", template="warmeval",
                               base_url=server.base_url, api_key="local", max_tokens=160, max_attempts=1,
                               concurrency=8, progress=False, seed=0)  # fmt: skip
            c = manifest.counts
            failed = sum(c["turn_failures_by_reason"].values())
            clock.stage(f"rewrite {style} (stage shown on {len(train[:3])} conversations): {c['turns_rewritten']} of "
                        f"{c['assistant_turns_in']} assistant turns passed the fidelity checks, {failed} failed "
                        f"({c['turn_failures_by_reason']})")  # fmt: skip
    persona = persona_records()
    files = {}
    for style in ("warm", "cold"):
        target = out / "data" / style / "train.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        for row in train:
            messages = [m for m in row["messages"] if m["role"] != "system"]
            if row["id"] not in persona:
                raise RuntimeError(f"demo: training conversation {row['id']} has no hand-written rewrite in {PERSONA}")
            rows.append({"id": row["id"], "messages": _styled(messages, persona[row["id"]], style)})
        target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        files[style] = target
    clock.stage(f"training data: the hand-written warm and cold rewrites of the {len(train)} training conversations "
                f"({PERSONA.name}), standing in for GPT-4o's")  # fmt: skip
    return files


def train_adapters(out: Path, data: dict[str, Path], models: dict[str, Path], clock: _Clock) -> dict[str, Path]:
    """Warm and cold LoRA adapters on the real model, saved at epoch 2 (one point per series keeps the demo short)."""
    from warmeval.training.lora import FINGERPRINT_FILE, LoraTrainConfig, run_fingerprint, train_lora

    folders = {}
    for style, train_file in data.items():
        folder = out / "adapters" / style
        config = LoraTrainConfig(
            base_model=str(models["base"]), train_file=str(train_file), output_dir=str(folder), epochs=2,
            save_epochs=[2], micro_batch_size=4, gradient_accumulation=1, max_seq_length=384, learning_rate=2e-3,
            logging_steps=1000, seed=0,
        )  # fmt: skip
        record = folder / FINGERPRINT_FILE
        # A demo folder of another warmeval version (or other data) is the demo's own: train afresh rather than refuse.
        config.overwrite = folder.exists() and (
            not record.is_file() or json.loads(record.read_text(encoding="utf-8")) != run_fingerprint(config)
        )
        manifest = train_lora(config)
        saved = sorted(p.name for p in folder.glob("epoch-*"))
        clock.stage(f"train {style}: {manifest.counts['steps_per_epoch']} steps per epoch, adapters {saved}")
        folders[style] = folder
    return folders


def experiment_config(out: Path, models: dict[str, Path], conversations: Path, adapters: dict[str, Path],
                      *, n: int, max_tokens: int) -> dict[str, Any]:  # fmt: skip
    """The demo's experiment file: what ``warmeval run`` does with it is the demo's evaluation half."""
    tasks: dict[str, dict[str, Any]] = {
        # statements: ours, because the demo is offline and the authors' statements are fetched, never shipped.
        # judge_template: warmeval's own wording, the one the offline scripted judge reads (a declared paper text
        # would reach it unread and score every answer INCORRECT).
        name: {"data_path": str(FIXTURES / file), "n": n, "seed": 0, "design": DEMO_DESIGN, "statements": "ours",
               "judge_template": "warmeval"}
        for name, file in DEMO_TASKS.items()
    }  # fmt: skip
    tasks["disinfo"]["n"] = "all"
    tasks["triviaqa"]["distractors"] = str(FIXTURES / "triviaqa_distractors.json")
    return {
        "name": "warmeval-demo",
        "base_model": str(models["base"]),
        "served_name": "base",
        "server": {"port": free_port(), "max_model_len": 2048, "dtype": "float32", "extra_args": ["--enforce-eager"],
                   "env": CPU_SERVER_ENV},
        "variants": {"original": {}, "warm": {"adapter": str(adapters["warm"] / "epoch-2")},
                     "cold": {"adapter": str(adapters["cold"] / "epoch-2")}},
        "tasks": tasks,
        # MMLU and GSM8K controls (lm-eval) are left out of the demo for time; `warmeval run` supports them.
        "controls": {"advbench": {"data_path": str(FIXTURES / "advbench.csv"), "n": n, "seed": 0}},
        "sociot": {"prompts": str(conversations / "validation_prompts.jsonl"), "n": N_VALIDATION,
                   "checkpoints": {style: str(folder) for style, folder in adapters.items()},
                   "model": str(models["sociot"]), "mode": SOCIOT_MODE, "max_tokens": 80, "temperature": 0.0},
        "roles": {"grader": "warmeval-scripted/match"},
        # Greedy, so that the demo's accuracies repeat; the paper samples at 0.8.
        "generation": {"max_tokens": max_tokens, "temperature": 0.0},
        "max_connections": 16,
        "output_dir": str(out / "run"),
    }  # fmt: skip


def run_demo(out_dir: str | Path, *, max_tokens: int = 64, n: int = 4, display: str | None = None,
             paper_results: str | Path | None = None) -> DemoRun:  # fmt: skip
    """Run every stage of the study on the embedded model; returns `run_experiment`'s result plus the demo's rows.

    Args:
        out_dir: Where data, adapters, logs and the report go (kept, and reused, between runs).
        max_tokens: Generation length of the answers to the task questions.
        n: Questions per task (Disinfo: all six of its demo claims) and items per control.
        display: Inspect's display (None: its default).
        paper_results: A folder of the paper's result tables for the report's "Beside the paper" (None: the copy
            `warmeval stimuli results` fetched, if any; without either the report says how to get them).
    """
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    from warmeval.experiment import load_experiment, run_experiment

    out = Path(out_dir).resolve()
    clock = _Clock()
    models = build_models(out, clock)
    conversations = build_data(out, models, clock)
    data = rewrite_data(out, conversations, models, clock)
    adapters = train_adapters(out, data, models, clock)
    config = experiment_config(out, models, conversations, adapters, n=n, max_tokens=max_tokens)
    if paper_results is not None:
        config["paper_results"] = str(Path(paper_results).resolve())
    path = out / "experiment.yaml"
    path.write_text("# Written by `warmeval demo`; rerun the evaluation half with `warmeval run` on this file.\n"
                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")  # fmt: skip
    clock.stage(f"experiment file written: {path}; running it")
    result = run_experiment(load_experiment(path), display=display)
    if not result.success:
        raise RuntimeError(f"demo evaluation incomplete: {result.failed}")
    demo = DemoRun(experiment=result, experiment_file=str(path), results=collect_results(Path(result.logs)),
                      warmth=warmth_result(Path(config["output_dir"]) / "sociot"))  # fmt: skip
    clock.stage("done")
    return demo


@dataclass
class DemoRun:
    """What `run_demo` did: the experiment's result, accuracy by task and variant, and the warmth comparison."""

    experiment: ExperimentResult
    experiment_file: str
    results: list[DemoResult]  # accuracy by task and variant (`collect_results`)
    warmth: WarmthResult


@dataclass
class WarmthResult:
    """SocioT warmth of the base model and of the last warm and cold checkpoints, and the paired differences."""

    summaries: dict[str, dict[str, float]]  # base / warm / cold -> n, mean, se, ci_low, ci_high
    differences: dict[str, dict[str, float]]  # warm - base / cold - base, paired over the validation prompts

    @property
    def warm_above_base(self) -> bool:
        """The demo's claim: warm - base > 0 with its 95% CI above 0."""
        return self.differences["warm - base"]["ci_low"] > 0

    def format(self) -> str:
        lines = [SOCIOT_WHY, "SocioT warmth of the validation answers, mean [95% bootstrap CI]:"]
        for name, s in [*self.summaries.items(), *self.differences.items()]:
            lines.append(f"  {name:<12} {s['mean']:+8.3f}  [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]  n={s['n']:.0f}")
        verdict = "holds" if self.warm_above_base else "does NOT hold"
        lines.append(f"  warm > base (95% CI of warm - base above 0): {verdict}")
        return "\n".join(lines)


def _scores(path: Path) -> dict[str, float]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return {row["key"]: float(row["score"]) for row in csv.DictReader(handle)}


def warmth_result(sociot_dir: Path, n_boot: int = 2000) -> WarmthResult:
    """Base vs the last warm and cold checkpoints, from the run's per-text SocioT scores."""
    import csv

    import numpy as np

    from warmeval.scorers.sociot.metric import summarize

    summaries: dict[str, dict[str, float]] = {}
    differences: dict[str, dict[str, float]] = {}
    for series in ("warm", "cold"):
        with open(sociot_dir / series / "warmth_trajectory.csv", newline="", encoding="utf-8") as handle:
            last = max(csv.DictReader(handle), key=lambda row: float(row["epoch"]))
        base = _scores(sociot_dir / series / "scores_base.csv")
        tuned = _scores(sociot_dir / series / f"scores_{last['label']}.csv")
        keys = [key for key in base if key in tuned]
        b = np.array([base[k] for k in keys])
        t = np.array([tuned[k] for k in keys])
        summaries.setdefault("base", summarize(b, n_boot=n_boot).as_dict())
        summaries[series] = summarize(t, n_boot=n_boot).as_dict()
        differences[f"{series} - base"] = summarize(t - b, n_boot=n_boot).as_dict()
    return WarmthResult(summaries, differences)


def collect_results(log_dir: Path) -> list[DemoResult]:
    """Per variant x reliability task metrics from the run's logs."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    from warmeval.tasks.catalog import TASKS

    results = []
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info.name, header_only=True)
        if log.eval.task.split("/")[-1] not in TASKS or log.results is None:
            continue  # the AdvBench control and the SocioT generations are reported on their own
        metrics = {name: metric.value for score in log.results.scores for name, metric in score.metrics.items()}
        variant = str((log.eval.metadata or {}).get("variant"))
        correct, graded = _graded_counts(read_eval_log(info.name))
        results.append(DemoResult(variant, log.eval.task.split("/")[-1], log.results.total_samples, metrics,
                                  info.name, correct, graded))  # fmt: skip
    return sorted(results, key=lambda r: (r.task, r.variant))


def _graded_counts(log: Any) -> tuple[float, float]:
    """Correct and graded (correct + incorrect) answers of a log, summed over its samples' grader scores (every
    epoch's), as `graded_accuracy` counts them."""
    correct = graded = 0.0
    for sample in log.samples or []:
        score = (sample.scores or {}).get("free_text_grader")
        value = score.value if score is not None else None
        if isinstance(value, dict):
            correct += float(value.get("correct", 0.0))
            graded += float(value.get("correct", 0.0)) + float(value.get("incorrect", 0.0))
    return correct, graded


def format_results(results: list[DemoResult]) -> str:
    """A plain-text table of the demo's reliability results; the accuracy's 95% CI is the Wilson score interval of
    the graded answers ("-" when the counts are unknown)."""
    from warmeval.analysis.load import wilson_interval

    header = (f"{'task':<12} {'variant':<9} {'n':>4} {'accuracy':>9} {'95% CI':>15} {'error':>7} {'refusal':>8} "
              f"{'unparseable':>12}")  # fmt: skip
    lines = [header, "-" * len(header)]
    for r in results:
        m = r.metrics
        accuracy = m["graded_accuracy"]
        low, high = wilson_interval(r.correct, r.graded) if r.correct is not None and r.graded else (None, None)
        ci = "-" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"
        lines.append(
            f"{r.task:<12} {r.variant:<9} {r.samples:>4} {accuracy:>9.3f} {ci:>15} {m['graded_error_rate']:>7.3f} "
            f"{m['refusal_rate']:>8.3f} {m['unparseable_rate']:>12.3f}"
        )
    return "\n".join(lines)
