"""LoRA adapters for the warm and cold personas (PEFT + the transformers Trainer), with the paper's defaults.

Reads top to bottom: config -> tokenise chats with assistant-only labels -> model + LoRA -> Trainer with a callback
that saves adapters at exact epochs -> manifest.

* Defaults (the paper's): r 8, alpha 16, dropout 0.1, learning rate 1e-5, max sequence length 1024, effective batch
  16 (micro-batch 4 x gradient accumulation 4), 10 epochs, adapters saved at epochs 0.5, 1, 1.5, 2, 4, 6, 8, 10.
  Warm and cold runs use the identical config with different data.
* Save points are computed from the optimiser steps per epoch (``ceil(batches / accumulation)``, as the Trainer
  counts them): epoch e is saved after ``round(e * steps_per_epoch)`` steps, into ``epoch-<e>/`` (a PEFT adapter folder
  that ``vllm serve --enable-lora --lora-modules name=DIR`` loads), next to a full ``checkpoint-<step>/`` (optimizer,
  scheduler and RNG state) from which a rerun resumes with the same schedule.
* Loss on assistant tokens only: from the chat template's ``{% generation %}`` markers when it has them, else by
  rendering prefixes (each assistant turn's tokens are those between the prompt rendered up to it with a generation
  prompt and the conversation rendered through it). Sequences over ``max_seq_length`` are truncated or dropped
  (``overlong``), and counted.
* Length-grouped batching (``group_by_length``) keeps padding low. ``padding_free: true`` removes padding altogether:
  each micro-batch's examples are concatenated into one row (``DataCollatorWithFlattening``) with position ids that
  restart at every example, and the first label of each example is -100, so no token is predicted from, or attends
  to, the example before it (transformers builds a block-diagonal causal mask from the position ids for sdpa, eager
  and flex attention, and runs flash-attention's varlen kernel for ``flash_attention_2``). The examples per micro-batch
  are unchanged, so steps per epoch, save points and the loss (mean over assistant tokens) are those of a padded run.
  It is off by default: on sdpa and eager the packed row is attended under a dense (sum of lengths)^2 mask, more
  attention work than the padded rows of a length-grouped batch, so the full gain needs ``attn_implementation:
  flash_attention_2`` (flash-attn installed, bf16), and length-grouped padding stays the default until a GPU run of
  ``benchmarks/lora_throughput.py`` shows which is faster.
* bf16 on a GPU that supports it.
* Several processes (GPUs, or CPU processes on gloo): ``accelerate launch [--config_file configs/accelerate/<x>.yaml]
  -m warmeval.training.lora --config recipe.yaml`` or ``torchrun --nproc_per_node N -m warmeval.training.lora ...``.
  The engines do the distributed work (DDP gradient sync, FSDP sharding, mixed precision); this module only keeps
  the paper's *effective* batch: ``effective_batch_size`` (16) = ``micro_batch_size`` x ``gradient_accumulation`` x
  processes, with the accumulation derived from the process count unless given (`resolve_batch`), so an epoch has
  the same optimiser steps on 1 process as on 8. Only the main process claims the output folder, writes the
  ``epoch-*`` adapters and the manifest; every process resumes from the same ``checkpoint-*`` (each its own RNG
  state). Per paper model, the GPUs, sharding and batch split are in ``configs/accelerate/README.md``.

Why not trl's ``SFTTrainer`` (and why trl is not a dependency): its assistant-only loss (``SFTConfig(
assistant_only_loss=True)``) needs ``{% generation %}`` markers in the chat template, and trl 1.16 swaps in a marked
"training template" only for templates it recognises. Llama-3.1-8B-Instruct's template (the paper's base model; trl's
``llama3_1.jinja``) is not among them (only Llama 3.0's is), nor is SmolLM2's, so ``SFTTrainer`` raises "patching is
not supported for this template" instead of training on assistant tokens. The prefix-rendering mask here works on any
template, and the exact epoch saves need the callback below either way; the Trainer is transformers'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmeval.util.config import load_config
from warmeval.util.jsonl import read_json_objects
from warmeval.util.lock import output_lock
from warmeval.util.manifest import Manifest, write_manifest

logger = logging.getLogger(__name__)
PAPER_SAVE_EPOCHS = (0.5, 1.0, 1.5, 2.0, 4.0, 6.0, 8.0, 10.0)


@dataclass
class LoraTrainConfig:
    """Options of ``warmeval train lora`` (YAML keys are the field names)."""

    base_model: str = "meta-llama/Llama-3.1-8B-Instruct"
    train_file: str = "data/warm/train.jsonl"
    output_dir: str = "adapters/warm"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = 1e-5
    max_seq_length: int = 1024
    micro_batch_size: int = 4
    gradient_accumulation: int | None = None  # None: effective_batch_size / (micro_batch_size x processes)
    effective_batch_size: int | None = None  # None: the paper's 16, unless gradient_accumulation is given
    epochs: float = 10.0
    save_epochs: list[float] = field(default_factory=lambda: list(PAPER_SAVE_EPOCHS))
    overlong: str = "truncate"  # or "drop"
    group_by_length: bool = True
    padding_free: bool = False  # one packed row per micro-batch, no padding (see the module docstring)
    attn_implementation: str | None = None  # None: transformers' default (sdpa); "flash_attention_2" for padding_free
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.0
    seed: int = 0
    bf16: bool | None = None  # None: on when the GPU supports it
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    resume: bool = True
    max_steps: int | None = None  # smoke runs only: also shortens the learning-rate schedule
    overwrite: bool = False  # start afresh in an output_dir that holds another run (its checkpoints are deleted)

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "max_seq_length", "micro_batch_size", "gradient_accumulation",
                     "effective_batch_size", "logging_steps"):  # fmt: skip
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not self.learning_rate > 0 or not self.epochs > 0 or not 0 <= self.dropout < 1:
            raise ValueError("learning_rate and epochs must be positive and dropout in [0, 1)")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1 (or null), got {self.max_steps!r}")
        if self.overlong not in ("truncate", "drop"):
            raise ValueError(f"overlong must be 'truncate' or 'drop', got {self.overlong!r}")
        if any(e <= 0 or e > self.epochs for e in self.save_epochs):
            raise ValueError(f"save_epochs {self.save_epochs} must lie in (0, epochs={self.epochs}]")


PAPER_EFFECTIVE_BATCH = 16


def world_size() -> int:
    """Processes of this run, as accelerate launch and torchrun announce them (``WORLD_SIZE``; 1 when unset)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def resolve_batch(config: LoraTrainConfig, processes: int | None = None) -> tuple[int, int]:
    """(gradient accumulation, effective batch) for ``processes`` (default: this run's): one optimiser step sees
    ``micro_batch_size x gradient_accumulation x processes`` conversations.

    Without ``gradient_accumulation`` it is derived from ``effective_batch_size`` (the paper's 16 when unset), which
    must then split evenly; with both given they must agree. A ValueError names the numbers.
    """
    processes = processes or world_size()
    per_pass = config.micro_batch_size * processes
    if config.gradient_accumulation is not None:
        effective = per_pass * config.gradient_accumulation
        if config.effective_batch_size is not None and config.effective_batch_size != effective:
            raise ValueError(
                f"effective_batch_size {config.effective_batch_size} != micro_batch_size {config.micro_batch_size} "
                f"x gradient_accumulation {config.gradient_accumulation} x {processes} process(es) = {effective}; "
                "give one of effective_batch_size and gradient_accumulation"
            )
        return config.gradient_accumulation, effective
    effective = config.effective_batch_size or PAPER_EFFECTIVE_BATCH
    if effective % per_pass:
        raise ValueError(
            f"effective_batch_size {effective} is not a multiple of micro_batch_size {config.micro_batch_size} x "
            f"{processes} process(es) = {per_pass}; change micro_batch_size or the number of processes"
        )
    return effective // per_pass, effective


