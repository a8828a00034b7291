"""The GPU suite: LoRA training throughput and SocioT scoring speed in one prepared run (issue #16).

Random weights in real shapes (no model hub on the GPU machine): Llama-3.1-8B for LoRA (seq 1024, effective batch 16,
bf16, the ShareGPT length mix of `lora_throughput.length_mix`), GPT-2 small for SocioT. Every figure is printed on one
line with its ratio to a baseline measured in the same run, and all of them go to a JSON file.

LoRA modes, each reporting real (non-padding) tokens/s, peak GPU memory and the padding share:

* ``plain``: the plain PEFT loop (random batches padded to their longest), micro-batch 4 x accumulation 4 (baseline);
* ``padded``: warmeval's trainer, length-grouped, padded per micro-batch, 4 x 4;
* ``packed``: warmeval's trainer padding-free (one concatenated row per micro-batch), 4 x 4;
* ``padded``/``packed`` at larger micro-batches (8 x 2, 16 x 1: the same effective batch of 16), with and without
  gradient checkpointing; a size that runs out of memory is recorded as ``oom``.

SocioT: texts/s of `warmeval.scorers.sociot.sociot_scores` in fp32 and bf16 (with the largest change bf16 makes to
the values), and the original procedure (one text at a time, 100 dropout passes) on a small subset, for the ratio.

    python benchmarks/gpu_suite.py --out gpu_suite.json            # on a GPU: well under 8 minutes on an H100/H200
    python benchmarks/gpu_suite.py --smoke --out /tmp/smoke.json   # on a CPU: tiny shapes, a few steps (the CI smoke)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lora_throughput as lora  # noqa: E402  (a sibling script, imported as a module)
import sociot_speed as sociot_bench  # noqa: E402

EFFECTIVE_BATCH = 16
H100_PLAIN_REFERENCE = 7580.0  # tokens/s of the plain loop on an H100 (issue #16)


def _line(name: str, value: str, ratio: float | None = None, baseline: str = "") -> None:
    suffix = f"   {ratio:.2f}x {baseline}" if ratio is not None else ""
    print(f"{name:<34} {value}{suffix}", flush=True)


def _lora_run(kind: str, args: argparse.Namespace, lengths: list[int], device: str, micro: int,
              checkpointing: bool) -> dict[str, Any]:  # fmt: skip
    run_args = argparse.Namespace(shape=args.shape, micro=micro, accum=EFFECTIVE_BATCH // micro, seq=args.seq,
                                  steps=args.steps, warmup=args.warmup, out=args.scratch)  # fmt: skip
    started = time.perf_counter()
    try:
        if kind == "plain":
            result = lora.plain_loop(run_args, lengths, device)
        else:
            attn = lora.packed_attention("auto", device) if kind == "packed" else "sdpa"
            result = lora.warmeval_trainer(run_args, lengths, device, padding_free=kind == "packed", attn=attn,
                                           gradient_checkpointing=checkpointing)  # fmt: skip
            result["attention"] = attn
    except torch.OutOfMemoryError:
        result = {"oom": True}
    finally:
        lora._release(device)
    result.update(mode=kind, micro=micro, accum=EFFECTIVE_BATCH // micro, gradient_checkpointing=checkpointing,
                  wall_s=time.perf_counter() - started)  # fmt: skip
    return result


def lora_suite(args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    lengths = lora.length_mix(args.seq, None)
    plans = [("plain", 4, False), ("padded", 4, False), ("packed", 4, False)]
    for micro in args.micro_sizes:
        for checkpointing in (False, True):
            plans += [("padded", micro, checkpointing), ("packed", micro, checkpointing)]
    results = []
    for kind, micro, checkpointing in plans:
        result = _lora_run(kind, args, lengths, device, micro, checkpointing)
        results.append(result)
        base = results[0].get("tokens_per_s")
        label = f"lora {kind} {micro}x{EFFECTIVE_BATCH // micro}{' +gc' if checkpointing else ''}"
        if result.get("oom"):
            _line(label, "out of memory")
            continue
        result["ratio_to_plain"] = result["tokens_per_s"] / base if base else None
        _line(label, f"{result['tokens_per_s']:>9.0f} tokens/s  peak {result['peak_gib']:5.1f} GiB  padding "
              f"{100 * result['padding_share']:4.1f}%", result["ratio_to_plain"], "vs plain")  # fmt: skip
    return results


def sociot_suite(args: argparse.Namespace, device: str) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from warmeval.scorers import sociot
    from warmeval.tiny import build_tiny_gpt2

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = sociot_bench.SHARED / "gpt2_tokenizer"
        shape = {"n_embd": 64, "n_layer": 2} if args.smoke else {"n_embd": 768, "n_layer": 12}
        path = build_tiny_gpt2(Path(tmp) / "gpt2", gpt2_dir=tokenizer_dir if tokenizer_dir.is_dir() else None,
                               texts=sociot_bench.load_texts(64), **shape)  # fmt: skip
        texts = sociot_bench.load_texts(args.sociot_texts)
        rates, values = {}, {}
        for dtype in ("float32", "bfloat16"):
            # Its own folder name, so that the scorer's per-process model cache holds each precision separately.
            folder = Path(tmp) / f"gpt2-{dtype}"
            shutil.copytree(path, folder)
            lm, _ = sociot.load_model(str(folder), device)
            lm.to(getattr(torch, dtype))
            sociot.sociot_scores(texts[:8], model=str(folder), device=device)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            values[dtype] = sociot.sociot_scores(texts, model=str(folder), device=device)
            if device == "cuda":
                torch.cuda.synchronize()
            rates[dtype] = len(texts) / (time.perf_counter() - start)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path)
        naive_texts = texts[: args.naive_texts]
        model.train()
        torch.manual_seed(0)
        start = time.perf_counter()
        sociot_bench.naive_scores(naive_texts, model, tokenizer, args.passes)
        naive_rate = len(naive_texts) / (time.perf_counter() - start)
        model.eval()
        reference = sociot_bench.naive_scores(naive_texts, model, tokenizer, 1)
    out["texts"] = len(texts)
    out["naive_passes"] = args.passes
    out["naive_texts_per_s"] = naive_rate
    out["fp32_texts_per_s"] = rates["float32"]
    out["bf16_texts_per_s"] = rates["bfloat16"]
    out["fp32_max_abs_diff_vs_original"] = float(np.abs(reference - values["float32"][: len(naive_texts)]).max())
    out["bf16_max_abs_diff_vs_fp32"] = float(np.abs(values["bfloat16"] - values["float32"]).max())
    _line(f"sociot original (1 text, {args.passes} passes)", f"{naive_rate:>9.3f} texts/s")
    _line("sociot fp32", f"{rates['float32']:>9.1f} texts/s", rates["float32"] / naive_rate, "vs original")
    _line("sociot bf16", f"{rates['bfloat16']:>9.1f} texts/s", rates["bfloat16"] / naive_rate, "vs original")
    _line("sociot fp32 vs original (dropout off)", f"max |diff| {out['fp32_max_abs_diff_vs_original']:.2e}")
    _line("sociot bf16 vs fp32", f"max |diff| {out['bf16_max_abs_diff_vs_fp32']:.2e}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and few steps (CPU; checks the script runs)")
    parser.add_argument("--out", default="gpu_suite.json", help="JSON file of every figure")
    parser.add_argument("--steps", type=int, default=None, help="timed optimiser steps per LoRA mode")
    parser.add_argument("--skip-lora", action="store_true")
    parser.add_argument("--skip-sociot", action="store_true")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.shape = "tiny" if args.smoke else "llama8b"
    args.seq = 128 if args.smoke else 1024
    args.steps = args.steps or (2 if args.smoke else 8)
    args.warmup = 1 if args.smoke else 2
    args.micro_sizes = [8] if args.smoke else [8, 16]
    args.sociot_texts = 32 if args.smoke else 4000
    args.naive_texts = 2 if args.smoke else 4
    args.passes = 3 if args.smoke else 100
    args.scratch = tempfile.mkdtemp(prefix="warmeval-gpu-suite-")
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}; {'smoke (tiny shapes)' if args.smoke else 'full'}", flush=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"device": name, "smoke": args.smoke, "torch": torch.__version__}
    if not args.skip_lora:
        results["lora"] = lora_suite(args, device)
        plain = results["lora"][0]
        if device == "cuda" and not args.smoke and plain.get("tokens_per_s"):
            _line("plain vs the H100 reference", f"{plain['tokens_per_s']:>9.0f} tokens/s",
                  plain["tokens_per_s"] / H100_PLAIN_REFERENCE, "vs 7,580 tokens/s")  # fmt: skip
    if not args.skip_sociot:
        results["sociot"] = sociot_suite(args, device)
    results["seconds"] = time.perf_counter() - started
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    shutil.rmtree(args.scratch, ignore_errors=True)
    print(f"total {results['seconds']:.0f} s; figures: {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
