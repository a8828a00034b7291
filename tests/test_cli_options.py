"""Commands that mirror a config dataclass take their options from it: names, types, help and defaults."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
import typing
from pathlib import Path

import pytest
import typer
import typer.core
import yaml

from tests.conftest import REPO, bin_path, run_cli
from warmeval.cli import app
from warmeval.cli.options import cli_type
from warmeval.serve import ServeConfig
from warmeval.training.data import BuildConfig
from warmeval.training.generate import ValidationGenerationConfig
from warmeval.training.rewrite import RewriteConfig
from warmeval.util.config import field_docs

COMMANDS = {
    ("serve",): (ServeConfig, {"adapters": "--adapter", "extra_args": "--extra-arg"}),
    ("data", "build"): (BuildConfig, {}),
    ("data", "rewrite"): (RewriteConfig, {}),
    ("train", "generate"): (ValidationGenerationConfig, {"prompts_file": "--prompts", "out_dir": "--out",
                                                         "adapters": "--adapter"}),
}  # fmt: skip


def _command(path: tuple[str, ...]) -> typer.core.TyperCommand:
    command = typer.main.get_command(app)
    for name in path:
        assert isinstance(command, typer.core.TyperGroup)
        command = command.commands[name]
    assert isinstance(command, typer.core.TyperCommand)
    return command


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_config_field_is_a_documented_option_with_the_dataclass_default(path: tuple[str, ...]) -> None:
    cls, flags = COMMANDS[path]
    params = {p.name: p for p in _command(path).params if isinstance(p, typer.core.TyperOption)}
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    assert "config" in params
    for field in dataclasses.fields(cls):
        assert docs.get(field.name), f"{cls.__name__}.{field.name} has no text under Attributes:"
        if cli_type(hints[field.name]) is None:  # tuples and nested maps: --config only
            assert field.name not in params
            continue
        option = params[field.name]
        assert flags.get(field.name, "--" + field.name.replace("_", "-")) in option.opts
        assert option.help and option.help.startswith(docs[field.name].replace("``", "`"))
        assert option.default is None and not option.required  # not given: the file's value, else the dataclass's
        value = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if value not in (None, dataclasses.MISSING, [], {}) and "Required" not in option.help:
            assert option.show_default == str(value), field.name


def test_options_override_the_config_file_and_bad_values_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump({"n_train": 3, "n_validation": 2, "seed": 7, "nsfw_filter": True,
                                      "out_dir": str(tmp_path / "from-file")}))  # fmt: skip
    done = run_cli("data", "build", "--config", config, "--input", REPO / "warmeval" / "fixtures" / "sharegpt.jsonl",
                   "--n-train", "4", "--no-nsfw-filter", "--out-dir", tmp_path / "built")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    parameters = json.loads((tmp_path / "built" / "manifest.json").read_text())["parameters"]
    assert parameters["n_train"] == 4 and parameters["nsfw_filter"] is False  # the options won
    assert parameters["seed"] == 7 and parameters["n_validation"] == 2  # the file's values stay
    assert not (tmp_path / "from-file").exists()
    config.write_text(yaml.safe_dump({"n_train": "many"}))
    refused = run_cli("data", "build", "--config", config)
    assert refused.returncode == 2 and f"{config}: n_train: " in refused.stderr and "'many'" in refused.stderr
    refused = run_cli("train", "generate", "--limit", "3")
    assert refused.returncode == 2 and "missing option --base-model and --prompts and --out" in refused.stderr
    # `data rewrite` insists on a style, from the option or the file, never the dataclass's default
    rewrite_config = tmp_path / "rewrite.yaml"
    rewrite_config.write_text("model: some-model\n")
    chats = tmp_path / "none.jsonl"
    refused = run_cli("data", "rewrite", "--config", rewrite_config, "--input", chats, "--output", tmp_path / "o.jsonl")
    assert refused.returncode == 2 and f"missing option --style or in {rewrite_config}" in refused.stderr


def test_serve_passes_env_and_extra_args_to_vllm(tmp_path: Path) -> None:
    """Through the `vllm serve` stand-in, which records its arguments and environment."""
    from tests.conftest import free_port
    from tests.test_reliability import _environment

    env = _environment(tmp_path)
    adapter = tmp_path / "warm"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "fake-base", "r": 8}))
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"base_model": "fake-base", "env": {"VLLM_FROM_FILE": "1"}, "port": free_port()}))
    server = subprocess.Popen([bin_path("warmeval"), "serve", "--config", str(config), "--served-name", "base",
                               "--extra-arg", "--enforce-eager", "--env", "VLLM_FROM_OPTION=yes",
                               "--adapter", f"warm={adapter}"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    launch = tmp_path / "fake" / "launch.json"
    try:
        deadline = time.monotonic() + 60
        while not launch.exists():
            assert server.poll() is None, server.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "vllm serve was not started"
            time.sleep(0.2)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    record = json.loads(launch.read_text())
    assert record["env"]["VLLM_FROM_OPTION"] == "yes"
    assert "VLLM_FROM_FILE" not in record["env"]  # a map given as options replaces the file's, as any option does
    argv = record["argv"]
    assert "--enforce-eager" in argv and argv[argv.index("--served-model-name") + 1] == "base"
    assert f"warm={adapter}" in argv[argv.index("--lora-modules") :]
    assert "stopping the server" in out + err
