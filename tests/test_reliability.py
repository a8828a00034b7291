"""Reliability of `warmeval run`: no server outlives an interrupted run, and a killed run resumes to its report.

The vLLM server is a stand-in (`tests/fake_openai.py`, put first on PATH as ``vllm``) that starts and answers as slowly
as each case needs, so that a signal can land during start-up or during evaluation; its PID is checked afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import bin_path
from warmeval.serve import free_port

FIXTURES = Path(__file__).parents[1] / "warmeval" / "fixtures"
FAKE = Path(__file__).with_name("fake_openai.py")


def _environment(tmp_path: Path, **fake: float) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "vllm"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "FAKE_VLLM_DIR": str(tmp_path / "fake")}
    env.update({f"FAKE_VLLM_{key.upper()}": str(value) for key, value in fake.items()})
    return env


def _experiment(tmp_path: Path) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump({
        "name": "hygiene", "base_model": "fake-base", "variants": {"original": {}},
        "tasks": {"triviaqa": {"data_path": str(FIXTURES / "triviaqa.jsonl"), "n": 4, "statements": "ours",
                               "conditions": "unmodified,emotion:sad", "templates": "original"}},
        "server": {"port": free_port(), "startup_timeout": 120, "env": {"VLLM_FAKE_SETTING": "from-experiment"}},
        "roles": {"grader": "warmeval-scripted/match"},
        "generation": {"max_tokens": 8, "temperature": 0.0},
        "max_connections": 1,
        "output_dir": str(tmp_path / "run"),
    }))  # fmt: skip
    return path


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow(seconds=7)
@pytest.mark.parametrize("stage", ["startup", "evaluation"])
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_no_server_outlives_an_interrupted_run(stage: str, signal_name: str, tmp_path: Path) -> None:
    fake = {"startup": 60} if stage == "startup" else {"delay": 3}
    env = _environment(tmp_path, **fake)
    process = subprocess.Popen([bin_path("warmeval"), "run", str(_experiment(tmp_path))], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _wait_for(tmp_path / "fake" / ("pid" if stage == "startup" else "requests"), process)
        pid = int((tmp_path / "fake" / "pid").read_text())
        process.send_signal(getattr(signal, signal_name))
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Rerun the same command to resume" in err
    assert _gone(pid), f"the server (PID {pid}) outlived the run"


@pytest.mark.slow(seconds=20)
def test_a_killed_run_resumes_and_writes_its_report(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    process = subprocess.Popen([bin_path("warmeval"), "run", str(experiment)], env=_environment(tmp_path, delay=2),
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _wait_for(tmp_path / "fake" / "requests", process)
        pid = int((tmp_path / "fake" / "pid").read_text())
        launch = json.loads((tmp_path / "fake" / "launch.json").read_text())  # server.env reached the server
        assert launch["env"]["VLLM_FAKE_SETTING"] == "from-experiment" and launch["env"]["VLLM_CPU_KVCACHE_SPACE"]
        time.sleep(3)  # a sample or two done, the log started
        process.kill()  # SIGKILL: nothing in warmeval runs; the kernel still stops the server (PR_SET_PDEATHSIG)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert _gone(pid), f"the server (PID {pid}) outlived a killed run"
    (tmp_path / "fake" / "requests").unlink()
    done = subprocess.run([bin_path("warmeval"), "run", str(experiment)], env=_environment(tmp_path), text=True,
                          capture_output=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = tmp_path / "run" / "report" / "report.md"
    assert report.is_file() and "report:" in done.stdout
    logs = sorted((tmp_path / "run" / "logs").glob("*.eval"))
    assert len(logs) >= 1
    from warmeval.analysis.load import load_table

    table = load_table([tmp_path / "run" / "logs"])  # the folder, a dead run's log included, loads too
    assert len(table) == 8


def _table(path: Path, rows: int = 20, finetuned: object = 0) -> Path:
    lines = ["model,variant,is_finetuned,dataset,question_id,prompt_template,amendment_type,epoch,output,evaluation,"
             "response_length"]  # fmt: skip
    lines += [f"m,v,{finetuned},trivia,q{i},original,unmodified,1,An answer.,{'INCORRECT' if i % 3 else 'CORRECT'},10"
              for i in range(rows)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("truncated_eval", "not a readable Inspect log"),
        ("empty_csv", "cannot read (EmptyDataError"),
        ("latin1_csv", "cannot read (UnicodeDecodeError"),
        ("txt", "not an Inspect .eval log"),
        ("text_finetuned", "field 'is_finetuned' is 'yes'"),
        ("rule", "unknown refusal rule 'strict'"),
        ("missing", "no such file or folder"),
    ],
)
def test_gate_exits_2_on_input_it_cannot_use(broken: str, reason: str, tmp_path: Path) -> None:
    from warmeval.analysis.gate import UNUSABLE, run_gate

    baseline = _table(tmp_path / "base.csv")
    candidate = tmp_path / "cand.csv"
    rule = None
    if broken == "truncated_eval":
        candidate = tmp_path / "cand.eval"
        candidate.write_bytes(b"PK\x03\x04 truncated")
    elif broken == "empty_csv":
        candidate.write_text("")
    elif broken == "latin1_csv":
        _table(candidate)
        candidate.write_bytes(candidate.read_bytes().replace(b"An answer.", "Réponse".encode("latin-1")))
    elif broken == "txt":
        candidate = tmp_path / "cand.txt"
        candidate.write_text("hello")
    elif broken == "text_finetuned":
        _table(candidate, finetuned="yes")
    elif broken == "rule":
        _table(candidate)
        rule = "strict"
    else:
        candidate = tmp_path / "absent.csv"
    result = run_gate([baseline], [candidate], rule=rule)  # type: ignore[arg-type]
    assert result.exit_code == UNUSABLE and reason in result.message and "\n" not in result.message
    command = [bin_path("warmeval"), "gate", "--baseline", str(baseline), "--candidate", str(candidate)]
    done = subprocess.run(command + (["--refusal-rule", rule] if rule else []), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 2 and reason in done.stderr and "Traceback" not in done.stderr


def test_rewrite_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    source = tmp_path / "train.jsonl"
    conversation = {
        "id": "c1",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    }
    source.write_text(__import__("json").dumps(conversation) + "\n")
    before = source.read_bytes()
    command = [bin_path("warmeval"), "data", "rewrite", "--style", "warm", "--input", str(source), "--output",
               str(source), "--base-url", "http://127.0.0.1:9/v1"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OPENAI_API_KEY": "x"}
    )
    assert done.returncode == 2 and "would write over the input" in done.stderr
    assert source.read_bytes() == before


def test_commands_that_produce_nothing_exit_non_zero(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    command = [bin_path("warmeval"), "data", "build", "--input", str(empty), "--out-dir", str(tmp_path / "built"),
               "--no-nsfw-filter"]  # fmt: skip
    build = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert build.returncode != 0 and "error" in build.stderr.lower(), build.stdout + build.stderr
    table = _table(tmp_path / "t.csv")
    models = subprocess.run([bin_path("warmeval"), "analyse", "models", str(table), "--variants", "foo,bar"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert models.returncode == 2 and "variant(s) foo, bar absent from the data (present: v)" in models.stderr
    flat = tmp_path / "flat.csv"  # every answer right: no model can be fitted
    rows = _table(tmp_path / "t.csv").read_text().replace("INCORRECT", "CORRECT").splitlines()
    original = [r.replace(",v,0,", ",original,0,") for r in rows[1:]]
    warm = [r.replace(",v,0,", ",warm,1,").replace(",q", ",w") for r in rows[1:]]
    flat.write_text("\n".join([rows[0], *original, *warm]) + "\n")
    models = subprocess.run([bin_path("warmeval"), "analyse", "models", str(flat)], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert models.returncode == 1 and "none of the four models could be fitted for warm" in models.stderr


def test_trajectory_labels_must_be_unique(tmp_path: Path) -> None:
    from warmeval.scorers.sociot.files import TextInputError, parse_labelled

    with pytest.raises(TextInputError, match="label '0' is also given by"):
        parse_labelled(["0=a.jsonl", "0=b.jsonl"])
    assert [label for label, _, _ in parse_labelled(["base@0=a.jsonl", "warm@0=b.jsonl"])] == ["base", "warm"]


def test_user_templates_are_sandboxed(tmp_path: Path) -> None:
    from warmeval.solvers.system_prompt import resolve_system_prompt
    from warmeval.training.rewrite import RewriteConfig, load_template, render_prompt

    attack = "{{ cycler.__init__.__globals__.os.getcwd() }}"
    template = tmp_path / "evil.j2"
    template.write_text(attack + " {{ user_message }} {{ assistant_message }}")
    loaded, _ = load_template(RewriteConfig(template=str(template)))
    with pytest.raises(Exception, match="unsafe|not safely|__init__|undefined"):
        render_prompt(loaded, "u", "a")
    prompt = tmp_path / "evil_prompt.j2"
    prompt.write_text(attack)
    with pytest.raises(Exception, match="unsafe|not safely|__init__|undefined"):
        resolve_system_prompt(str(prompt))


def test_credentials_in_urls_are_redacted_in_manifests(tmp_path: Path) -> None:
    import json

    from warmeval.training.rewrite import RewriteConfig
    from warmeval.util.manifest import redact_url, write_manifest

    assert redact_url("http://user:secret@host:8000/v1") == "http://<redacted>@host:8000/v1"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    config = RewriteConfig(base_url="http://user:secret@host:8000/v1")
    assert "secret" not in json.dumps(config.public_parameters())
    manifest = write_manifest(tmp_path / "m.json", stage="x", parameters={"nested": ["https://a:b@x.org/p"]})
    assert "a:b@" not in (tmp_path / "m.json").read_text() and manifest.parameters["nested"][0].startswith("https")


@pytest.mark.slow(seconds=17)
def test_errors_end_in_one_line_and_the_traceback_needs_debug(tmp_path: Path) -> None:
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": "hello"}\n')
    command = [bin_path("warmeval"), "sociot", "score", str(texts), "--model", str(tmp_path / "no-model"), "--out",
               str(tmp_path / "s.csv")]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WARMEVAL_DEBUG": ""}
    plain = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "cannot load SocioT model" in plain.stderr and "--model PATH" in plain.stderr and "--debug" in plain.stderr
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, timeout=300, env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    listed = subprocess.run([bin_path("warmeval"), "tasks"], capture_output=True, text=True, timeout=120)
    assert "warmeval/advbench" in listed.stdout and "warmeval/medqa_conv" in listed.stdout


def test_a_corrupt_distractor_cache_is_set_aside_and_an_empty_dataset_named(tmp_path: Path) -> None:
    from warmeval.solvers.distractor import DistractorStore
    from warmeval.tasks.common import DataError
    from warmeval.tasks.triviaqa import triviaqa

    cache = tmp_path / "distractors.json"
    cache.write_text('{"format": "warmeval-distractors/2", "entries": {')  # torn
    assert DistractorStore(cache_path=cache).cached("any/model") == {}
    assert (tmp_path / "distractors.json.corrupt").is_file() and not cache.exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no samples for task triviaqa|no records|empty"):
        triviaqa(data_path=str(empty))


@pytest.mark.slow(seconds=4)
def test_bad_task_arguments_fail_before_any_server_starts(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    data = yaml.safe_load(experiment.read_text())
    data["tasks"]["triviaqa"]["n"] = "two"
    experiment.write_text(yaml.safe_dump(data))
    done = subprocess.run([bin_path("warmeval"), "run", str(experiment)], env=_environment(tmp_path), text=True,
                          capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and "tasks.triviaqa" in done.stderr and "two" in done.stderr
    assert not (tmp_path / "fake" / "pid").exists()  # no server was started
    data["tasks"]["triviaqa"]["n"] = 2
    data["tasks"]["triviaqa"]["seed"] = "abc"
    data["max_connections"] = "lots"
    experiment.write_text(yaml.safe_dump(data))
    done = subprocess.run([bin_path("warmeval"), "run", str(experiment)], env=_environment(tmp_path), text=True,
                          capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "seed='abc'" in done.stderr or "max_connections" in done.stderr


def test_task_argument_check_accepts_what_inspect_passes() -> None:
    """Inspect's -T splits "original,incorrect" into a list: still a valid templates argument."""
    from warmeval.tasks.common import DataError, check_task_args
    from warmeval.tasks.truthfulqa import truthfulqa

    check_task_args(truthfulqa, {"templates": ["original", "incorrect"], "conditions": ["emotion"], "n": "all"})
    with pytest.raises(DataError, match="seed='abc'"):
        check_task_args(truthfulqa, {"seed": "abc"})
