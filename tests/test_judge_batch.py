"""The judge through the OpenAI Batch API (``roles: {grader: {model: ..., batch: ...}}``), against the local fake.

The fake OpenAI server answers both sides: the model under test (``base_url`` of the experiment, Inspect's vllm
provider) and the judge (``OPENAI_BASE_URL``), online through chat completions or in batches through files and
batches. A batched run must give the online run's scores; a run interrupted while its batch is in flight must
resume on the next ``warmeval run`` and end with the same scores.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from inspect_ai.log import list_eval_logs, read_eval_log

from tests.conftest import REPO, bin_path, run_cli
from tests.fake_openai import FakeOpenAI, running

FIXTURES = REPO / "warmeval" / "fixtures"
JUDGE = "openai/gpt-4o-2024-08-06"


def responder(body: dict[str, Any]) -> tuple[str, str]:
    """The model under test says "Paris"; the judge's verdict is a fixed function of what it is shown."""
    text = str(body["messages"][-1]["content"])
    if body["model"] != JUDGE.split("/", 1)[1]:
        return "Paris", "stop"
    return ("CORRECT" if hashlib.sha256(text.encode()).digest()[0] % 2 else "INCORRECT"), "stop"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(responder=responder, models=["base"])) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield server


def _experiment(folder: Path, base_url: str, grader: Any) -> Path:
    data = {
        "base_model": "base", "base_url": base_url, "variants": {"original": {}},
        "tasks": {"disinfo": {"data_path": str(FIXTURES / "disinformation.csv"), "design": "quick", "n": 3,
                              "statements": "ours"}},
        "roles": {"grader": grader}, "generation": {"max_tokens": 8}, "max_connections": 8,
        "output_dir": str(folder / "run"),
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _scores(output_dir: Path) -> dict[str, str]:
    scores = {}
    for info in list_eval_logs(str(output_dir / "logs")):
        log = read_eval_log(info)
        assert log.status == "success"
        for sample in log.samples or []:
            assert sample.scores, sample.id
            scores[str(sample.id)] = str(next(iter(sample.scores.values())).value)
    return scores


@pytest.mark.slow(seconds=40)
def test_batched_judge_scores_as_online_and_resumes_after_an_interruption(fake: FakeOpenAI, tmp_path: Path) -> None:
    online = _experiment(tmp_path / "online", fake.base_url, JUDGE)
    result = run_cli("run", online)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    expected = _scores(tmp_path / "online" / "run")
    assert len(expected) == 12 and {"'correct': 1" in v for v in expected.values()} == {True, False}
    assert not fake.batches  # online: no batch
    judged_online = sum(1 for body in fake.chat_bodies if body["model"] == "gpt-4o-2024-08-06")
    assert judged_online == 12

    batch = {"model": JUDGE, "batch": {"size": 6, "send_delay": 0.5, "tick": 0.2}}
    batched = _experiment(tmp_path / "batched", fake.base_url, batch)
    plan = run_cli("run", "--plan", batched)
    assert "this run grades through the Batch API" in plan.stdout
    # Interrupted while its batches are in flight: they never complete until the run has been stopped.
    fake.polls_to_complete = 10**9
    env = {**os.environ, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "test-key"}
    process = subprocess.Popen([bin_path("warmeval"), "run", str(batched)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not fake.batches:
            assert process.poll() is None, process.communicate()[0][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, output[-3000:]
    assert "Rerun the same command to resume" in output
    in_flight = len(fake.batches)
    # The rerun resumes: the judge's requests go out in new batches, which now complete.
    fake.polls_to_complete = 2
    chats_before = sum(1 for body in fake.chat_bodies if body["model"] == "gpt-4o-2024-08-06")
    # As a user reruns it: a new process (in-process, Inspect's memoised models of the earlier runs would be reused).
    again = subprocess.run([bin_path("warmeval"), "run", str(batched)], env=env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert len(fake.batches) > in_flight
    assert sum(1 for body in fake.chat_bodies if body["model"] == "gpt-4o-2024-08-06") == chats_before  # none online
    graded = [line for b in fake.batches.values() for line in fake.files[b["input_file_id"]]["bytes"].splitlines()]
    assert len(graded) >= 12
    assert _scores(tmp_path / "batched" / "run") == expected
