"""Validation generations: responses of the base model and of every checkpoint to the validation prompts.

Writes one JSONL per model (``base.jsonl``, ``epoch-0.5.jsonl``, ...) with ``id``, ``prompt`` and ``text``, the input
of ``warmeval sociot trajectory``. Through transformers (the base model plus each PEFT adapter folder) or through an
OpenAI-compatible server (``base_url``: one vLLM server with ``--enable-lora``, adapters named as served; requests go
``concurrency`` at a time so that vLLM batches them). With ``skip_existing`` a model whose file already holds a
response to every prompt is not asked again (``warmeval run`` resumes this way).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmeval.util.jsonl import json_objects, read_json_objects
from warmeval.util.manifest import write_manifest


@dataclass
class GenerateConfig:
    """Options of ``warmeval train generate``."""

    base_model: str
    prompts_file: str
    out_dir: str
    adapters: list[str] = field(default_factory=list)  # adapter folders (transformers) or served names (base_url)
    base_url: str | None = None
    served_base: str | None = None  # the base model's served name when base_url is used
    max_new_tokens: int = 300
    temperature: float = 0.0
    limit: int | None = None
    batch_size: int = 8
    concurrency: int = 16  # requests in flight (base_url only)
    skip_existing: bool = False
    include_base: bool = True


def read_prompts(path: str | Path, limit: int | None = None) -> list[dict[str, str]]:
    """``{"id", "prompt"}`` rows of a validation prompts JSONL."""
    rows = []
    for number, record in json_objects(Path(path).read_text(encoding="utf-8"), path):
        if not isinstance(record.get("prompt"), str) or not record["prompt"].strip():
            raise ValueError(f"{path}: row {number}: field 'prompt' is missing or empty")
        rows.append({"id": str(record.get("id", number)), "prompt": record["prompt"]})
    return rows[:limit] if limit else rows


def _label(adapter: str) -> str:
    return Path(adapter).name if Path(adapter).exists() else adapter


def _generate_transformers(
    config: GenerateConfig, prompts: list[dict[str, str]], models: list[tuple[str, str]]
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


def _generate_server(
    config: GenerateConfig, prompts: list[dict[str, str]], models: list[tuple[str, str]]
) -> dict[str, list[str]]:
    from concurrent.futures import ThreadPoolExecutor

    import openai
    from tqdm import tqdm

    client = openai.OpenAI(base_url=config.base_url, api_key="local")

    def ask(name: str, prompt: str) -> str:
        reply = client.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=config.max_new_tokens,
            temperature=config.temperature,
        )
        return reply.choices[0].message.content or ""

    outputs: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=max(1, config.concurrency)) as pool:
        for label, name in models:
            jobs = pool.map(lambda row, name=name: ask(name, row["prompt"]), prompts)
            outputs[label] = list(tqdm(jobs, total=len(prompts), desc=f"generate {label}", unit="prompt"))
    return outputs


def _complete(path: Path, prompts: list[dict[str, str]]) -> bool:
    """Whether ``path`` already holds one response per prompt, in order."""
    if not path.is_file():
        return False
    rows = [row for _, row in read_json_objects(path)]
    return [str(row.get("id")) for row in rows] == [p["id"] for p in prompts]


def generate_validation(config: GenerateConfig) -> dict[str, Any]:
    """Write one JSONL of responses per model; returns the manifest."""
    prompts = read_prompts(config.prompts_file, config.limit)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = [(_label(a), a) for a in config.adapters]
    if config.include_base:
        models.insert(0, ("base", (config.served_base or config.base_model) if config.base_url else config.base_model))
    labels = [label for label, _ in models]
    if len(set(labels)) < len(labels):
        raise ValueError(f"two models would write the same file: labels {labels} (name the adapters apart)")
    skipped = [label for label, _ in models if config.skip_existing and _complete(out / f"{label}.jsonl", prompts)]
    todo = [(label, name) for label, name in models if label not in skipped]
    if not todo:
        outputs: dict[str, list[str]] = {}
    elif config.base_url:
        outputs = _generate_server(config, prompts, todo)
    else:
        outputs = _generate_transformers(config, prompts, todo)
    files = {label: out / f"{label}.jsonl" for label, _ in models}
    for label, texts in outputs.items():
        with open(files[label], "w", encoding="utf-8") as handle:
            for row, text in zip(prompts, texts, strict=True):
                handle.write(
                    json.dumps({"id": row["id"], "prompt": row["prompt"], "text": text}, ensure_ascii=False) + "\n"
                )
    counts = {"prompts": len(prompts), "models": len(models), "generated": len(outputs), "skipped": len(skipped)}
    return write_manifest(out / "manifest.json", stage="train_generate", inputs={"prompts": config.prompts_file},
                          parameters=config, counts=counts, outputs=files)  # fmt: skip
