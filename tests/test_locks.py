"""One warmeval command per output at a time: a second `run`, `train lora`, `data rewrite` or `report` on an output
that another process holds stops at once, naming the holder; the lock goes with its holder, however it ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from warmeval.util.lock import OutputBusy, lock_path, output_lock

FIXTURES = REPO / "warmeval" / "fixtures"


@contextmanager
def held_elsewhere(target: Path, *, beside: bool = False) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``target``'s lock until the block ends (then it is SIGKILLed, as a crash would be)."""
    code = ("import sys, time\nfrom warmeval.util.lock import output_lock\n"
            f"with output_lock({str(target)!r}, 'the first command', beside={beside}):\n"
            "    print('held', flush=True)\n    time.sleep(600)\n")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_holder_stops_at_once_and_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with held_elsewhere(folder) as holder:
        started = time.monotonic()
        with pytest.raises(OutputBusy, match=rf"{folder} is in use by another warmeval command \(pid {holder.pid} on "
                                             r".*`the first command`"):  # fmt: skip
            with output_lock(folder):
                pass
        assert time.monotonic() - started < 2
    with output_lock(folder) as path:  # the kernel freed it with the killed holder
        assert path == folder / ".warmeval.lock"
        assert json.loads(path.read_text())["pid"] > 0
    assert lock_path(tmp_path / "train.jsonl") == tmp_path / ".train.jsonl.lock"
    assert lock_path(folder, beside=True) == tmp_path / ".out.lock"


def _experiment(folder: Path) -> Path:
    """A small experiment against a base_url where nothing listens (port 9), output in ``folder/run``."""
    experiment = folder / "experiment.yaml"
    experiment.write_text(yaml.safe_dump({
        "base_model": "some/model", "base_url": "http://127.0.0.1:9/v1", "variants": {"original": {}},
        "tasks": {"disinfo": {"data_path": str(FIXTURES / "disinformation.csv"), "design": "quick", "n": 1,
                              "statements": "ours"}},
        "roles": {"grader": "warmeval-scripted/match"}, "output_dir": str(folder / "run"),
    }))  # fmt: skip
    return experiment


def test_two_runs_on_one_output_dir(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    with held_elsewhere(tmp_path / "run") as holder:
        second = run_cli("run", experiment)
    assert second.returncode == 2 and f"pid {holder.pid}" in second.stderr and "in use" in second.stderr
    assert not (tmp_path / "run" / "logs").exists()  # it stopped before evaluating anything


def test_a_closed_base_url_is_an_error_before_server_ready(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    result = run_cli("run", experiment)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "base_url http://127.0.0.1:9/v1: no OpenAI-compatible server answers" in result.stderr
    assert "server ready" not in result.stdout


def test_train_rewrite_and_report_refuse_a_held_output(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"base_model": "/no/such/model", "train_file": str(tmp_path / "t.jsonl"),
                                      "output_dir": str(tmp_path / "adapters")}))  # fmt: skip
    with held_elsewhere(tmp_path / "adapters"):
        trained = run_cli("train", "lora", recipe)
    assert trained.returncode == 2 and "adapters is in use by another warmeval command" in trained.stderr
    chats = tmp_path / "train.jsonl"
    chats.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                              {"role": "assistant", "content": "Hello."}]}) + "\n")  # fmt: skip
    with held_elsewhere(tmp_path / "warm.jsonl"):
        rewritten = run_cli("data", "rewrite", "--style", "warm", "--input", chats, "--output", tmp_path / "warm.jsonl",
                            "--base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert rewritten.returncode == 2 and "warm.jsonl is in use by another warmeval command" in rewritten.stderr
    with held_elsewhere(tmp_path / "report", beside=True):
        reported = run_cli("report", chats, "--out", tmp_path / "report")
    assert reported.returncode == 2 and "report is in use by another warmeval command" in reported.stderr
