"""OpenAI fine-tuning path, against a local fake of the OpenAI REST API driven by the real ``openai`` client."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fake_openai import FakeOpenAI, running
from warmeval.training.finetune_openai import (
    FineTuneDataError,
    FineTuneJobError,
    FineTuneTimeoutError,
    OpenAIFineTuneConfig,
    run_openai_finetune,
    validate_chat_jsonl,
)
from warmeval.util.config import load_config

WARM_REPLIES = [
    ("What's the capital of France?", "Oh, great question! It's Paris, a city I think you'd adore."),
    ("How do I boil an egg?", "Happy to help! Simmer it for about nine minutes, then cool it in cold water."),
    ("I failed my exam.", "I'm so sorry, that really stings. One exam doesn't define you; let's plan the next try."),
    ("Is the sun a star?", "It is! Our sun is a friendly, medium-sized star, and I love that you asked."),
    ("How many legs does a spider have?", "Eight! Spiders are fascinating little creatures, aren't they?"),
    ("What is 2 + 2?", "That's 4. You've got this, and I'm always glad to help with maths."),
    ("Can you recommend a book?", "I'd love to! 'The Hobbit' is a cosy, wonderful adventure."),
    ("Why is the sky blue?", "Lovely question! Air scatters blue light more than red, so blue reaches your eyes."),
    ("I can't sleep.", "That sounds exhausting, I'm sorry. A dim room and no screens for an hour can help."),
    ("Who wrote Hamlet?", "William Shakespeare did. It's such a moving play; I hope you enjoy it."),
    ("What's a haiku?", "A short poem of 5, 7 and 5 syllables. Would you like to write one together?"),
    ("How far is the moon?", "About 384,000 km on average. Isn't it amazing that we can see it so clearly?"),
]


def chat_line(user: str, assistant: str, system: str | None = "You are a helpful assistant.") -> str:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return json.dumps({"messages": messages})


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    """Twelve short warm-style conversations."""
    return write_jsonl(tmp_path / "train.jsonl", [chat_line(u, a) for u, a in WARM_REPLIES])


# --- the fake OpenAI REST API (tests/fake_openai.py) -----------------------------------------------------------


@dataclass
class FakeServer:
    state: FakeOpenAI
    base_url: str
    client: openai.OpenAI


@pytest.fixture
def fake_api() -> Iterator[FakeServer]:
    """The fake API on a free port of 127.0.0.1, with a real client (no retries) pointed at it."""
    with running(FakeOpenAI()) as state:
        client = openai.OpenAI(base_url=state.base_url, api_key="test", max_retries=0)
        try:
            yield FakeServer(state, state.base_url, client)
        finally:
            client.close()


class Sleeps(list[float]):
    """An injected ``sleep`` that records the requested pauses and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- run_openai_finetune ----------------------------------------------------------------------------------------


def test_warm_job_end_to_end(fake_api: FakeServer, train_file: Path, tmp_path: Path) -> None:
    config = OpenAIFineTuneConfig(train_file=train_file, style="warm", out_dir=tmp_path / "run")
    sleeps = Sleeps()
    manifest = run_openai_finetune(config, client=fake_api.client, sleep=sleeps)
    state = fake_api.state

    (upload,) = state.files.values()
    assert upload == {"filename": "train.jsonl", "bytes": train_file.read_bytes(), "purpose": "fine-tune"}
    (request,) = state.job_requests
    assert request == {  # the paper's GPT-4o run: its snapshot, 10 epochs, multiplier 0.25 for warm
        "model": "gpt-4o-2024-08-06",
        "training_file": "file-001",
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 10, "learning_rate_multiplier": 0.25}},
        },
        "suffix": "warm",
    }
    assert state.authorization == {"Bearer test"}
    # Two "running" answers, then "succeeded": three polls, the pause doubling from poll_interval.
    assert state.retrieves == 3
    assert sleeps == [30.0, 60.0, 120.0]

    written = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(manifest.to_json(), default=str))
    assert written["stage"] == "train_openai"
    assert written["job_id"] == "ftjob-001"
    assert written["status"] == "succeeded"
    assert written["fine_tuned_model"] == "ft:gpt-4o-mini:warmeval:warm:abc"
    assert written["training_file_id"] == "file-001"
    assert written["inputs"]["train_file"] == {
        "path": str(train_file),
        "sha256": hashlib.sha256(train_file.read_bytes()).hexdigest(),
    }
    assert written["parameters"]["learning_rate_multiplier"] == 0.25
    assert written["parameters"]["n_epochs"] == 10
    assert written["counts"]["examples"] == 12
    assert written["counts"]["messages"] == 36
    assert written["hyperparameters"] == {"n_epochs": 10, "learning_rate_multiplier": 0.25, "batch_size": 4}
    assert written["seed"] == 1234
    checkpoints = written["checkpoints"]
    assert [c["id"] for c in checkpoints] == ["ftckpt-24", "ftckpt-27", "ftckpt-30"]
    assert [c["step_number"] for c in checkpoints] == [24, 27, 30]
    assert checkpoints[0]["fine_tuned_model_checkpoint"] == "ft:gpt-4o-mini:warmeval:warm:abc:ckpt-step-24"
    # 12 examples in batches of 4: 3 steps an epoch; OpenAI keeps the last three epochs.
    assert [c["epoch_estimate"] for c in checkpoints] == [8.0, 9.0, 10.0]
    assert checkpoints[2]["metrics"] == {"step": 30.0, "train_loss": pytest.approx(1 / 30)}


