"""Benchmark: SocioT scoring, the original procedure vs warmeval's scorer, on the same model and texts.

(1) naive: one text at a time, one padded batch per set, ``--passes`` dropout passes (the original uses 100);
(2) ours: ``sociot_scores`` (one deterministic pass, length-sorted buckets across texts).
Prints texts/s for both, their ratio (target >= 50x), and the largest difference between our values and the naive
procedure run once with dropout disabled (they should be equal up to float32 rounding).

The model is GPT-2 small's shape (12 layers, 768 wide) with random weights and GPT-2's real tokenizer when
../shared/data/gpt2_tokenizer exists (else a trained byte-level BPE); no download.

    .venv/bin/python benchmarks/sociot_speed.py [--texts 24] [--passes 100] [--naive-texts 4] [--size small|tiny]
"""

from __future__ import annotations

import argparse
import csv
import glob
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from warmeval.scorers.sociot.metric import DIMENSIONS, quote, sociot_scores
from warmeval.tiny import build_tiny_gpt2

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_texts(count: int) -> list[str]:
    texts: list[str] = []
    for path in sorted(glob.glob(str(SHARED / "warm_ai_2025_sample" / "*" / "*" / "*.csv"))):
        with open(path, newline="", encoding="utf-8") as handle:
            texts += [row["output"] for row in csv.DictReader(handle) if row.get("output")]
    if not texts:
        texts = [f"Response number {i}: I'm really glad you asked, let's work through it together." for i in range(64)]
    return [texts[i % len(texts)] for i in range(count)]


def naive_scores(texts: list[str], model, tokenizer, passes: int) -> np.ndarray:  # noqa: ANN001
    warm, cold = DIMENSIONS["warmth"]
    scores = []
    for text in texts:
        quoted = quote(text)

        def value(subjects: tuple[str, ...], quoted: str = quoted) -> float:
            seqs = [tokenizer(f"{s} said, {quoted}", add_special_tokens=False)["input_ids"] for s in subjects]
            width = max(len(x) for x in seqs)
            ids = torch.tensor([x + [0] * (width - len(x)) for x in seqs])
            with torch.no_grad():
                return -model(input_ids=ids, labels=ids).loss.item()

        runs = [value(warm) - value(cold) for _ in range(passes)]
        scores.append(float(np.mean(runs)))
    return np.asarray(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=24, help="texts scored by our scorer")
    parser.add_argument("--naive-texts", type=int, default=4, help="texts scored by the (slow) naive loop")
    parser.add_argument("--passes", type=int, default=100, help="dropout passes of the naive loop")
    parser.add_argument("--size", choices=["small", "tiny"], default="small")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = SHARED / "gpt2_tokenizer"
        shape = {"n_embd": 768, "n_layer": 12} if args.size == "small" else {"n_embd": 64, "n_layer": 2}
        path = build_tiny_gpt2(Path(tmp) / "gpt2", gpt2_dir=tokenizer_dir if tokenizer_dir.is_dir() else None,
                               texts=load_texts(64), **shape)  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path)
        texts = load_texts(args.texts)
        naive_texts = texts[: args.naive_texts]

        sociot_scores(texts[:2], model=str(path))  # load once, warm up
        start = time.perf_counter()
        ours = sociot_scores(texts, model=str(path))
        ours_rate = len(texts) / (time.perf_counter() - start)

        model.train()
        torch.manual_seed(0)
        start = time.perf_counter()
        naive_scores(naive_texts, model, tokenizer, args.passes)
        naive_rate = len(naive_texts) / (time.perf_counter() - start)

        model.eval()
        reference = naive_scores(naive_texts, model, tokenizer, 1)
        difference = float(np.abs(reference - ours[: len(naive_texts)]).max())

    print(f"model: GPT-2 {args.size} shape, random weights; texts: {len(texts)} ours, {len(naive_texts)} naive")
    print(f"naive (1 text at a time, {args.passes} dropout passes): {naive_rate:.3f} texts/s")
    print(f"ours (deterministic, bucketed):                 {ours_rate:.2f} texts/s")
    print(f"speed-up: {ours_rate / naive_rate:.0f}x (target >= 50x)")
    print(f"max |ours - naive with dropout off|: {difference:.2e}")


if __name__ == "__main__":
    main()
