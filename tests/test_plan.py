"""`warmeval run --plan`: samples, generations, judge calls, tokens and the judge's cost, before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from warmeval.experiment import EXAMPLE, load_experiment
from warmeval.experiment.plan import CHARS_PER_TOKEN, PRICES_FILE, load_prices, plan_experiment, tokens
from warmeval.experiment.runner import task_arguments
from warmeval.tasks.catalog import CONTROL_TASKS, TASKS

FIXTURES = REPO / "warmeval" / "fixtures"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The `warmeval init` example, offline: local data for each task, stand-in adapter folders and SI text."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("WARMEVAL_STIMULI_URL", "http://127.0.0.1:9/")  # nothing listens: no network is used
    monkeypatch.setenv("WARMEVAL_PAPER_TEXTS", str(tmp_path / "texts"))
    assert run_cli("init", "experiment.yaml").returncode == 0
    for folder in ("adapters/warm/epoch-1", "adapters/warm/epoch-2", "adapters/cold/epoch-1", "adapters/cold/epoch-2"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "adapter_config.json").write_text("{}")  # only its presence is checked before a server
    prompts = tmp_path / "data" / "conversations" / "validation_prompts.jsonl"
    prompts.parent.mkdir(parents=True)
    prompts.write_text("".join(json.dumps({"id": f"v{i}", "prompt": f"Hi {i}, how are you?"})
                               + "\n" for i in range(7)))  # fmt: skip
    (tmp_path / "warm.txt").write_text("A stand-in warm system prompt written for this test.")
    assert run_cli("stimuli", "texts", "--set", f"warm_system_prompt={tmp_path / 'warm.txt'}").returncode == 0
    data = yaml.safe_load(EXAMPLE)
    data["tasks"] = {
        "triviaqa": {"data_path": str(FIXTURES / "triviaqa.jsonl"), "statements": "ours"},  # distractors generated
        "truthfulqa": {"data_path": str(FIXTURES / "truthfulqa.csv"), "statements": "ours"},
        "disinfo": {"data_path": str(FIXTURES / "disinformation.csv"), "statements": "ours"},
        "medqa_conv": {"data_path": str(FIXTURES / "medqa.jsonl"), "statements": "ours"},
    }
    data["controls"] = {"advbench": {"data_path": str(FIXTURES / "advbench.csv")}, "mmlu": {"n": 500}, "gsm8k": {}}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_plan_counts_the_tasks_as_they_load_and_adds_up(example: Path) -> None:
    result = run_cli("run", "--plan", str(example), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    plan = json.loads(result.stdout)
    experiment = load_experiment(example)
    variants = [v.name for v in experiment.variants]
    assert variants == ["original", "warm", "cold", "warm_sysprompt"]
    factories = {**TASKS, **CONTROL_TASKS}
    for name, args in [*experiment.tasks.items(), *experiment.controls.items()]:
        task = factories[name](**task_arguments(experiment, name, args))  # the same tasks, built here
        for variant in variants:
            row = next(r for r in plan["rows"] if r["variant"] == variant and r["task"] == name)
            assert row["samples"] == row["generations"] == row["judge_calls"] == len(task.dataset) > 0
    capability = {r["task"]: r for r in plan["rows"] if r["variant"] == "original" and r["task"] in ("mmlu", "gsm8k")}
    assert capability["mmlu"]["samples"] == 500 and capability["gsm8k"]["samples"] == 1319
    assert all(r["judge_calls"] == 0 for r in capability.values())
    sociot = [r for r in plan["rows"] if r["task"] == "sociot_generations"]
    # Every checkpoint once; epoch 2 is also a variant's adapter and keeps the variant's name.
    assert sorted(r["variant"] for r in sociot) == ["base", "cold", "cold-epoch-1", "warm", "warm-epoch-1"]
    assert all(r["samples"] == 7 for r in sociot)
    # TriviaQA built from a dataset: one distractor per question of the incorrect template, once, in the first run.
    trivia = [r for r in plan["rows"] if r["task"] == "triviaqa"]
    assert trivia[0]["distractor_calls"] > 0 and all(r["distractor_calls"] == 0 for r in trivia[1:])
    # The warm system prompt adds its tokens to every prompt of its variant, and nothing else changes.
    by = {(r["variant"], r["task"]): r for r in plan["rows"]}
    system = tokens("A stand-in warm system prompt written for this test.")
    extra = by[("warm_sysprompt", "disinfo")]["input_tokens"] - by[("original", "disinfo")]["input_tokens"]
    assert extra == system * by[("original", "disinfo")]["samples"]
    # Per-variant figures and rows add up to the total; the judge is priced online and through the Batch API.
    for key in ("samples", "generations", "judge_calls", "distractor_calls", "input_tokens", "judge_input_tokens"):
        assert sum(r[key] for r in plan["rows"]) == plan["total"][key]
        assert sum(v[key] for v in plan["variants"].values()) == plan["total"][key]
    assert plan["judge"] == "openai/gpt-4o-2024-08-06"
    total = plan["total"]
    online = (total["judge_input_tokens"] * 2.5 + total["judge_output_tokens"] * 10.0) / 1e6
    assert total["judge_cost_usd"] == pytest.approx(online, abs=1e-3)
    assert total["judge_cost_batch_usd"] == pytest.approx(online / 2, abs=1e-3)


def test_plan_table_and_run_print_the_same_summary(example: Path) -> None:
    table = run_cli("run", "--plan", str(example))
    assert table.returncode == 0, table.stdout + table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["variant", "task", "samples", "generations"]
    assert any(line.startswith("all ") and "(total)" in line for line in lines)
    assert "through the Batch API" in table.stdout and "characters per token" in table.stdout
    # A judge without a price is counted, not priced.
    data = yaml.safe_load(example.read_text())
    data["roles"]["grader"] = "warmeval-scripted/match"
    example.write_text(yaml.safe_dump(data, sort_keys=False))
    unpriced = plan_experiment(load_experiment(example))
    assert unpriced.prices is None and "no price" in unpriced.table()
    assert unpriced.total().judge_calls > 0


def test_plan_errors_name_the_task(example: Path) -> None:
    data = yaml.safe_load(example.read_text())
    data["tasks"]["medqa_conv"] = {"data_path": str(example.parent / "missing.jsonl")}
    example.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("run", "--plan", str(example))
    assert result.returncode == 2 and "tasks.medqa_conv" in result.stderr and "missing.jsonl" in result.stderr


def test_price_table_has_a_date_and_the_papers_judge() -> None:
    prices = load_prices("openai/gpt-4o-2024-08-06", PRICES_FILE)
    assert prices is not None and prices.as_of and prices.batch_input == prices.input / 2
    assert load_prices("no/such-model") is None
    assert tokens("x" * (CHARS_PER_TOKEN * 3 + 1)) == 4 and tokens("") == 0