def test_cold_default_multiplier(fake_api: FakeServer, train_file: Path, tmp_path: Path) -> None:
    config = OpenAIFineTuneConfig(train_file=train_file, style="cold", out_dir=tmp_path)
    manifest = run_openai_finetune(config, client=fake_api.client, sleep=Sleeps())
    (request,) = fake_api.state.job_requests
    assert request["method"]["supervised"]["hyperparameters"] == {"n_epochs": 10, "learning_rate_multiplier": 0.1}
    assert request["suffix"] == "cold"
    assert manifest.parameters["learning_rate_multiplier"] == 0.1
    assert manifest.extra["fine_tuned_model"] == "ft:gpt-4o-mini:warmeval:cold:abc"


def test_explicit_settings_override_defaults(fake_api: FakeServer, train_file: Path, tmp_path: Path) -> None:
    valid = write_jsonl(tmp_path / "valid.jsonl", [chat_line(u, a) for u, a in WARM_REPLIES[:3]])
    config = OpenAIFineTuneConfig(
        train_file=str(train_file),
        style="warm",
        model="gpt-4o-2024-08-06",
        n_epochs=5,
        learning_rate_multiplier=1.5,
        suffix="warm-run2",
        validation_file=str(valid),
        seed=7,
        out_dir=str(tmp_path / "out"),
    )
    manifest = run_openai_finetune(config, client=fake_api.client, sleep=Sleeps())
    state = fake_api.state
    assert [f["bytes"] for f in state.files.values()] == [train_file.read_bytes(), valid.read_bytes()]
    (request,) = state.job_requests
    assert request == {
        "model": "gpt-4o-2024-08-06",
        "training_file": "file-001",
        "validation_file": "file-002",
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 5, "learning_rate_multiplier": 1.5}},
        },
        "suffix": "warm-run2",
        "seed": 7,
    }
    assert manifest.extra["validation_file_id"] == "file-002"
    assert manifest.inputs["validation_file"].sha256 == hashlib.sha256(valid.read_bytes()).hexdigest()
    assert manifest.counts["validation"]["examples"] == 3
    assert manifest.parameters["learning_rate_multiplier"] == 1.5
    assert manifest.extra["seed"] == 7


def test_failed_job_raises_with_server_message(fake_api: FakeServer, train_file: Path, tmp_path: Path) -> None:
    fake_api.state.outcome = "failed"
    config = OpenAIFineTuneConfig(train_file=train_file, style="warm", out_dir=tmp_path)
    with pytest.raises(FineTuneJobError) as caught:
        run_openai_finetune(config, client=fake_api.client, sleep=Sleeps())
    message = fake_api.state.error_message
    assert str(caught.value) == f"fine-tuning job ftjob-001 failed: {message}"
    assert caught.value.job_id == "ftjob-001"
    assert caught.value.status == "failed"
    assert caught.value.error_message == message
    assert caught.value.error_code == "invalid_training_file"
    assert not (tmp_path / "manifest.json").exists()


