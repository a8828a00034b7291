"""LoRA training in two real processes (torchrun, gloo on CPU) against one process with the same effective batch.

What a user of ``accelerate launch`` / ``torchrun`` relies on: the same optimiser steps per epoch as one process, the
paper's epoch-fraction adapters written once (by the main process), adapters that load and match the one-process
run, and a resume after the whole process tree is killed. Dropout is 0 here: its draws come from each process's own
RNG stream, so with dropout two processes and one cannot draw the same masks (the data order and the averaged
gradients are the engine's, and those must agree).

Sharded training (FSDP) is not run: accelerate runs FSDP only on accelerators (``accelerate launch --cpu`` falls back
to one process and accelerate's state keeps FSDP off on CPU), so the shipped configs are checked by accelerate's own
loader and the recipes by the batch arithmetic instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import bin_path
from warmeval.serve import free_port
from warmeval.training.lora import LoraTrainConfig, resolve_batch
from warmeval.util.config import load_config

REPO = Path(__file__).resolve().parents[1]
CHATS = [
    [{"role": "user", "content": f"Question {i}: what is {i} times three?"},
     {"role": "assistant", "content": f"It is {3 * i}. Glad to help!" + " Truly." * (i % 5)}]
    for i in range(48)
]  # fmt: skip
# 48 conversations, micro-batch 1, effective batch 4: 12 optimiser steps per epoch on 1 process (accumulation 4) and
# on 2 (accumulation 2 each); 36 steps in all, so a kill after the epoch-1 save leaves work to resume.
RECIPE = {"micro_batch_size": 1, "effective_batch_size": 4, "epochs": 3, "save_epochs": [0.5, 1, 2, 3],
          "dropout": 0.0, "learning_rate": 1e-3, "max_seq_length": 256, "logging_steps": 1000}  # fmt: skip
SAVED = re.compile(r"saved (epoch-[\d.]+) \(step (\d+), process (\d+)\)")


@pytest.fixture(scope="module")
def recipe_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    folder = tmp_path_factory.mktemp("distributed")
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "messages": m}) + "\n" for i, m in enumerate(CHATS)))
    for name in ("one", "two", "killed"):
        recipe = {**RECIPE, "base_model": str(tiny_model), "train_file": str(data), "output_dir": str(folder / name)}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    return folder


def _launch(recipe: Path, processes: int) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    if processes == 1:
        command = [sys.executable, "-m", "warmeval.training.lora", "--config", str(recipe)]
    else:
        command = [bin_path("torchrun"), "--nproc_per_node", str(processes), "--master_addr", "127.0.0.1",
                   "--master_port", str(free_port()), "-m", "warmeval.training.lora",
                   "--config", str(recipe)]  # fmt: skip
    # A session of its own: the kill below (and the teardown) reach torchrun and both workers.
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _train(recipe: Path, processes: int) -> tuple[dict[str, object], str]:
    process = _launch(recipe, processes)
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        _stop(process)
    assert process.returncode == 0, output[-3000:]
    manifest = json.loads((Path(yaml.safe_load(recipe.read_text())["output_dir"]) / "manifest.json").read_text())
    return manifest, output


def _adapters(folder: Path) -> dict[str, dict[str, object]]:
    from safetensors.torch import load_file

    return {p.name: load_file(p / "adapter_model.safetensors") for p in sorted(folder.glob("epoch-*"))}


def _max_difference(a: dict[str, object], b: dict[str, object]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)  # type: ignore[operator]


@pytest.fixture(scope="module")
def runs(recipe_dir: Path) -> dict[str, tuple[dict[str, object], str]]:
    return {"one": _train(recipe_dir / "one.yaml", 1), "two": _train(recipe_dir / "two.yaml", 2)}


@pytest.mark.slow(seconds=40)
def test_two_processes_keep_the_steps_and_the_effective_batch(runs: dict[str, tuple[dict[str, object], str]]) -> None:
    one, two = (runs[name][0]["counts"] for name in ("one", "two"))
    assert one["processes"] == 1 and two["processes"] == 2  # type: ignore[index]
    assert one["gradient_accumulation"] == 4 and two["gradient_accumulation"] == 2  # type: ignore[index]
    assert one["effective_batch"] == two["effective_batch"] == 4  # type: ignore[index]
    assert one["steps_per_epoch"] == two["steps_per_epoch"] == 12  # type: ignore[index]
    assert one["global_step"] == two["global_step"] == 36  # type: ignore[index]
    assert two["engine"] == "MULTI_CPU" and one["engine"] == "NO"  # type: ignore[index]
    schedule = {"6": 0.5, "12": 1.0, "24": 2.0, "36": 3.0}
    assert runs["one"][0]["save_schedule"] == runs["two"][0]["save_schedule"] == schedule  # type: ignore[index]


@pytest.mark.slow(seconds=1)
def test_epoch_adapters_are_written_once_by_the_main_process(
    recipe_dir: Path, runs: dict[str, tuple[dict[str, object], str]]
) -> None:
    saves = SAVED.findall(runs["two"][1])
    assert sorted(saves) == sorted([("epoch-0.5", "6", "0"), ("epoch-1", "12", "0"), ("epoch-2", "24", "0"),
                                    ("epoch-3", "36", "0")])  # fmt: skip
    # One summary per run, from the main process.
    assert runs["two"][1].count("adapters saved:") == 1
    written = sorted(p.name for p in (recipe_dir / "two").glob("epoch-*"))
    assert written == ["epoch-0.5", "epoch-1", "epoch-2", "epoch-3"]


@pytest.mark.slow(seconds=2)
def test_two_process_adapters_load_and_match_one_process(
    recipe_dir: Path, tiny_model: Path, runs: dict[str, tuple[dict[str, object], str]]
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    one, two = _adapters(recipe_dir / "one"), _adapters(recipe_dir / "two")
    assert one.keys() == two.keys() == {"epoch-0.5", "epoch-1", "epoch-2", "epoch-3"}
    for label in one:
        # Measured: at most 1e-7 apart (float sums in another order); a changed batch or step count is ~1e-3 apart.
        assert _max_difference(one[label], two[label]) < 1e-5, label  # type: ignore[arg-type]
        trained = float(max(t.abs().max() for k, t in two[label].items() if "lora_B" in k))  # type: ignore[attr-defined]
        assert trained > 1e-4  # the adapters did move: the comparison above is not between two untrained ones
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), recipe_dir / "two" / "epoch-3")
    assert model.active_adapter == "default"


@pytest.mark.slow(seconds=40)
def test_two_processes_resume_after_the_process_tree_is_killed(
    recipe_dir: Path, runs: dict[str, tuple[dict[str, object], str]]
) -> None:
    folder = recipe_dir / "killed"
    process = _launch(recipe_dir / "killed.yaml", 2)
    try:
        deadline = time.monotonic() + 300
        while not (folder / "epoch-1" / "warmeval_epoch.json").is_file():
            assert process.poll() is None, "the run ended before its epoch-1 save"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers at once
    finally:
        _stop(process)
    assert not (folder / "manifest.json").exists(), "killed too late: the run had finished"
    manifest, output = _train(recipe_dir / "killed.yaml", 2)
    assert manifest["resumed_from"]  # type: ignore[index]
    assert manifest["counts"]["global_step"] == 36  # type: ignore[index]
    resumed, reference = _adapters(folder), _adapters(recipe_dir / "two")
    assert resumed.keys() == reference.keys()
    for label in resumed:
        assert _max_difference(resumed[label], reference[label]) < 1e-5, label  # type: ignore[arg-type]


@pytest.mark.parametrize("config", sorted((REPO / "configs" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_accelerate_configs_load(config: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(config))
    assert loaded.num_processes >= 1 and str(loaded.mixed_precision) == "bf16"
    assert str(loaded.distributed_type).rsplit(".", 1)[-1] in {"MULTI_GPU", "FSDP"}


@pytest.mark.parametrize("recipe", sorted((REPO / "configs" / "lora").glob("*.yaml")), ids=lambda p: p.name)
def test_paper_model_recipes_keep_the_effective_batch(recipe: Path) -> None:
    """Each recipe loads, and on the process count of its ``# launch:`` line trains with an effective batch of 16."""
    config = load_config(LoraTrainConfig, recipe)
    launch = next(line for line in recipe.read_text().splitlines() if line.startswith("# launch:"))
    words = shlex.split(launch.removeprefix("# launch:"))
    processes = int(words[words.index("--num_processes") + 1]) if "--num_processes" in words else 1
    if "--config_file" in words:
        assert (REPO / words[words.index("--config_file") + 1]).is_file()
    assert words[-1] == f"configs/lora/{recipe.name}"
    accumulation, effective = resolve_batch(config, processes)
    assert effective == 16 and accumulation * config.micro_batch_size * processes == 16
