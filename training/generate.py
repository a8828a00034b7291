"""Validation generations: responses of the base model and of every checkpoint to the validation prompts.

Writes one JSONL per model (``base.jsonl``, ``epoch-0.5.jsonl``, ...) with ``id``, ``prompt`` and ``text``, the input
of ``warmeval sociot trajectory``, through transformers in this process (the base model plus each PEFT adapter
folder): no server needed. Against a server, the same generations are the Inspect task ``sociot_generations``
(`warmeval.tasks.sociot_generations`, with Inspect's retries, logs and resume), which ``warmeval run`` uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmeval.util.jsonl import read_validation_prompts
from warmeval.util.manifest import Manifest, write_manifest


@dataclass
class ValidationGenerationConfig:
    """Options of ``warmeval train generate``.

    Attributes:
        base_model: Base model (HF id or folder).
        prompts_file: Validation prompts JSONL (id, prompt).
        out_dir: Output folder: one JSONL per model.
        adapters: PEFT adapter folders (checkpoints), each answered with.
        max_new_tokens: Tokens per response.
        temperature: Sampling temperature (0: greedy).
        limit: Use only the first N prompts (None: all).
        batch_size: Prompts per generation batch.
        include_base: Also answer with the base model alone.
    """

    base_model: str
    prompts_file: str
    out_dir: str
    adapters: list[str] = field(default_factory=list)
    max_new_tokens: int = 300
    temperature: float = 0.0
    limit: int | None = None
    batch_size: int = 8
    include_base: bool = True


def _label(adapter: str) -> str:
    return Path(adapter).name if Path(adapter).exists() else adapter


def _generate_transformers(
    config: ValidationGenerationConfig, prompts: list[dict[str, str]], models: list[tuple[str, str]]
) -> dict[str, list[str]]:
    import torch
    from peft import PeftModel
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(config.base_model)
    outputs: dict[str, list[str]] = {}
    for label, source in models:
        model: Any = base if label == "base" else PeftModel.from_pretrained(base, source)
        model.eval()
        texts: list[str] = []
        for start in tqdm(range(0, len(prompts), config.batch_size), desc=f"generate {label}", unit="batch"):
            batch = prompts[start : start + config.batch_size]
            rendered = [tokenizer.apply_chat_template([{"role": "user", "content": p["prompt"]}], tokenize=False,
                                                      add_generation_prompt=True) for p in batch]  # fmt: skip
            inputs = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs = {"do_sample": config.temperature > 0, "max_new_tokens": config.max_new_tokens,
                      "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
            if config.temperature > 0:
                kwargs["temperature"] = config.temperature
            with torch.no_grad():
                generated = model.generate(**inputs, **kwargs)
            new = generated[:, inputs["input_ids"].shape[1] :]
            texts += tokenizer.batch_decode(new, skip_special_tokens=True)
        outputs[label] = texts
        if label != "base":
            base = model.unload()  # back to the plain base model for the next adapter
    return outputs


def generate_validation(config: ValidationGenerationConfig) -> Manifest:
    """Write one JSONL of responses per model; returns the manifest."""
    prompts = read_validation_prompts(config.prompts_file, config.limit)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = [(_label(a), a) for a in config.adapters]
    if config.include_base:
        models.insert(0, ("base", config.base_model))
    labels = [label for label, _ in models]
    if len(set(labels)) < len(labels):
        raise ValueError(f"two models would write the same file: labels {labels} (name the adapters apart)")
    outputs = _generate_transformers(config, prompts, models)
    files = {label: out / f"{label}.jsonl" for label, _ in models}
    for label, texts in outputs.items():
        with open(files[label], "w", encoding="utf-8") as handle:
            for row, text in zip(prompts, texts, strict=True):
                handle.write(
                    json.dumps({"id": row["id"], "prompt": row["prompt"], "text": text}, ensure_ascii=False) + "\n"
                )
    counts = {"prompts": len(prompts), "models": len(models), "generated": len(outputs)}
    return write_manifest(out / "manifest.json", stage="train_generate", inputs={"prompts": config.prompts_file},
                          parameters=config, counts=counts, outputs=files)  # fmt: skip