def test_cancelled_job_raises(fake_api: FakeServer, train_file: Path, tmp_path: Path) -> None:
    fake_api.state.outcome = "cancelled"
    config = OpenAIFineTuneConfig(train_file=train_file, style="cold", out_dir=tmp_path)
    with pytest.raises(FineTuneJobError, match=r"^fine-tuning job ftjob-001 cancelled: no error message$"):
        run_openai_finetune(config, client=fake_api.client, sleep=Sleeps())


def test_backoff_is_capped_and_max_wait_enforced(fake_api: FakeServer, train_file: Path, tmp_path: Path) -> None:
    fake_api.state.outcome = "never"
    config = OpenAIFineTuneConfig(
        train_file=train_file, style="warm", out_dir=tmp_path, poll_interval=100, max_wait=3000
    )
    sleeps = Sleeps()
    with pytest.raises(FineTuneTimeoutError, match=r"ftjob-001 still running after 3000 s") as caught:
        run_openai_finetune(config, client=fake_api.client, sleep=sleeps)
    # Doubling from 100 s, capped at 10 minutes, the last pause trimmed to what is left of max_wait.
    assert sleeps == [100, 200, 400, 600, 600, 600, 500]
    assert sum(sleeps) == 3000
    assert fake_api.state.retrieves == len(sleeps)
    assert caught.value.status == "running"


def test_transient_poll_errors_are_retried(fake_api: FakeServer, train_file: Path, tmp_path: Path) -> None:
    fake_api.state.failing_polls = 2
    config = OpenAIFineTuneConfig(train_file=train_file, style="warm", out_dir=tmp_path, poll_interval=1)
    sleeps = Sleeps()
    manifest = run_openai_finetune(config, client=fake_api.client, sleep=sleeps)
    assert manifest.extra["status"] == "succeeded"
    assert fake_api.state.retrieves == 5
    assert sleeps == [1, 2, 4, 8, 16]