def epoch_label(epoch: float) -> str:
    """``epoch-0.5``, ``epoch-1``, ...: the adapter folder of a save point."""
    return f"epoch-{epoch:g}"


def save_steps_for(save_epochs: list[float], steps_per_epoch: int) -> dict[int, float]:
    """Optimiser step -> epoch for each save point (later epochs win if two round to the same step)."""
    return {max(1, round(e * steps_per_epoch)): e for e in sorted(save_epochs)}


def _has_generation_markers(tokenizer: Any) -> bool:
    template = tokenizer.chat_template or ""
    return "{% generation %}" in template or "{%- generation %}" in template


def tokenize_chat(messages: list[dict[str, str]], tokenizer: Any) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and labels that keep assistant tokens only (-100 elsewhere)."""
    if _has_generation_markers(tokenizer):
        encoded = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids = list(encoded["input_ids"])
        mask = list(encoded["assistant_masks"])
        return ids, [t if m else -100 for t, m in zip(ids, mask, strict=True)]

    def token_ids(part: list[dict[str, str]], prompt: bool = False) -> list[int]:
        encoded = tokenizer.apply_chat_template(part, tokenize=True, return_dict=True, add_generation_prompt=prompt)
        return list(encoded["input_ids"])

    ids = token_ids(messages)
    labels = [-100] * len(ids)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(token_ids(messages[:index], prompt=True))
        end = len(token_ids(messages[: index + 1]))
        labels[start:end] = ids[start:end]
    return ids, labels


def load_chat_dataset(config: LoraTrainConfig, tokenizer: Any) -> tuple[list[dict[str, list[int]]], dict[str, Any]]:
    """Tokenised examples and the counts of what was truncated, dropped or skipped."""
    counts: dict[str, Any] = {"conversations": 0, "truncated": 0, "dropped_overlong": 0, "no_assistant_tokens": 0,
                              "tokens": 0}  # fmt: skip
    examples = []
    path = Path(config.train_file)
    for number, record in read_json_objects(path):
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"{path}: line {number}: field 'messages' is missing or empty")
        counts["conversations"] += 1
        ids, labels = tokenize_chat(messages, tokenizer)
        if len(ids) > config.max_seq_length:
            if config.overlong == "drop":
                counts["dropped_overlong"] += 1
                continue
            ids, labels = ids[: config.max_seq_length], labels[: config.max_seq_length]
            counts["truncated"] += 1
        if all(label == -100 for label in labels):
            counts["no_assistant_tokens"] += 1
            continue
        counts["tokens"] += len(ids)
        examples.append({"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)})
    if not examples:
        raise ValueError(f"{path}: no trainable conversations ({counts})")
    return examples, counts


def _checkpoints(output_dir: Path) -> list[Path]:
    found = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete checkpoint; one torn mid-save (no ``trainer_state.json``) is passed over with a warning."""
    for checkpoint in reversed(_checkpoints(output_dir)):
        if (checkpoint / "trainer_state.json").is_file() and (checkpoint / "adapter_model.safetensors").is_file():
            return str(checkpoint)
        logger.warning("%s is incomplete (torn mid-save?): resuming from an earlier checkpoint", checkpoint)
    return None


