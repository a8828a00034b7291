"""Benchmark (GPU): LoRA training throughput, a plain PEFT loop vs warmeval's trainer setup, on the ShareGPT length mix.

Both train the same randomly initialised model in a real model's shape (default Llama-3.1-8B: no download) with LoRA
r 8 on all seven projections, bf16, micro-batch 4 x gradient accumulation 4, sequences capped at 1024 tokens whose
lengths follow the real ShareGPT mix (token counts of ../shared/data/sharegpt conversations under GPT-2's tokenizer,
or of ``--lengths-from`` train.jsonl). Random token ids: only lengths matter for speed.

1. plain: the PEFT loop most people write: random batches, each padded to its longest sequence;
2. warmeval: the transformers Trainer as ``warmeval train lora`` configures it (length-grouped batches, dynamic
   padding, the same optimiser), timed by a callback after warm-up;
3. warmeval packed: the same with ``padding_free: true``: each micro-batch concatenated into one row with position
   ids restarting per example (no padding at all; the same examples per step), on ``flash_attention_2`` when
   flash-attn is installed on a GPU, else sdpa (``--packed-attn`` picks one).

Prints real (non-padding) tokens/s, padding share and peak GPU memory for each, and the ratios to plain. The reference
number for the plain loop without padding on an H100 is 7,580 tokens/s; the target for warmeval on the length mix is
>= 2x. On a CPU (``--shape tiny``) it only shows that the three modes run: those numbers mean nothing.

    python benchmarks/lora_throughput.py [--shape llama8b|tiny] [--steps 20] [--warmup 3] [--packed-attn auto]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAPES = {
    "llama8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, max_position_embeddings=8192),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, vocab_size=1024, max_position_embeddings=1024),
}  # fmt: skip
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def length_mix(seq: int, source: str | None) -> list[int]:
    """Token lengths of real conversations, capped at ``seq``."""
    from warmeval.tiny import gpt2_tokenizer

    tokenizer = gpt2_tokenizer(SHARED / "gpt2_tokenizer") if (SHARED / "gpt2_tokenizer").is_dir() else None
    path = Path(source) if source else SHARED / "sharegpt" / "sharegpt_v3_unfiltered_sample2000.jsonl"
    texts = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            record = json.loads(line)
            turns = record.get("messages") or record.get("conversations") or []
            texts.append("\n".join(t.get("content") or t.get("value") or "" for t in turns))
    if tokenizer is None:
        return [min(seq, max(8, len(t) // 4)) for t in texts]
    return [min(seq, max(8, len(ids))) for ids in tokenizer(texts)["input_ids"]]


def build_model(shape: str, device: str, attn: str = "sdpa"):  # noqa: ANN201
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = LlamaConfig(**SHAPES[shape], attn_implementation=attn)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(model, lora), config.vocab_size


def plain_loop(args: argparse.Namespace, lengths: list[int], device: str) -> dict[str, float]:
    model, vocab = build_model(args.shape, device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    rng = random.Random(0)
    real = padded = 0
    start = None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            _sync(device)
            start, real, padded = time.perf_counter(), 0, 0
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
        for _ in range(args.accum):
            batch = [rng.choice(lengths) for _ in range(args.micro)]
            width = max(batch)
            ids = torch.randint(0, vocab, (args.micro, width), device=device)
            mask = torch.zeros_like(ids)
            for row, length in enumerate(batch):
                mask[row, :length] = 1
            labels = ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss / args.accum
            loss.backward()
            real += sum(batch)
            padded += args.micro * width
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    assert start is not None
    elapsed = time.perf_counter() - start
    return _result(real, padded, elapsed, device)


def warmeval_trainer(
    args: argparse.Namespace,
    lengths: list[int],
    device: str,
    *,
    padding_free: bool = False,
    attn: str = "sdpa",
    gradient_checkpointing: bool = False,
) -> dict[str, float]:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast, Trainer, TrainerCallback, TrainingArguments

    from warmeval.training.lora import LoraTrainConfig, build_collator

    model, vocab = build_model(args.shape, device, attn)
    model.config.use_cache = False  # as train_lora sets it: a cache would hide the packed rows' boundaries
    if gradient_checkpointing:  # as train_lora does it
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    rng = random.Random(1)
    needed = (args.warmup + args.steps) * args.micro * args.accum
    rows = [rng.choice(lengths) for _ in range(needed)]
    data = Dataset.from_list([{"input_ids": [rng.randrange(vocab) for _ in range(n)], "labels": [1] * n,
                               "attention_mask": [1] * n} for n in rows])  # fmt: skip
    timing: dict[str, float] = {}
    batches: list[tuple[int, int]] = []  # (real, padded) tokens per collated micro-batch, in order

    class Timer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):  # noqa: ANN001, ANN201
            if state.global_step == args.warmup:
                _sync(device)
                timing["start"] = time.perf_counter()
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()

    # The collator `warmeval train lora` builds for this option, wrapped to count real and padded tokens.
    collate = build_collator(LoraTrainConfig(padding_free=padding_free), _pad_tokenizer(PreTrainedTokenizerFast), model)

    def counting_collator(features):  # noqa: ANN001, ANN202
        batch = collate(features)
        mask = batch.get("attention_mask")  # absent when padding-free: every token is real
        real = int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        batches.append((real, int(batch["input_ids"].numel())))
        return batch

    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(Path(args.out) / "trainer"), per_device_train_batch_size=args.micro,
            gradient_accumulation_steps=args.accum, learning_rate=1e-5, max_steps=args.warmup + args.steps,
            train_sampling_strategy="group_by_length", bf16=device == "cuda", save_strategy="no", report_to=[],
            logging_steps=10_000, remove_unused_columns=False, disable_tqdm=True, dataloader_num_workers=0,
        ),
        train_dataset=data,
        data_collator=counting_collator,
        callbacks=[Timer()],
    )  # fmt: skip
    trainer.train()
    _sync(device)
    elapsed = time.perf_counter() - timing["start"]
    timed = batches[-args.steps * args.accum :]  # the micro-batches of the timed steps
    return _result(sum(r for r, _ in timed), sum(p for _, p in timed), elapsed, device)


def packed_attention(choice: str, device: str) -> str:
    """``auto``: flash_attention_2 (its varlen kernel skips cross-example work) when flash-attn runs here, else sdpa."""
    if choice != "auto":
        return choice
    if device != "cuda":
        return "sdpa"
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return "sdpa"
    return "flash_attention_2"


def _pad_tokenizer(cls):  # noqa: ANN001, ANN202
    from tokenizers import Tokenizer, models

    tok = Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1}, unk_token="<unk>"))
    return cls(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>")


def _release(device: str) -> None:
    """Free the previous run's model before the next is built: the Trainer's reference cycles keep an 8B model (16 GiB)
    alive until a collection, and three runs would not fit next to each other."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _result(real: float, padded: float, elapsed: float, device: str) -> dict[str, float]:
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else math.nan
    return {"tokens_per_s": real / elapsed, "padding_share": 1 - real / padded, "peak_gib": peak, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama8b")
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--accum", type=int, default=4)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--lengths-from", default=None, help="train.jsonl whose conversations give the length mix")
    parser.add_argument("--out", default="/tmp/warmeval-lora-bench")
    parser.add_argument(
        "--packed-attn",
        default="auto",
        choices=["auto", "sdpa", "flash_attention_2", "eager"],
        help="attention of the padding-free run (auto: flash_attention_2 if installed, else sdpa)",
    )
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lengths = length_mix(args.seq, args.lengths_from)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    mean = sum(lengths) / len(lengths)
    print(f"device: {name}; shape {args.shape}; micro {args.micro} x accum {args.accum}; "
          f"lengths: {len(lengths)} conversations, mean {mean:.0f} tokens (cap {args.seq})")  # fmt: skip
    plain = plain_loop(args, lengths, device)
    _release(device)
    ours = warmeval_trainer(args, lengths, device)
    _release(device)
    attn = packed_attention(args.packed_attn, device)
    packed = warmeval_trainer(args, lengths, device, padding_free=True, attn=attn)
    for name, r in (("plain PEFT loop", plain), ("warmeval trainer", ours), ("warmeval packed", packed)):
        print(f"{name:<18} {r['tokens_per_s']:>10.0f} tokens/s   padding {100 * r['padding_share']:5.1f}%   "
              f"peak {r['peak_gib']:.1f} GiB")  # fmt: skip
    print(f"ratio warmeval/plain: {ours['tokens_per_s'] / plain['tokens_per_s']:.2f}x")
    print(f"ratio warmeval packed/plain: {packed['tokens_per_s'] / plain['tokens_per_s']:.2f}x (attention: {attn})")
    if device == "cuda" and args.shape == "llama8b":
        print(f"vs the 7,580 tokens/s H100 reference: {ours['tokens_per_s'] / 7580:.2f}x, "
              f"packed {packed['tokens_per_s'] / 7580:.2f}x (target >= 2x on an H100)")  # fmt: skip
    else:
        print("(not the H100 / Llama-3.1-8B setting: compare the ratio only, not the reference)")


if __name__ == "__main__":
    main()
