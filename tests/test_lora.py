"""LoRA training on a tiny model: masks, frozen base, exact epoch saves, resume, vLLM loading, generations."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from tests.conftest import FAST_SERVER, bin_path, free_port, run_cli
from warmeval.training.lora import (
    LoraTrainConfig,
    check_saves,
    planned_steps,
    save_steps_for,
    summary,
    tokenize_chat,
    train_lora,
)
from warmeval.util.manifest import Manifest

CHATS = [
    [{"role": "user", "content": f"Question {i}: what is {i} plus {i}?"},
     {"role": "assistant", "content": f"It is {2 * i}. Happy to help!" + " Really." * (i % 4)},
     {"role": "user", "content": "Thanks!"}, {"role": "assistant", "content": "You're welcome."}]
    for i in range(20)
]  # fmt: skip


@pytest.fixture(scope="module")
def chat_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chats") / "train.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "messages": m}) + "\n" for i, m in enumerate(CHATS)))
    return path


def _config(base: Path, data: Path, out: Path, **kwargs: object) -> LoraTrainConfig:
    values = dict(base_model=str(base), train_file=str(data), output_dir=str(out), micro_batch_size=2,
                  gradient_accumulation=2, epochs=2, save_epochs=[0.5, 1, 1.5, 2], max_seq_length=512,
                  learning_rate=1e-3, logging_steps=1000)  # fmt: skip
    values.update(kwargs)
    return LoraTrainConfig(**values)  # type: ignore[arg-type]


def test_labels_mask_assistant_tokens_with_and_without_generation_markers(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids, labels = tokenize_chat(CHATS[3], tokenizer)
    kept = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
    assert kept == "It is 6. Happy to help! Really. Really. Really.<|end|>You're welcome.<|end|>"
    plain = AutoTokenizer.from_pretrained(tiny_model)
    plain.chat_template = plain.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    ids2, labels2 = tokenize_chat(CHATS[3], plain)
    assert ids2 == ids
    kept2 = plain.decode([t for t, lab in zip(ids2, labels2, strict=True) if lab != -100])
    assert "It is 6. Happy to help! Really." in kept2 and "Question 3" not in kept2 and "Thanks" not in kept2


def test_training_saves_exact_epochs_and_keeps_base_frozen(tiny_model: Path, chat_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "warm"
    manifest = train_lora(_config(tiny_model, chat_file, out))
    steps_per_epoch = manifest.counts["steps_per_epoch"]
    assert steps_per_epoch == 5  # 20 chats / micro 2 = 10 batches / accumulation 2
    assert save_steps_for([0.5, 1, 1.5, 2], steps_per_epoch) == {2: 0.5, 5: 1, 8: 1.5, 10: 2}
    assert sorted(manifest.extra["adapters"]) == ["epoch-0.5", "epoch-1", "epoch-1.5", "epoch-2"]
    for label, step in (("epoch-0.5", 2), ("epoch-1", 5), ("epoch-1.5", 8), ("epoch-2", 10)):
        info = json.loads((out / label / "warmeval_epoch.json").read_text())
        assert info["global_step"] == step and (out / label / "adapter_config.json").is_file()
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    original = {k: v.clone() for k, v in base.state_dict().items()}
    tuned = PeftModel.from_pretrained(base, out / "epoch-2")
    lora_b = [p for n, p in tuned.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # LoRA B starts at zero: training moved it
    merged = tuned.merge_and_unload()
    changed = [k for k, v in merged.state_dict().items() if not torch.equal(v, original[k])]
    unchanged = [k for k in original if "embed" in k or "norm" in k]
    assert changed and all(torch.equal(merged.state_dict()[k], original[k]) for k in unchanged)
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert all(torch.equal(v, original[k]) for k, v in fresh.state_dict().items())  # the base on disk is untouched


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def test_resume_continues_the_schedule(tiny_model: Path, chat_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "resume"
    first = train_lora(_config(tiny_model, chat_file, out), callbacks=[StopAt(6)])
    assert first.counts["global_step"] == 6 and sorted(first.extra["adapters"]) == ["epoch-0.5", "epoch-1"]
    second = train_lora(_config(tiny_model, chat_file, out))
    assert second.extra["resumed_from"].endswith("checkpoint-5")
    assert second.counts["global_step"] == 10
    assert sorted(second.extra["adapters"]) == ["epoch-0.5", "epoch-1", "epoch-1.5", "epoch-2"]
    assert json.loads((out / "epoch-2" / "warmeval_epoch.json").read_text())["global_step"] == 10


def test_output_dir_of_another_run_refuses_torn_checkpoints_skipped_epochs_rebuilt(
    tiny_model: Path, chat_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reuse"
    train_lora(_config(tiny_model, chat_file, out), callbacks=[StopAt(6)])  # checkpoints 2 and 5 (epochs 0.5, 1)
    # other data into the same folder: refused before anything trains, naming what differs
    other = tmp_path / "other.jsonl"
    other.write_text(chat_file.read_text().replace("plus", "and"))
    with pytest.raises(ValueError, match="holds a run with other options or data .*train_file contents"):
        train_lora(_config(tiny_model, other, out))
    with pytest.raises(ValueError, match="differs in: learning_rate"):
        train_lora(_config(tiny_model, chat_file, out, learning_rate=5e-4))
    # a checkpoint torn mid-save is passed over; a missing epoch adapter is rebuilt from its checkpoint
    (out / "checkpoint-5" / "trainer_state.json").unlink()
    shutil.rmtree(out / "epoch-0.5")
    resumed = train_lora(_config(tiny_model, chat_file, out))
    assert resumed.extra["resumed_from"].endswith("checkpoint-2")
    assert (out / "epoch-0.5" / "adapter_model.safetensors").is_file()
    assert sorted(resumed.extra["adapters"]) == ["epoch-0.5", "epoch-1", "epoch-1.5", "epoch-2"]
    # overwrite starts afresh
    fresh = train_lora(_config(tiny_model, other, out, epochs=1, save_epochs=[1], overwrite=True))
    assert fresh.extra["resumed_from"] is None and sorted(fresh.extra["adapters"]) == ["epoch-1"]


def test_a_run_that_would_save_no_adapter_fails_before_loading(chat_file: Path, tmp_path: Path) -> None:
    """max_steps ends before the first configured epoch: a clear error, raised before the model is read."""
    config = _config(tmp_path / "no-such-model", chat_file, tmp_path / "out", max_steps=2, save_epochs=[1, 2])
    with pytest.raises(ValueError, match=r"no adapter would be saved: the run ends at step 2 .* first save at step 5"):
        check_saves(config, 20)
    check_saves(_config(tmp_path, chat_file, tmp_path / "out", max_steps=5, save_epochs=[1, 2]), 20)  # epoch 1 saved
    assert planned_steps(_config(tmp_path, chat_file, tmp_path, epochs=2), 20) == (5, 10)


def test_summary_names_what_was_skipped_and_not_saved() -> None:
    counts = {"conversations": 24, "truncated": 20, "dropped_overlong": 0, "no_assistant_tokens": 5, "tokens": 9000,
              "global_step": 3, "steps_per_epoch": 2, "train_loss": 1.5, "final_loss": 1.25}  # fmt: skip
    manifest = Manifest(stage="train_lora", created="", inputs={}, parameters={"save_epochs": [1, 2]}, counts=counts,
                        outputs={}, versions={}, extra={"adapters": {"epoch-1": "x"}})  # fmt: skip
    text = summary(manifest)
    assert "19 of 24 used; 20 truncated to max_seq_length; 5 skipped (0 too long, 5 with no assistant tokens)" in text
    assert "final logged loss 1.2500" in text and "not saved (the run ended first): epoch-2" in text


def test_overlong_sequences_dropped_or_truncated_and_counted(tiny_model: Path, chat_file: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    lengths = sorted(len(tokenize_chat(chat, tokenizer)[0]) for chat in CHATS)
    limit = lengths[len(lengths) // 2]  # about half the conversations are longer
    longer = sum(length > limit for length in lengths)
    assert 0 < longer < len(CHATS)
    common = dict(max_seq_length=limit, epochs=1, save_epochs=[1])
    dropped = train_lora(_config(tiny_model, chat_file, tmp_path / "d", overlong="drop", **common))
    truncated = train_lora(_config(tiny_model, chat_file, tmp_path / "t", **common))
    assert dropped.counts["dropped_overlong"] == longer and dropped.counts["truncated"] == 0
    assert truncated.counts["truncated"] == longer and truncated.counts["dropped_overlong"] == 0


@pytest.mark.slow(seconds=32)
def test_cli_trains_from_yaml_and_adapter_serves_in_vllm(tiny_model: Path, chat_file: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"base_model: {tiny_model}\ntrain_file: {chat_file}\noutput_dir: {tmp_path / 'cli'}\n"
                      "micro_batch_size: 2\ngradient_accumulation: 2\nepochs: 1\nsave_epochs: [0.5, 1]\n"
                      "learning_rate: 0.001\n")  # fmt: skip
    done = run_cli("train", "lora", recipe)
    assert done.returncode == 0, done.stderr[-3000:]
    adapter = tmp_path / "cli" / "epoch-1"
    assert (adapter / "adapter_model.safetensors").is_file()
    # the summary: what was used, truncated and skipped, the steps, what was saved
    assert "conversations: 20 of 20 used; 0 truncated" in done.stdout
    assert "steps: 5 (5 per epoch)" in done.stdout and "adapters saved: epoch-0.5, epoch-1" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("base_model: x\nrank: 8\n")
    refused = run_cli("train", "lora", bad)
    assert refused.returncode == 2 and "rank: unknown key (allowed: " in refused.stderr

    port = free_port()
    log = open(tmp_path / "vllm.log", "w")  # noqa: SIM115
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1", HF_HUB_OFFLINE="1",
               **FAST_SERVER["env"])
    process = subprocess.Popen([bin_path("vllm"), "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
                                "--served-model-name", "tiny", "--max-model-len", "512", "--dtype", "float32",
                                "--enable-lora", "--max-lora-rank", "8", "--max-loras", "1",
                                "--lora-modules", f"warm={adapter}", *FAST_SERVER["extra_args"]],
                               stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 420
        while True:
            assert process.poll() is None, (tmp_path / "vllm.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                    models = {m["id"] for m in json.load(response)["data"]}
                    break
            except OSError:
                assert time.monotonic() < deadline, "vllm serve did not start"
                time.sleep(2)
        assert {"tiny", "warm"} <= models
        body = json.dumps({"model": "warm", "messages": [{"role": "user", "content": "Hi?"}], "max_tokens": 8}).encode()
        request = urllib.request.Request(
            f"{url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            reply = json.load(response)
        assert reply["model"] == "warm" and reply["choices"][0]["message"]["content"] is not None
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def test_validation_generations_per_checkpoint(tiny_model: Path, chat_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "adapters"
    train_lora(_config(tiny_model, chat_file, out, epochs=1, save_epochs=[0.5, 1]))
    prompts = tmp_path / "validation_prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"v{i}", "prompt": f"Tell me about {w}."}) + "\n"
                               for i, w in enumerate(["rain", "cats", "maths"])))  # fmt: skip
    done = run_cli("train", "generate", "--base-model", tiny_model, "--prompts", prompts, "--out", tmp_path / "gens",
                   "--adapter", out / "epoch-0.5", "--adapter", out / "epoch-1", "--max-new-tokens", "6")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("base", "epoch-0.5", "epoch-1"):
        rows = [json.loads(line) for line in (tmp_path / "gens" / f"{label}.jsonl").read_text().splitlines()]
        assert [r["id"] for r in rows] == ["v0", "v1", "v2"] and all("text" in r for r in rows)


def _mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of the labelled tokens' negative log-likelihoods / their count (position t predicts label t + 1)."""
    shifted = labels[:, 1:].reshape(-1)
    return (
        torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(), shifted, ignore_index=-100, reduction="sum"
        )
        / shifted.ne(-100).sum()
    )


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_padding_free_batch_has_the_padded_loss_and_no_cross_example_attention(tiny_model: Path, attn: str) -> None:
    from warmeval.training.lora import build_collator

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32, attn_implementation=attn).eval()
    model.config.use_cache = False  # as train_lora sets it
    features = []
    for chat in (CHATS[1], CHATS[7], CHATS[2]):  # 0, 3 and 2 extra " Really.": three different lengths
        ids, labels = tokenize_chat(chat, tokenizer)
        features.append({"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)})
    lengths = [len(f["input_ids"]) for f in features]
    assert len(set(lengths)) == 3
    padded = build_collator(LoraTrainConfig(), tokenizer, model)(features)
    packed = build_collator(LoraTrainConfig(padding_free=True), tokenizer, model)(features)
    assert padded["input_ids"].shape == (3, max(lengths))
    assert packed["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in packed
    assert packed["position_ids"][0].tolist() == [i for n in lengths for i in range(n)]
    # Every example's first label is -100: no example is trained to follow the one packed before it, and the
    # packed batch trains exactly the padded batch's tokens (the Trainer's loss divisor counts labels[..., 1:]).
    starts = [sum(lengths[:k]) for k in range(3)]
    assert all(packed["labels"][0, s] == -100 for s in starts)
    assert int(packed["labels"][:, 1:].ne(-100).sum()) == int(padded["labels"][:, 1:].ne(-100).sum())

    with torch.no_grad():
        padded_logits = model(**padded).logits
        packed_logits = model(**packed).logits
        padded_loss = _mean_nll(padded_logits, padded["labels"])
        packed_loss = _mean_nll(packed_logits, packed["labels"])
        assert abs(float(packed_loss - padded_loss)) < 1e-5
        assert abs(float(model(**packed).loss - model(**padded).loss)) < 1e-5  # the model's own loss too
        for row, (start, n) in enumerate(zip(starts, lengths, strict=True)):
            torch.testing.assert_close(packed_logits[0, start : start + n], padded_logits[row, :n], atol=1e-4, rtol=0)
        # Controls that show the comparison can fail: the same packed row with contiguous positions is one long
        # sequence (later examples attend to earlier ones), and a KV cache turns off transformers' packed-sequence
        # detection (masking_utils._preprocess_mask_arguments), which is why train_lora sets use_cache=False.
        contiguous = dict(packed, position_ids=torch.arange(sum(lengths))[None])
        assert abs(float(_mean_nll(model(**contiguous).logits, packed["labels"]) - padded_loss)) > 1e-3
        with_cache = _mean_nll(model(**packed, use_cache=True).logits, packed["labels"])
        assert abs(float(with_cache - padded_loss)) > 1e-3


class PackedInputs(TrainerCallback):
    """Records each training forward's input layout (a forward pre-hook: the data order is untouched) and the logs."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool, bool]] = []  # (rows, has attention_mask, has position_ids)
        self.logs: list[dict[str, float]] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001, ANN201
        def hook(module, positional, named):  # noqa: ANN001, ANN202
            ids = named.get("input_ids")
            self.calls.append((ids.shape[0], named.get("attention_mask") is not None, "position_ids" in named))

        model.register_forward_pre_hook(hook, with_kwargs=True)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
        if logs and "loss" in logs:
            self.logs.append(logs)


def test_padding_free_training_keeps_steps_saves_and_loss(tiny_model: Path, chat_file: Path, tmp_path: Path) -> None:
    # dropout 0: LoRA dropout masks depend on the tensor layout and would make the two runs differ by chance.
    common = dict(dropout=0.0, logging_steps=1, epochs=1, save_epochs=[0.5, 1])
    padded_seen, packed_seen = PackedInputs(), PackedInputs()
    padded_run = train_lora(_config(tiny_model, chat_file, tmp_path / "padded", **common), callbacks=[padded_seen])
    out = tmp_path / "packed"
    packed_run = train_lora(_config(tiny_model, chat_file, out, padding_free=True, **common), callbacks=[packed_seen])
    assert all(call == (2, True, False) for call in padded_seen.calls)
    assert all(call == (1, False, True) for call in packed_seen.calls)  # one packed row, no mask: really packed
    assert len(packed_seen.calls) == len(padded_seen.calls) == 10  # 5 optimiser steps x accumulation 2
    for key in ("steps_per_epoch", "global_step"):
        assert packed_run.counts[key] == padded_run.counts[key]
    assert packed_run.extra["save_schedule"] == padded_run.extra["save_schedule"] == {"2": 0.5, "5": 1}
    assert sorted(packed_run.extra["adapters"]) == sorted(padded_run.extra["adapters"]) == ["epoch-0.5", "epoch-1"]
    for label, step in (("epoch-0.5", 2), ("epoch-1", 5)):
        info = json.loads((out / label / "warmeval_epoch.json").read_text())
        assert info["global_step"] == step and (out / label / "adapter_config.json").is_file()
    # Same seed, so the same initial adapter and the same micro-batches: every step's loss (the Trainer's mean over
    # the step's assistant tokens) and the trained adapter must match the padded run up to float rounding.
    assert len(packed_seen.logs) == len(padded_seen.logs) == 5
    for packed_log, padded_log in zip(packed_seen.logs, padded_seen.logs, strict=True):
        assert abs(packed_log["loss"] - padded_log["loss"]) < 1e-4
        assert abs(packed_log["grad_norm"] - padded_log["grad_norm"]) < 1e-3 * padded_log["grad_norm"]

    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    original = {k: v.clone() for k, v in base.state_dict().items()}
    tuned = PeftModel.from_pretrained(base, out / "epoch-1")
    padded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model), tmp_path / "padded" / "epoch-1"
    )
    tuned_lora = {n: p for n, p in tuned.named_parameters() if "lora_" in n}
    padded_lora = {n: p for n, p in padded.named_parameters() if "lora_" in n}
    assert tuned_lora and tuned_lora.keys() == padded_lora.keys()
    assert any(p.abs().sum() > 0 for n, p in tuned_lora.items() if "lora_B" in n)  # B starts at zero: it trained
    for name, weight in tuned_lora.items():
        torch.testing.assert_close(weight, padded_lora[name], atol=1e-5, rtol=1e-3)
    merged = tuned.merge_and_unload().state_dict()
    assert [k for k, v in merged.items() if not torch.equal(v, original[k])]
    assert all(torch.equal(merged[k], v) for k, v in original.items() if "embed" in k or "norm" in k)
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert all(torch.equal(v, original[k]) for k, v in fresh.state_dict().items())  # the base on disk is untouched


def test_recipe_values_are_typed_before_the_model_loads(tiny_model: Path, chat_file: Path, tmp_path: Path) -> None:
    from warmeval.util.config import ConfigError, load_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"base_model: {tiny_model}\ntrain_file: {chat_file}\noutput_dir: {tmp_path / 'out'}\n"
                      "learning_rate: 1e-5\nepochs: 1\nsave_epochs: [1]\nmicro_batch_size: 4\n"
                      "gradient_accumulation: 1\nlogging_steps: 1000\n")  # fmt: skip
    config = load_config(LoraTrainConfig, recipe)
    assert config.learning_rate == 1e-5 and isinstance(config.learning_rate, float)  # YAML reads 1e-5 as a string
    assert sorted(train_lora(config).extra["adapters"]) == ["epoch-1"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("base_model: /no/such/model\nr: eight\nmicro_batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: r: Input should be a valid integer.*'eight'"):
        load_config(LoraTrainConfig, bad)
    bad.write_text("base_model: /no/such/model\nmicro_batch_size: 0\n")
    with pytest.raises(ConfigError, match="micro_batch_size must be at least 1"):
        load_config(LoraTrainConfig, bad)


def test_resume_inside_epoch_two_is_bit_identical_and_a_rebuild_keeps_the_figures(
    tiny_model: Path, chat_file: Path, tmp_path: Path
) -> None:
    """A resume from the checkpoint of epoch 1.5 (inside epoch 2) gives the uninterrupted run's epoch-2 adapter bit for
    bit (with dropout and length-grouped batches, the defaults); a rerun that only rebuilds a missing epoch folder
    keeps the finished run's training figures in its manifest."""
    from safetensors.torch import load_file

    whole = train_lora(_config(tiny_model, chat_file, tmp_path / "whole"))
    train_lora(_config(tiny_model, chat_file, tmp_path / "resumed"), callbacks=[StopAt(8)])  # checkpoint-8: epoch 1.5
    resumed = train_lora(_config(tiny_model, chat_file, tmp_path / "resumed"))
    assert resumed.extra["resumed_from"].endswith("checkpoint-8") and resumed.counts["global_step"] == 10
    for label in ("epoch-1.5", "epoch-2"):
        a = load_file(tmp_path / "whole" / label / "adapter_model.safetensors")
        b = load_file(tmp_path / "resumed" / label / "adapter_model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), label
    assert resumed.counts["train_loss_basis"] == "steps 9-10 only (resumed)"  # no loss logged before (logging 1000)
    shutil.rmtree(tmp_path / "whole" / "epoch-1")
    rebuilt = train_lora(_config(tiny_model, chat_file, tmp_path / "whole"))
    assert (tmp_path / "whole" / "epoch-1" / "adapter_model.safetensors").is_file()
    assert rebuilt.counts["train_loss"] == whole.counts["train_loss"] > 1.0
    assert rebuilt.counts["final_loss"] == whole.counts["final_loss"]
    assert "mean training loss 0.0000" not in summary(rebuilt)