FINGERPRINT_FILE = "warmeval_run.json"
# Options that do not change what is trained: a rerun may change them freely.
_NOT_FINGERPRINTED = {"output_dir", "resume", "logging_steps", "overwrite", "max_steps"}


def run_fingerprint(config: LoraTrainConfig) -> dict[str, Any]:
    """What defines a run: its training options and the SHA-256 of its data."""
    from warmeval.util.manifest import file_sha256

    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_FINGERPRINTED}
    return {
        "options": json.loads(json.dumps(options, default=str)),
        "train_file_sha256": file_sha256(config.train_file),
    }


def claim_output_dir(config: LoraTrainConfig) -> None:
    """Record the run in ``output_dir``, or refuse one that holds another run (``overwrite`` starts afresh)."""
    output_dir = Path(config.output_dir)
    record = output_dir / FINGERPRINT_FILE
    current = run_fingerprint(config)
    leftovers = [*_checkpoints(output_dir), *output_dir.glob("epoch-*")]
    if config.overwrite:
        for path in leftovers:
            shutil.rmtree(path)
        (output_dir / "manifest.json").unlink(missing_ok=True)
    elif record.is_file():
        previous = json.loads(record.read_text(encoding="utf-8"))
        if previous != current:
            changed = sorted(k for k in {*previous.get("options", {}), *current["options"]}
                             if previous.get("options", {}).get(k) != current["options"].get(k))  # fmt: skip
            if previous.get("train_file_sha256") != current["train_file_sha256"]:
                changed.insert(0, "train_file contents")
            raise ValueError(
                f"{output_dir} holds a run with other options or data (differs in: {', '.join(changed)}); resuming "
                "would mix them. Use another output_dir, or overwrite: true (--overwrite) to start afresh"
            )
    elif leftovers:
        raise ValueError(
            f"{output_dir} holds checkpoints or adapters of an unrecorded run; use another output_dir, or overwrite: "
            "true (--overwrite) to start afresh"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(current, indent=1), encoding="utf-8")