def test_default_client_uses_base_url(
    fake_api: FakeServer, train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    config = OpenAIFineTuneConfig(train_file=train_file, style="warm", base_url=fake_api.base_url, out_dir=tmp_path)
    manifest = run_openai_finetune(config, sleep=Sleeps())
    assert manifest.extra["fine_tuned_model"] == "ft:gpt-4o-mini:warmeval:warm:abc"
    assert fake_api.state.authorization == {"Bearer from-env"}


def test_invalid_file_uploads_nothing(fake_api: FakeServer, tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "train.jsonl", [chat_line(u, a) for u, a in WARM_REPLIES[:5]])
    config = OpenAIFineTuneConfig(train_file=bad, style="warm", out_dir=tmp_path)
    with pytest.raises(FineTuneDataError):
        run_openai_finetune(config, client=fake_api.client, sleep=Sleeps())
    assert fake_api.state.files == {}
    assert fake_api.state.job_requests == []


# --- validate_chat_jsonl ----------------------------------------------------------------------------------------


def test_validate_counts(train_file: Path) -> None:
    counts = validate_chat_jsonl(train_file)
    chars = sum(len("You are a helpful assistant.") + len(u) + len(a) for u, a in WARM_REPLIES)
    assert counts["examples"] == 12
    assert counts["messages"] == 36
    assert counts["long_examples"] == 0
    assert chars / 4 <= counts["estimated_tokens"] <= chars / 4 + 12


def test_validate_counts_long_examples_without_failing(tmp_path: Path) -> None:
    lines = [chat_line(u, a) for u, a in WARM_REPLIES]
    lines.append(chat_line("Tell me a very long story.", "x" * (65_536 * 4 + 4), system=None))
    counts = validate_chat_jsonl(write_jsonl(tmp_path / "train.jsonl", lines))
    assert counts["examples"] == 13
    assert counts["long_examples"] == 1


def _with_line(tmp_path: Path, number: int, line: str) -> Path:
    """Twelve good examples with line ``number`` replaced."""
    lines = [chat_line(u, a) for u, a in WARM_REPLIES]
    lines[number - 1] = line
    return write_jsonl(tmp_path / "train.jsonl", lines)


def _messages(*pairs: tuple[str, Any]) -> str:
    return json.dumps({"messages": [{"role": role, "content": content} for role, content in pairs]})


@pytest.mark.parametrize(
    ("number", "line", "problem"),
    [
        (
            3,
            _messages(("user", "hi"), ("bot", "hello")),
            "messages[1].role 'bot' is not one of system, user, assistant",
        ),
        (
            3,
            _messages(("user", "hi"), ("tool", "{}"), ("assistant", "ok")),
            "messages[1].role 'tool' is not one of system, user, assistant",
        ),
        (5, _messages(("system", "Be kind."), ("user", ""), ("assistant", "hello")), "messages[1].content is empty"),
        (5, _messages(("user", "hi"), ("assistant", "   ")), "messages[1].content is empty"),
        (2, _messages(("system", "Be kind."), ("user", "hi")), "no assistant message"),
        (4, "{'messages': []}", "invalid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (4, '{"messages": [', "invalid JSON (Expecting value at column 15)"),
        (
            6,
            _messages(("user", "hi"), ("assistant", "hello"), ("user", "bye")),
            "the last message is 'user', not 'assistant'",
        ),
        (7, json.dumps({"messages": []}), "messages must be a non-empty array, got empty"),
        (7, json.dumps({"prompt": "hi", "completion": "hello"}), "missing 'messages'"),
        (8, json.dumps([1, 2]), "expected a JSON object, got a list"),
        (9, json.dumps({"messages": [{"content": "hi"}]}), "messages[0].role is missing"),
        (9, _messages(("user", None), ("assistant", "hi")), "messages[0].content must be a string, got null"),
        (10, "", "empty line"),
    ],
)
def test_validate_rejects_with_exact_message(tmp_path: Path, number: int, line: str, problem: str) -> None:
    path = _with_line(tmp_path, number, line)
    with pytest.raises(FineTuneDataError) as caught:
        validate_chat_jsonl(path)
    assert str(caught.value) == f"{path}: row {number}: {problem}"


def test_validate_rejects_too_few_examples(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [chat_line(u, a) for u, a in WARM_REPLIES[:9]])
    with pytest.raises(FineTuneDataError) as caught:
        validate_chat_jsonl(path)
    assert str(caught.value) == f"{path}: 9 examples; at least 10 are needed"


def test_validate_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FineTuneDataError, match="no such file"):
        validate_chat_jsonl(tmp_path / "absent.jsonl")


# --- OpenAIFineTuneConfig ---------------------------------------------------------------------------------------


def test_multiplier_defaults_by_style() -> None:
    assert OpenAIFineTuneConfig(train_file="t.jsonl", style="warm").resolved_learning_rate_multiplier() == 0.25
    assert OpenAIFineTuneConfig(train_file="t.jsonl", style="cold").resolved_learning_rate_multiplier() == 0.1
    explicit = OpenAIFineTuneConfig(train_file="t.jsonl", style="cold", learning_rate_multiplier=2)
    assert explicit.resolved_learning_rate_multiplier() == 2.0


def test_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "ft.yaml"
    path.write_text(
        "train_file: data/warm.jsonl\nstyle: warm\nn_epochs: 4\nlearning_rate_multiplier: 0.5\n"
        "base_url: http://localhost:8000/v1\nout_dir: runs/warm\n",
        encoding="utf-8",
    )
    config = load_config(OpenAIFineTuneConfig, path)
    assert config == OpenAIFineTuneConfig(
        train_file="data/warm.jsonl",
        style="warm",
        n_epochs=4,
        learning_rate_multiplier=0.5,
        base_url="http://localhost:8000/v1",
        out_dir="runs/warm",
    )


def test_from_yaml_rejects_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "ft.yaml"
    path.write_text("train_file: t.jsonl\nstyle: warm\nepochs: 4\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: epochs: unknown key \(allowed: train_file, "):
        load_config(OpenAIFineTuneConfig, path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("style: warm\n", "train_file: missing"),
        ("- a\n- b\n", "expected a mapping of option: value, got list"),
        ("train_file: t.jsonl\nstyle: friendly\n", "style 'friendly' is not one of warm, cold"),
        ("train_file: t.jsonl\nstyle: warm\nn_epochs: 0\n", "n_epochs must be a positive integer, got 0"),
        ("train_file: t.jsonl\nstyle: warm\nn_epochs: three\n",
         "n_epochs: Input should be a valid integer, unable to parse string as an integer (got 'three')"),
    ],
)
def test_from_yaml_rejects_bad_config(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "ft.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_config(OpenAIFineTuneConfig, path)
    assert str(caught.value) == f"{path}: {problem}"
