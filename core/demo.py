"""The offline demo: the whole study, end to end, on tiny random local models. Its numbers mean nothing.

Stage by stage, on CPU with no network (about 5 minutes on 2 cores):

1. tiny models: a random Llama chat model (the base), a random GPT-2 (SocioT's scorer) and a Detoxify stand-in whose
   scores are fixed near 0, each with a tokenizer trained on the bundled fixtures;
2. ``warmeval data build`` on ``fixtures/sharegpt.jsonl`` (our own conversations in ShareGPT's schema, three of them
   malformed on purpose): NSFW filter, query types, balanced sample, validation prompts;
3. ``warmeval data rewrite`` warm and cold through a local vLLM server of the base model. A random model's rewrites
   fail the fidelity checks; a real run excludes those conversations, the demo keeps them (``keep_failed``) so that
   there is something to train on, and prints how many failed;
4. ``warmeval train lora`` for warm and cold: a few steps, adapters saved at epochs 1 and 2 (learning rate 1e-3,
   100x the paper's, so that so few steps move the weights at all);
5. ``warmeval run`` on a generated experiment file (``<out>/experiment.yaml``): one vLLM server with the base model
   and all four adapters; the original, warm and cold variants on the four tasks (a few fixture questions, a sad
   user and high stakes, asked plainly and with a stated wrong answer) graded by the scripted judge
   ``warmeval-scripted/match``; AdvBench, MMLU and GSM8K controls on fixture items; validation generations of every
   checkpoint scored by SocioT with the tiny GPT-2; the analysis and the report.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warmeval.serve import free_port

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
    "NOTE: every number above comes from tiny models with RANDOM weights, trained for a few steps on a dozen "
    "conversations, and graded by a string-matching judge. They show the pipeline working offline; they say nothing "
    "about any real model."
)


@dataclass
class DemoResult:
    """One variant x task outcome of the demo."""

    variant: str
    task: str
    samples: int
    metrics: dict[str, float]
    log: str


def fixture_texts() -> list[str]:
    """All fixture text, used to train the tiny models' tokenizers."""
    return [path.read_text(encoding="utf-8") for path in sorted(FIXTURES.iterdir()) if path.is_file()]


class _Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def stage(self, message: str) -> None:
        print(f"[demo] {message} ({time.monotonic() - self.started:.0f}s)", flush=True)


def build_models(out: Path, clock: _Clock) -> dict[str, Path]:
    """The tiny base model, SocioT's tiny GPT-2 and the Detoxify stand-in (kept when already built)."""
    from warmeval.tiny import build_tiny_chat_model, build_tiny_detoxify, build_tiny_gpt2
    from warmeval.training.rewrite import PROMPTS_DIR

    models = out / "models"
    paths = {"base": models / "base", "gpt2": models / "sociot-gpt2", "detoxify": models / "detoxify"}
    # The rewrite templates join the corpus so that the tiny tokenizer keeps rewrite prompts within the context.
    texts = fixture_texts() + [path.read_text(encoding="utf-8") for path in sorted(PROMPTS_DIR.glob("*.j2"))]
    if not (paths["base"] / "config.json").is_file():
        build_tiny_chat_model(paths["base"], texts=texts)
    if not (paths["gpt2"] / "config.json").is_file():
        build_tiny_gpt2(paths["gpt2"], texts=texts)
    paths["detoxify_checkpoint"], _ = build_tiny_detoxify(paths["detoxify"])
    clock.stage(f"tiny models ready in {models}: random Llama base, random GPT-2 for SocioT, Detoxify stand-in")
    return paths


def build_data(out: Path, models: dict[str, Path], clock: _Clock) -> Path:
    """``warmeval data build`` on the bundled ShareGPT-schema fixture."""
    from warmeval.training.data import BuildConfig, build_conversations

    folder = out / "data" / "conversations"
    manifest = build_conversations(BuildConfig(
        input=str(FIXTURES / "sharegpt.jsonl"), out_dir=str(folder), n_train=12, n_validation=6,
        detoxify_checkpoint=str(models["detoxify_checkpoint"]), detoxify_config_dir=str(models["detoxify"]),
    ))  # fmt: skip
    c = manifest["counts"]
    clock.stage(f"data build: {c['rows_read']} records read, bad records {c['bad_records']}, NSFW dropped "
                f"{sum(c['nsfw_dropped'].values())}, {c['train_conversations']} training conversations "
                f"{c['train_by_type']}, {c['validation_prompts']} validation prompts (overlap "
                f"{c['train_validation_overlap']})")  # fmt: skip
    return folder


def rewrite_data(out: Path, conversations: Path, models: dict[str, Path], clock: _Clock) -> dict[str, Path]:
    """Warm and cold rewrites of every assistant turn through a local vLLM server of the base model."""
    from warmeval.serve import ServeConfig, VLLMServer
    from warmeval.training.rewrite import rewrite

    files = {style: out / "data" / style / "train.jsonl" for style in ("warm", "cold")}
    config = ServeConfig(base_model=str(models["base"]), served_name="base", port=free_port(), max_model_len=1024,
                         dtype="float32", log_path=str(out / "data" / "rewrite-vllm.log"))  # fmt: skip
    clock.stage("starting a vLLM server of the base model for the rewrites")
    with VLLMServer(config) as server:
        for style, target in files.items():
            manifest = rewrite(conversations / "train.jsonl", target, style=style, model="base",
                               base_url=server.base_url, api_key="local", max_tokens=48, max_attempts=1,
                               concurrency=8, keep_failed=True, progress=False, seed=0)  # fmt: skip
            c = manifest["counts"]
            clock.stage(f"rewrite {style}: {c['turns_rewritten']} of {c['assistant_turns_in']} assistant turns passed "
                        f"the fidelity checks; {c['turns_kept_failed']} failed ({c['turn_failures_by_reason']}) and "
                        "are KEPT for the demo only (a real run excludes them)")  # fmt: skip
    return files