def copy_epoch_adapter(output_dir: Path, step: int, epoch: float) -> Path:
    """``epoch-<e>/`` from the Trainer's ``checkpoint-<step>/``: the adapter (and tokenizer) files, nothing else.

    The Trainer writes the checkpoint's adapter itself, gathering it from every process where the engine shards it
    (FSDP, DeepSpeed), so copying it is right for every engine where saving the wrapped model again would not be.
    """
    target, checkpoint = output_dir / epoch_label(epoch), output_dir / f"checkpoint-{step}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in checkpoint.iterdir():
        if item.is_file() and (item.name.startswith("adapter_") or "token" in item.name or item.suffix == ".jinja"):
            shutil.copy2(item, target / item.name)
    (target / "warmeval_epoch.json").write_text(json.dumps({"epoch": epoch, "global_step": step}))
    return target


def rebuild_epoch_adapters(output_dir: Path, schedule: dict[int, float]) -> list[str]:
    """Copy the adapter of each scheduled epoch from its checkpoint where ``epoch-<e>/`` is missing; returns those."""
    rebuilt = []
    for step, epoch in schedule.items():
        target, checkpoint = output_dir / epoch_label(epoch), output_dir / f"checkpoint-{step}"
        if (target / "adapter_config.json").is_file() or not (checkpoint / "adapter_model.safetensors").is_file():
            continue
        rebuilt.append(copy_epoch_adapter(output_dir, step, epoch).name)
    return rebuilt


def epoch_seeded(sampler: Any, seed: int) -> Any:
    """A length-grouped sampler whose permutation is drawn from ``seed + epoch`` alone (others are returned as is).

    transformers' ``LengthGroupedSampler`` draws each epoch's permutation from torch's global RNG, whose state at the
    start of epoch 2 depends on everything epoch 1 drew (dropout included): a run resumed from a checkpoint inside
    epoch 2 restores that RNG only after its sampler has drawn, so it trained epoch 2 in another order than the
    uninterrupted run. Seeding each epoch's draw makes the order a function of (seed, epoch), the same in a resumed
    run, an uninterrupted run and on every process of a distributed run (the Trainer calls ``set_epoch``).
    """
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

    if type(sampler) is not LengthGroupedSampler:
        return sampler

    class EpochSeededLengthGroupedSampler(LengthGroupedSampler):  # type: ignore[misc]
        epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __iter__(self) -> Any:
            generator = torch.Generator().manual_seed(seed + self.epoch)
            return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))

    return EpochSeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths)


