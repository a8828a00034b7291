"""`warmeval init` / `warmeval run`: the experiment schema, and a two-variant, two-task run that resumes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from inspect_ai.log import list_eval_logs, read_eval_log

from tests.conftest import FAST_SERVER, REPO, SHARED_DATA, bin_path, free_port, run_cli
from warmeval.experiment import EXAMPLE, SET_BY_EXPERIMENT, ExperimentError, build_tasks, load_experiment
from warmeval.tiny import build_tiny_gpt2
from warmeval.training.lora import LoraTrainConfig, train_lora

FIXTURES = REPO / "warmeval" / "fixtures"


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_schema_errors_name_the_key_path(tmp_path: Path) -> None:
    base = {"base_model": "some/model", "variants": {"original": {}}, "tasks": {"triviaqa": {"n": 2}}}
    assert load_experiment(_write(tmp_path / "ok.yaml", base)).variants[0].name == "original"
    # The report fits every variant against the original by default, or those the file names.
    both = {**base, "variants": {"original": {}, "sys": {"system_prompt": "warm"}, "other": {"system_prompt": "warm"}}}
    assert load_experiment(_write(tmp_path / "ok.yaml", both)).comparisons == ["other", "sys"]  # file order
    assert load_experiment(_write(tmp_path / "ok.yaml", {**both, "comparisons": ["other"]})).comparisons == ["other"]
    cases = [
        ({**base, "judge": "x"}, r"ok2.yaml: judge: unknown key"),
        ({**base, "variants": {"warm": {"adaptor": "x"}}}, r"variants.warm.adaptor: unknown key"),
        ({**base, "variants": {"warm": {"adapter": "missing/dir"}}}, r"variants.warm.adapter: missing/dir does not"),
        ({**base, "tasks": {"triviaqa": {"samples": 3}}}, r"tasks.triviaqa.samples: unknown key"),
        ({**base, "tasks": {"mmlu": {}}}, r"tasks.mmlu: unknown task"),
        ({**base, "tasks": {"triviaqa": {"data_path": "nope.jsonl"}}}, r"data_path: nope.jsonl does not"),
        ({**base, "server": {"gpu": 1}}, r"server.gpu: unknown key"),
        ({**base, "server": {"env": {"VLLM_CPU_KVCACHE_SPACE": 4}}}, r"server.env.VLLM_CPU_KVCACHE_SPACE: "),
        ({**base, "server": {"startup_timeout": "soon"}}, r"server.startup_timeout: "),
        # the experiment sets these itself, from its top level and variants
        ({**base, "server": {"served_name": "x"}}, r"server.served_name: unknown key"),
        ({**base, "server": {"adapters": {"warm": "."}}}, r"server.adapters: unknown key"),
        ({**base, "roles": {"judge": "x"}}, r"roles.judge: unknown key"),
        ({**base, "generation": {"temperature": "hot"}}, r"generation.temperature: "),
        ({**base, "generation": {"max_connections": 4}}, r"generation.max_connections: unknown key"),  # top level
        # Inspect's nested settings are pydantic models, which would ignore a misspelt key
        ({**base, "generation": {"cache": {"expiry": "1D", "per_epoc": False}}}, r"generation.cache.per_epoc: unknown"),
        ({**base, "generation": {"batch": {"size": 10, "sise": 5}}}, r"generation.batch.sise: unknown key"),
        ({k: v for k, v in base.items() if k != "tasks"}, r"tasks: missing"),
        ({**base, "controls": {"mmlu": {"shots": 5}}}, r"controls.mmlu.shots: unknown key"),
        ({**base, "controls": {"hellaswag": {}}}, r"controls.hellaswag: unknown task"),
        ({**base, "controls": {"gsm8k": {"data_path": "gone.jsonl"}}}, r"controls.gsm8k.data_path: gone.jsonl does"),
        ({**base, "sociot": {"prompts": "p.jsonl"}}, r"sociot.checkpoints: missing"),
        ({**base, "sociot": {"prompts": "p.jsonl", "checkpoints": {"warm": "."}, "seed": 1}}, r"sociot.seed: unknown"),
        ({**base, "sociot": {"prompts": "p.jsonl", "checkpoints": {"warm": "."}}}, r"sociot.prompts: p.jsonl does"),
        ({**base, "sociot": {"prompts": "ok.yaml", "checkpoints": {"warm": "."}}},
         r"sociot.checkpoints.warm: . holds no epoch-<e>/ adapter folder"),
        ({**base, "paper_results": "nowhere"}, r"paper_results: nowhere does not exist"),
        ({**base, "comparisons": ["cold"]}, r"comparisons.0: 'cold' is not a variant to compare with the original"),
        ({**base, "comparisons": ["original"]}, r"comparisons.0: 'original' is not a variant"),
        ({**base, "paper_results": "."},
         r"paper_results: .*results_warm_ft.csv: missing; run `warmeval stimuli results`"),
        ({**base, "sociot": {"prompts": "ok.yaml", "checkpoints": {"warm": "."}, "mode": "principled"}},
         r"sociot.mode: "),
    ]  # fmt: skip
    for data, message in cases:
        with pytest.raises(ExperimentError, match=message):
            load_experiment(_write(tmp_path / "ok2.yaml", data))


def test_server_section_takes_every_serve_option_the_experiment_does_not_set(tmp_path: Path) -> None:
    import dataclasses

    from warmeval.serve import ServeConfig

    given = {"host": "127.0.0.1", "port": 8123, "max_model_len": 512, "dtype": "float32", "tensor_parallel_size": 2,
             "pipeline_parallel_size": 2, "data_parallel_size": 2, "distributed_executor_backend": "mp",
             "extra_args": ["--enforce-eager"], "env": {"VLLM_CPU_KVCACHE_SPACE": "1"}, "startup_timeout": 60.0}
    options = {f.name for f in dataclasses.fields(ServeConfig)} - set(SET_BY_EXPERIMENT)
    assert set(given) == options  # a new ServeConfig option needs a value here, and is a server: key at once
    data = {"base_model": "some/model", "variants": {"original": {}}, "tasks": {"triviaqa": {"n": 2}}, "server": given}
    experiment = load_experiment(_write(tmp_path / "e.yaml", data))
    assert experiment.server.given() == given
    assert ServeConfig(base_model="m", **experiment.server.given()).port == 8123
    # unset options are left to ServeConfig's defaults
    assert load_experiment(_write(tmp_path / "f.yaml", {**data, "server": {"port": 9}})).server.given() == {"port": 9}


def test_generation_section_takes_inspects_generate_config_options(tmp_path: Path) -> None:
    from inspect_ai.model import GenerateConfig

    given = {"max_tokens": 40, "temperature": 0.0, "stop_seqs": ["\\n\\n"], "top_k": 5, "max_retries": 2,
             "cache": {"expiry": "1D", "per_epoch": False}, "reasoning_history": True}
    data = {"base_model": "some/model", "variants": {"original": {}}, "tasks": {"triviaqa": {"n": 2}},
            "generation": given, "max_connections": 3}  # fmt: skip
    experiment = load_experiment(_write(tmp_path / "e.yaml", data))
    assert experiment.generation.given() == given
    # what run_experiment passes to eval_set, with the top-level max_connections
    config = GenerateConfig(max_connections=experiment.max_connections, **experiment.generation.given())
    assert config.stop_seqs == ["\\n\\n"] and config.top_k == 5 and config.max_connections == 3
    assert config.model_dump()["cache"]["expiry"] == "1D" and config.reasoning_history == "all"  # Inspect's validator


def test_init_writes_the_papers_design(tmp_path: Path) -> None:
    done = run_cli("init", tmp_path / "experiment.yaml")
    assert done.returncode == 0 and (tmp_path / "experiment.yaml").read_text() == EXAMPLE
    data = yaml.safe_load(EXAMPLE)
    assert set(data["variants"]) == {"original", "warm", "cold", "warm_sysprompt"}
    assert set(data["tasks"]) == {"triviaqa", "truthfulqa", "disinfo", "medqa_conv"}
    assert set(data["controls"]) == {"advbench", "mmlu", "gsm8k"}
    assert set(data["sociot"]["checkpoints"]) == {"warm", "cold"}
    # the paper's protocol: the tasks' own defaults, controls and SocioT at the paper's sizes, the pinned judge
    assert all(args == {} for args in data["tasks"].values()) and all(a == {} for a in data["controls"].values())
    assert data["sociot"]["n"] == 1500 and data["variants"]["warm_sysprompt"] == {"system_prompt": "paper"}
    assert data["roles"] == {"grader": "openai/gpt-4o-2024-08-06", "distractor": "openai/gpt-4o-2024-08-06"}
    assert (data["generation"]["temperature"], data["generation"]["max_tokens"]) == (0.8, 300)
    with pytest.raises(ExperimentError, match=r"variants.warm.adapter: adapters/warm/epoch-2 does not exist"):
        load_experiment(tmp_path / "experiment.yaml")
    again = subprocess.run([bin_path("warmeval"), "init", str(tmp_path / "experiment.yaml")], capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert again.returncode == 2 and "not overwriting" in again.stderr


def test_judge_and_system_prompts_are_checked_before_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from warmeval.experiment import check_tasks

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("WARMEVAL_PAPER_TEXTS", str(tmp_path / "texts"))
    data = {"base_model": "some/model", "variants": {"original": {}},
            "tasks": {"disinfo": {"data_path": str(FIXTURES / "disinformation.csv"), "design": "quick",
                                  "statements": "ours"}}}  # fmt: skip
    with pytest.raises(ExperimentError, match=r"roles.grader: no 'grader' role is bound.*gpt-4o-2024-08-06"):
        check_tasks(load_experiment(_write(tmp_path / "a.yaml", data)))
    data["roles"] = {"grader": "openai/gpt-4o-2024-08-06"}  # bound, and still no key
    with pytest.raises(ExperimentError, match=r"roles.grader: openai/gpt-4o-2024-08-06 cannot be used: .*API_KEY"):
        check_tasks(load_experiment(_write(tmp_path / "d.yaml", data)))
    data["roles"] = {"grader": "warmeval-scripted/match"}
    check_tasks(load_experiment(_write(tmp_path / "b.yaml", data)))
    data["variants"]["warm_sysprompt"] = {"system_prompt": "paper"}
    with pytest.raises(ExperimentError, match=r"variants.warm_sysprompt.system_prompt: .*SI section 1\.2"):
        check_tasks(load_experiment(_write(tmp_path / "c.yaml", data)))


def test_build_tasks_labels_variants(tmp_path: Path) -> None:
    data = {"base_model": "some/model", "variants": {"original": {}, "warm_sysprompt": {"system_prompt": "warm"}},
            "tasks": {"disinfo": {"data_path": str(FIXTURES / "disinformation.csv"),
                                  "statements": "ours"}}}  # fmt: skip
    experiment = load_experiment(_write(tmp_path / "e.yaml", data))
    tasks = build_tasks(experiment)
    assert [t.metadata["variant"] for t in tasks] == ["original", "warm_sysprompt"]
    assert all(t.metadata["base_model"] == "some/model" for t in tasks)


@pytest.mark.slow(seconds=80)
def test_run_two_variants_two_tasks_two_conditions_and_resume(tiny_model: Path, tmp_path: Path) -> None:
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Q{i}?"},
                                                      {"role": "assistant", "content": f"A{i}, friend!"}]}) + "\n"
                             for i in range(8)))  # fmt: skip
    train_lora(LoraTrainConfig(base_model=str(tiny_model), train_file=str(chats), output_dir=str(tmp_path / "warm"),
                               micro_batch_size=4, gradient_accumulation=1, epochs=1, save_epochs=[1],
                               learning_rate=1e-2))  # fmt: skip
    prompts = tmp_path / "validation_prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"v{i}", "prompt": f"Tell me about {w}."}) + "\n"
                               for i, w in enumerate(["rain", "cats", "maths"])))  # fmt: skip
    build_tiny_gpt2(tmp_path / "gpt2")  # "gpt2" in the file resolves against its folder
    experiment = {
        "name": "tiny-study", "base_model": str(tiny_model), "served_name": "base",
        "server": {"port": free_port(), "max_model_len": 512, "dtype": "float32", **FAST_SERVER},
        "variants": {"original": {}, "warm": {"adapter": str(tmp_path / "warm" / "epoch-1")}},
        "tasks": {
            "triviaqa": {"data_path": str(FIXTURES / "triviaqa.jsonl"), "n": 2, "conditions": "unmodified,emotion:sad",
                         "templates": "original,incorrect", "distractors": str(FIXTURES / "triviaqa_distractors.json"),
                         "statements": "ours"},
            "disinfo": {"data_path": str(FIXTURES / "disinformation.csv"), "n": 2, "statements": "ours",
                        "conditions": "unmodified,emotion:sad", "templates": "original,incorrect"},
        },
        "controls": {"advbench": {"data_path": str(FIXTURES / "advbench.csv"), "n": 2},
                     "mmlu": {"data_path": str(FIXTURES / "mmlu.jsonl"), "n": 2, "max_gen_toks": 8}},
        "sociot": {"prompts": str(prompts), "checkpoints": {"warm": str(tmp_path / "warm")}, "model": "gpt2",
                   "max_tokens": 8},
        "roles": {"grader": "warmeval-scripted/match"},
        "generation": {"max_tokens": 8},
        "max_connections": 4,
        "output_dir": str(tmp_path / "run"),
    }  # fmt: skip
    results = SHARED_DATA / "warm_ai_2025_results"
    if (results / "results_warm_ft.csv").is_file():  # the paper's tables, when at hand: the run sets itself beside them
        experiment["paper_results"] = str(results)
    path = _write(tmp_path / "experiment.yaml", experiment)
    done = subprocess.run([bin_path("warmeval"), "run", str(path)], capture_output=True, text=True, timeout=1200,
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[warmeval run] server ready" in done.stdout and "report:" in done.stdout
    # The plan is printed before the server starts, as `warmeval run --plan` prints it.
    assert done.stdout.index("the plan of this run") < done.stdout.index("server ready")
    assert "(total)" in done.stdout and "judge calls are at most" in done.stdout
    # the last line: can these numbers stand beside the paper's? (here: no, for these reasons among others)
    verdict = done.stdout.strip().splitlines()[-1]
    assert verdict.startswith("Paper-comparable: no: ")
    assert verdict in (tmp_path / "run" / "report" / "report.md").read_text()
    if "paper_results" in experiment:
        assert "Beside the paper (warm fine-tune minus original accuracy, unmodified prompts" in done.stdout
        assert re.search(r"\n  trivia +this run: \S+ [+-]\d+\.\d; the paper: -\d+\.\d to -\d+\.\d\n", done.stdout)
        assert "## Beside the paper" in (tmp_path / "run" / "report" / "report.md").read_text()
    else:
        assert "Beside the paper: the paper's result tables are not at hand" in done.stdout
    for deviation in ("judge: warmeval-scripted/match", "controls: MMLU 2 of 14,042 questions",
                      "controls: GSM8K not run", "tasks: medqa_conv, truthfulqa not run",
                      "generation: at most 8 tokens (the paper: 300)"):  # fmt: skip
        assert deviation in verdict, (deviation, verdict)
    logs = list_eval_logs(str(tmp_path / "run" / "logs"))
    assert len(logs) == 8  # 2 variants x (2 tasks + the AdvBench control) + SocioT generations of base and warm
    assert "control advbench, warm: judged_refusal_rate" in done.stdout
    seen, sociot = {}, {}
    for info in logs:
        log = read_eval_log(info.name.removeprefix("file://"))
        if log.eval.task.endswith("advbench"):
            assert log.status == "success" and len(log.samples) == 2
            continue
        if log.eval.task.endswith("sociot_generations"):  # an Inspect task in the same eval_set, scored by SocioT
            assert log.status == "success" and [s.id for s in log.samples] == ["v0", "v1", "v2"]
            sociot[log.eval.model] = [s.scores["sociot_warmth"].value for s in log.samples]
            continue
        assert log.status == "success" and len(log.samples) == 2 * 2 * 2
        assert all(s.scores for s in log.samples)
        seen[(log.eval.metadata["variant"], log.eval.task.split("/")[-1])] = log.eval.model
    assert seen == {("original", "triviaqa"): "vllm/base", ("original", "disinfo"): "vllm/base",
                    ("warm", "triviaqa"): "vllm/warm", ("warm", "disinfo"): "vllm/warm"}  # fmt: skip
    assert (tmp_path / "run" / "report" / "report.html").is_file()
    # the MMLU control ran through lm-eval on the same server, once per variant, with the served model names
    for variant, served in (("original", "base"), ("warm", "warm")):
        result = json.loads((tmp_path / "run" / "controls" / variant / f"mmlu__{served}.json").read_text())
        assert result["model"] == served and result["n"] == 2 and 0 <= result["accuracy"] <= 1
    assert "control mmlu, warm: accuracy" in done.stdout
    # SocioT: the warm checkpoint is the warm variant's adapter, so it is served once, under that name
    assert set(sociot) == {"vllm/base", "vllm/warm"}
    assert (tmp_path / "run" / "sociot" / "generations" / "warm.jsonl").is_file()
    table = (tmp_path / "run" / "sociot" / "warm" / "warmth_trajectory.csv").read_text().split("\n")
    assert [row.split(",")[:3] for row in table[1:] if row] == [["base", "0.0", "3"], ["warm", "1.0", "3"]]
    # the trajectory's per-text scores are the ones the Inspect scorer logged
    scores = (tmp_path / "run" / "sociot" / "warm" / "scores_warm.csv").read_text().split("\n")[1:]
    assert [float(row.split(",")[2]) for row in scores if row] == pytest.approx(sociot["vllm/warm"])
    assert "SocioT warmth by checkpoint" in (tmp_path / "run" / "report" / "report.md").read_text()
    # Rerunning the same command resumes: nothing is redone or duplicated.
    again = subprocess.run([bin_path("warmeval"), "run", str(path)], capture_output=True, text=True, timeout=1200,
                           cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "control mmlu (lm-eval)" not in again.stdout
    assert sorted(i.name for i in list_eval_logs(str(tmp_path / "run" / "logs"))) == sorted(i.name for i in logs)


@pytest.mark.slow(seconds=81)
def test_server_killed_mid_run_then_rerun_scores_every_sample_once(tiny_model: Path, tmp_path: Path) -> None:
    import os
    import signal
    import time

    port = free_port()
    experiment = {
        "base_model": str(tiny_model), "served_name": "base",
        "server": {"port": port, "max_model_len": 512, "dtype": "float32", **FAST_SERVER},
        "variants": {"original": {}},
        "tasks": {"truthfulqa": {"data_path": str(FIXTURES / "truthfulqa.csv"), "conditions": "all",
                                 "templates": "all", "statements": "ours"}},
        "roles": {"grader": "warmeval-scripted/match"},
        "generation": {"max_tokens": 48, "max_retries": 1, "timeout": 20},
        "max_connections": 1,
        "output_dir": str(tmp_path / "run"),
    }  # fmt: skip
    path = _write(tmp_path / "experiment.yaml", experiment)
    run = subprocess.Popen([bin_path("warmeval"), "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=tmp_path)  # fmt: skip
    assert run.stdout is not None
    for line in run.stdout:
        if "[warmeval run] evaluating" in line:
            break
    time.sleep(8)  # some samples are done, most are not
    found = subprocess.run(["pgrep", "-f", f"vllm serve .*--port {port}"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    assert pids, "vllm server not found"
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    out, err = run.communicate(timeout=900)
    assert run.returncode == 1, out[-2000:] + err[-2000:]
    assert "did not finish; rerun the same command to resume" in err
    again = subprocess.run([bin_path("warmeval"), "run", str(path)], capture_output=True, text=True, timeout=1200,
                           cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    logs = [read_eval_log(i.name.removeprefix("file://")) for i in list_eval_logs(str(tmp_path / "run" / "logs"))]
    complete = [log for log in logs if log.status == "success"]
    assert len(complete) == 1
    ids = [(s.id, s.epoch) for s in complete[0].samples]
    assert len(ids) == len(set(ids)) == 3 * 28 and all(s.scores for s in complete[0].samples)


def test_control_data_and_task_sources_are_checked_before_a_server(tmp_path: Path) -> None:
    """A bad MMLU/GSM8K row stops the run before the server starts (lm-eval reads the file only after the
    evaluations); a task given both data_path and prompts_file is an error, not a silent choice of one."""
    bad = tmp_path / "mmlu.jsonl"
    bad.write_text(json.dumps({"question": "Q?", "subject": "s", "choices": ["a", "b", "c", "d"], "answer": 1}) + "\n"
                   + json.dumps({"question": "Q2?", "subject": "s", "choices": ["a", "b"], "answer": 0}) + "\n")
    data = {"base_model": "some/model", "base_url": "http://127.0.0.1:9/v1", "variants": {"original": {}},
            "tasks": {"disinfo": {"data_path": str(FIXTURES / "disinformation.csv"), "design": "quick",
                                  "statements": "ours"}},
            "controls": {"mmlu": {"data_path": str(bad)}}, "roles": {"grader": "warmeval-scripted/match"},
            "output_dir": str(tmp_path / "run")}  # fmt: skip
    result = run_cli("run", _write(tmp_path / "e.yaml", data))
    assert result.returncode == 2, result.stdout + result.stderr
    pattern = r"controls\.mmlu\.data_path: .*mmlu\.jsonl: row 2: field 'choices' must be a list of 4"
    assert re.search(pattern, result.stderr)
    assert "server ready" not in result.stdout
    data["controls"] = {}
    data["tasks"]["disinfo"]["prompts_file"] = str(FIXTURES / "disinfo_demo.csv")
    both = run_cli("run", _write(tmp_path / "f.yaml", data))
    assert both.returncode == 2 and "data_path=" in both.stderr and "both given" in both.stderr