def train_adapters(out: Path, data: dict[str, Path], models: dict[str, Path], clock: _Clock) -> dict[str, Path]:
    """Tiny warm and cold LoRA adapters, saved at epochs 1 and 2."""
    from warmeval.training.lora import LoraTrainConfig, train_lora

    folders = {}
    for style, train_file in data.items():
        folder = out / "adapters" / style
        manifest = train_lora(LoraTrainConfig(
            base_model=str(models["base"]), train_file=str(train_file), output_dir=str(folder), epochs=2,
            save_epochs=[1, 2], micro_batch_size=2, gradient_accumulation=2, max_seq_length=256, learning_rate=1e-3,
            logging_steps=1000,
        ))  # fmt: skip
        saved = sorted(p.name for p in folder.glob("epoch-*"))
        clock.stage(f"train {style}: {manifest['counts']['steps_per_epoch']} steps per epoch, adapters {saved}")
        folders[style] = folder
    return folders


def experiment_config(out: Path, models: dict[str, Path], conversations: Path, adapters: dict[str, Path],
                      *, n: int, max_tokens: int) -> dict[str, Any]:  # fmt: skip
    """The demo's experiment file: what ``warmeval run`` does with it is the demo's evaluation half."""
    tasks: dict[str, dict[str, Any]] = {
        # statements: ours, because the demo is offline and the authors' statements are fetched, never shipped.
        name: {"data_path": str(FIXTURES / file), "n": n, "seed": 0, "conditions": DEMO_CONDITIONS,
               "templates": DEMO_TEMPLATES, "statements": "ours"}
        for name, file in DEMO_TASKS.items()
    }  # fmt: skip
    tasks["triviaqa"]["distractors"] = str(FIXTURES / "triviaqa_distractors.json")
    return {
        "name": "warmeval-demo",
        "base_model": str(models["base"]),
        "served_name": "base",
        "server": {"port": free_port(), "max_model_len": 512, "dtype": "float32"},
        "variants": {"original": {}, "warm": {"adapter": str(adapters["warm"] / "epoch-2")},
                     "cold": {"adapter": str(adapters["cold"] / "epoch-2")}},
        "tasks": tasks,
        "controls": {
            "advbench": {"data_path": str(FIXTURES / "advbench.csv"), "n": n, "seed": 0},
            "mmlu": {"data_path": str(FIXTURES / "mmlu.jsonl"), "n": n, "seed": 0, "max_gen_toks": max_tokens},
            "gsm8k": {"data_path": str(FIXTURES / "gsm8k.jsonl"), "n": n, "seed": 0, "max_gen_toks": max_tokens},
        },
        "sociot": {"prompts": str(conversations / "validation_prompts.jsonl"), "n": 6,
                   "checkpoints": {style: str(folder) for style, folder in adapters.items()},
                   "model": str(models["gpt2"]), "max_tokens": max_tokens},
        "roles": {"grader": "warmeval-scripted/match"},
        "generation": {"max_tokens": max_tokens, "temperature": 0.8},
        "max_connections": 8,
        "output_dir": str(out / "run"),
    }  # fmt: skip


def run_demo(out_dir: str | Path, *, max_tokens: int = 16, n: int = 3, display: str | None = None) -> dict[str, Any]:
    """Run every stage of the study on tiny local models; returns `run_experiment`'s result plus the demo's rows.

    Args:
        out_dir: Where models, data, adapters, logs and the report go (kept, and reused, between runs).
        max_tokens: Generation length of the tiny model.
        n: Questions per task and items per control.
        display: Inspect's display (None: its default).
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
    path = out / "experiment.yaml"
    path.write_text("# Written by `warmeval demo`; rerun the evaluation half with `warmeval run` on this file.\n"
                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")  # fmt: skip
    clock.stage(f"experiment file written: {path}; running it")
    result = run_experiment(load_experiment(path), display=display)
    if not result["success"]:
        raise RuntimeError(f"demo evaluation incomplete: {result.get('failed')}")
    result["results"] = collect_results(Path(result["logs"]))
    result["experiment"] = str(path)
    clock.stage("done")
    return result


def collect_results(log_dir: Path) -> list[DemoResult]:
    """Per variant x reliability task metrics from the run's logs."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    results = []
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info.name, header_only=True)
        if log.eval.task.endswith("advbench") or log.results is None:
            continue
        metrics = {name: metric.value for score in log.results.scores for name, metric in score.metrics.items()}
        variant = str((log.eval.metadata or {}).get("variant"))
        results.append(DemoResult(variant, log.eval.task.split("/")[-1], log.results.total_samples, metrics,
                                  info.name))  # fmt: skip
    return sorted(results, key=lambda r: (r.task, r.variant))


def format_results(results: list[DemoResult]) -> str:
    """A plain-text table of the demo's reliability results."""
    header = f"{'task':<12} {'variant':<9} {'n':>4} {'accuracy':>9} {'error':>7} {'refusal':>8} {'unparseable':>12}"
    lines = [header, "-" * len(header)]
    for r in results:
        m = r.metrics
        lines.append(
            f"{r.task:<12} {r.variant:<9} {r.samples:>4} {m['accuracy']:>9.3f} {m['error_rate']:>7.3f} "
            f"{m['refusal_rate']:>8.3f} {m['unparseable_rate']:>12.3f}"
        )
    return "\n".join(lines)