def build_collator(config: LoraTrainConfig, tokenizer: Any, model: Any) -> Any:
    """Padded micro-batches, or with ``padding_free`` one concatenated row per micro-batch."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if not config.padding_free:
        return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    # No attention_mask in the batch (the collator drops it): transformers looks for packed sequences in the position
    # ids only when the mask is None. separator_id=-100 replaces each example's first label, so the last token of one
    # example is never trained to predict the first token of the next. Flash attention gets the sequence boundaries
    # directly (cu_seq_lens) instead of recomputing them from the position ids in every layer.
    flash = "flash" in str(getattr(model.config, "_attn_implementation", "") or "")
    return DataCollatorWithFlattening(separator_id=-100, return_position_ids=True, return_flash_attn_kwargs=flash)


def train_lora(config: LoraTrainConfig, *, callbacks: list[Any] | None = None) -> Manifest:
    """Train one adapter; returns the manifest (also written to ``output_dir/manifest.json``).

    One run per ``output_dir``: the main process holds the folder's lock (`warmeval.util.lock`) for the whole run,
    so a second ``train lora`` on it stops at once (`OutputBusy`, naming the holder); the kernel frees the lock when
    the process ends, however it ends.

    Args:
        config: The run's options.
        callbacks: Extra ``transformers.TrainerCallback`` objects (progress hooks, early stops).
    """
    import torch
    from accelerate import PartialState

    main_process = PartialState(cpu=not torch.accelerator.is_available()).is_main_process  # see _train
    held = output_lock(config.output_dir, f"warmeval train lora ({config.output_dir})")
    with held if main_process else contextlib.nullcontext():
        return _train(config, callbacks)


def _train(config: LoraTrainConfig, callbacks: list[Any] | None) -> Manifest:
    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    # Joins the process group that accelerate launch / torchrun set up (gloo on CPU, nccl on GPUs); one process alone
    # otherwise. The Trainer uses the same state. Without an accelerator accelerate must be told so (cpu=True, and
    # use_cpu below): else it sees no distributed backend and every process would train alone on the whole data.
    cpu = not torch.accelerator.is_available()
    distributed = PartialState(cpu=cpu)
    accumulation, effective = resolve_batch(config, distributed.num_processes)
    output_dir = Path(config.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    examples, counts = load_chat_dataset(config, tokenizer)
    check_saves(config, len(examples))  # before the model loads: a run that would save nothing is an error
    rebuilt: list[str] = []
    with distributed.main_process_first():  # one process claims the folder; the others then find it claimed
        if distributed.is_main_process:
            claim_output_dir(config)
            rebuilt = rebuild_epoch_adapters(
                output_dir, save_steps_for(config.save_epochs, planned_steps(config, len(examples))[0])
            )
    if rebuilt:
        logger.warning("rebuilt %s from their checkpoints", ", ".join(rebuilt))
    counts.update(processes=distributed.num_processes, gradient_accumulation=accumulation, effective_batch=effective)
    if effective != PAPER_EFFECTIVE_BATCH:
        logger.warning("effective batch %d, not the paper's %d (micro_batch_size x gradient_accumulation x processes)",
                       effective, PAPER_EFFECTIVE_BATCH)  # fmt: skip
    dataset = Dataset.from_list(examples)

    use_bf16 = (
        config.bf16 if config.bf16 is not None else bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    )
    load_options: dict[str, Any] = {"dtype": torch.bfloat16 if use_bf16 else torch.float32}
    if config.attn_implementation:
        load_options["attn_implementation"] = config.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(config.base_model, **load_options)
    # A KV cache disables transformers' packed-sequence detection (masking_utils._preprocess_mask_arguments checks
    # position ids only without one), and a padding-free row would then attend across examples without any error.
    # The Trainer sets this from TrainingArguments.use_cache (False) too; setting it here does not depend on that.
    model.config.use_cache = False
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    peft_config = LoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout,
                             target_modules=config.target_modules, task_type="CAUSAL_LM")  # fmt: skip
    # LoRA A is drawn from the global RNG here, before the Trainer seeds it: seed now, or the initial adapter (and so
    # the whole run) depends on whatever used the RNG earlier in the process.
    set_seed(config.seed)
    model = get_peft_model(model, peft_config)  # type: ignore[assignment]

    saved: dict[str, int] = {}

    class EpochSaves(TrainerCallback):
        """Save at the exact optimiser steps of the configured epochs, and copy the adapter to epoch-<e>/."""

        schedule: dict[int, float] = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            steps_per_epoch = math.ceil(len(trainer.get_train_dataloader()) / args.gradient_accumulation_steps)
            EpochSaves.schedule = save_steps_for(config.save_epochs, steps_per_epoch)
            counts["steps_per_epoch"] = steps_per_epoch

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step in EpochSaves.schedule:
                control.should_save = True

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            epoch = EpochSaves.schedule.get(state.global_step)
            if epoch is None or not state.is_world_process_zero:  # one writer per folder
                return
            target = copy_epoch_adapter(output_dir, state.global_step, epoch)
            saved[target.name] = state.global_step
            logger.info("saved %s (step %d, process %d)", target.name, state.global_step, distributed.process_index)

    args = TrainingArguments(
        output_dir=str(output_dir),
        use_cpu=cpu,
        per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of the total steps
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        save_strategy="no",  # the callback decides
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        bf16=use_bf16,
        report_to=[],
        remove_unused_columns=False,
        disable_tqdm=False,
    )
    class ResumableTrainer(Trainer):  # type: ignore[misc]
        """The Trainer with length-grouped batches whose order depends on the seed and the epoch only."""

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            return epoch_seeded(super()._get_train_sampler(train_dataset), config.seed)

    trainer = ResumableTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=build_collator(config, tokenizer, model),
        processing_class=tokenizer,  # checkpoints then hold the tokenizer, which epoch-*/ copies
        callbacks=[EpochSaves(), *(callbacks or [])],
    )
    resume_from = _last_checkpoint(output_dir) if config.resume else None
    previous = _previous_counts(output_dir)
    resumed_step = 0
    if resume_from:
        resumed_step = json.loads((Path(resume_from) / "trainer_state.json").read_text())["global_step"]
    result = trainer.train(resume_from_checkpoint=resume_from)
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    # Which engine ran it, as accelerate saw it (NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED).
    counts["engine"] = str(getattr(trainer.accelerator.state.distributed_type, "value", "NO"))
    counts.update(global_step=trainer.state.global_step, final_loss=losses[-1] if losses else None)
    counts.update(training_loss(float(result.training_loss), trainer.state.global_step, resumed_step, losses, previous))
    adapters = {label: str(output_dir / label) for label in sorted(saved)}
    existing = {p.name: str(p) for p in sorted(output_dir.glob("epoch-*")) if (p / "adapter_config.json").is_file()}
    return write_manifest(
        output_dir / "manifest.json" if distributed.is_main_process else None,
        stage="train_lora",
        inputs={"train_file": config.train_file},
        parameters=config,
        counts=counts,
        extra={"adapters": existing or adapters, "resumed_from": resume_from, "save_schedule": {
            str(step): epoch for step, epoch in EpochSaves.schedule.items()}},
    )  # fmt: skip


def _previous_counts(output_dir: Path) -> dict[str, Any]:
    """The counts of the manifest a finished earlier run left in ``output_dir`` ({} when there is none)."""
    try:
        return dict(json.loads((output_dir / "manifest.json").read_text(encoding="utf-8")).get("counts") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def training_loss(session_loss: float, global_step: int, resumed_step: int, logged: list[float],
                  previous: dict[str, Any]) -> dict[str, Any]:
    """The run's mean training loss, and what it rests on (``train_loss_basis``).

    The Trainer's own figure covers only the steps this process trained: 0.0 for a rerun that trained nothing (it
    only rebuilt ``epoch-*`` folders), the resumed part alone after a resume. A rerun that trained nothing keeps the
    finished run's figures; a resumed run reports the mean of every logged loss, restored history included.
    """
    if resumed_step == 0:
        return {"train_loss": session_loss, "train_loss_basis": "every step"}
    if global_step == resumed_step and "train_loss" in previous:
        basis = previous.get("train_loss_basis", "every step")
        return {"train_loss": previous["train_loss"], "train_loss_basis": basis,
                "final_loss": previous.get("final_loss")}  # fmt: skip
    if logged:
        return {"train_loss": sum(logged) / len(logged), "train_loss_basis": "mean of the logged losses (resumed)"}
    return {"train_loss": session_loss, "train_loss_basis": f"steps {resumed_step + 1}-{global_step} only (resumed)"}


def planned_steps(config: LoraTrainConfig, examples: int) -> tuple[int, int]:
    """(optimiser steps per epoch, total steps) of a single-node run over ``examples`` conversations."""
    world = world_size()
    accumulation, _ = resolve_batch(config, world)
    batches = math.ceil(examples / (config.micro_batch_size * world))
    per_epoch = max(1, math.ceil(batches / accumulation))
    total = config.max_steps if config.max_steps else math.ceil(config.epochs * per_epoch)
    return per_epoch, total


def check_saves(config: LoraTrainConfig, examples: int) -> None:
    """Raise ValueError when no configured epoch is reached, so that the run would save no adapter."""
    per_epoch, total = planned_steps(config, examples)
    schedule = save_steps_for(config.save_epochs, per_epoch)
    if not any(step <= total for step in schedule):
        first_step, first_epoch = min(schedule.items())
        raise ValueError(
            f"no adapter would be saved: the run ends at step {total} ({examples} conversations, {per_epoch} steps per "
            f"epoch{f', max_steps {config.max_steps}' if config.max_steps else ''}), before the first save at step "
            f"{first_step} (epoch {first_epoch:g}); raise max_steps or lower save_epochs"
        )


def summary(manifest: Manifest) -> str:
    """What a training run did, in a few lines (the full record is the manifest)."""
    counts = manifest.counts
    skipped = counts.get("dropped_overlong", 0) + counts.get("no_assistant_tokens", 0)
    used = counts["conversations"] - skipped
    loss = counts.get("final_loss")
    lines = [
        f"conversations: {used} of {counts['conversations']} used; {counts.get('truncated', 0)} truncated to "
        f"max_seq_length; {skipped} skipped ({counts.get('dropped_overlong', 0)} too long, "
        f"{counts.get('no_assistant_tokens', 0)} with no assistant tokens); {counts.get('tokens', 0)} tokens",
        f"steps: {counts.get('global_step')} ({counts.get('steps_per_epoch')} per epoch); mean training loss "
        f"{counts.get('train_loss', float('nan')):.4f}"
        + (f" ({basis})" if (basis := counts.get("train_loss_basis", "every step")) != "every step" else "")
        + f"; final logged loss {'-' if loss is None else f'{loss:.4f}'}",
        f"adapters saved: {', '.join(manifest.extra['adapters']) or 'none'}",
    ]
    if "effective_batch" in counts:
        effective = counts["effective_batch"]
        lines.insert(2, f"effective batch {effective} = micro_batch_size {manifest.parameters['micro_batch_size']} x "
                        f"gradient_accumulation {counts['gradient_accumulation']} x {counts['processes']} process(es)"
                        + ("" if effective == PAPER_EFFECTIVE_BATCH else f": NOT the paper's {PAPER_EFFECTIVE_BATCH}"))
    missing = [label for label in (epoch_label(e) for e in manifest.parameters["save_epochs"])
               if label not in manifest.extra["adapters"]]  # fmt: skip
    if missing:
        lines.append(f"not saved (the run ended first): {', '.join(missing)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m warmeval.training.lora --config recipe.yaml`` (works under accelerate launch / torchrun)."""
    import argparse

    parser = argparse.ArgumentParser(description="Train a warm or cold LoRA adapter.")
    parser.add_argument("--config", required=True, help="YAML recipe with LoraTrainConfig fields")
    args = parser.parse_args(argv)
    # This module's own lines (saves, warnings) on stderr; transformers and the engines keep their own logging.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    manifest = train_lora(load_config(LoraTrainConfig, args.config))
    if int(os.environ.get("RANK", "0")) != 0:  # one summary per run, from the main process
        return 0
    print(summary(manifest))
    print(json.dumps({"adapters": manifest.extra["adapters"], "counts": manifest.counts}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
