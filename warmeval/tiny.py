"""Tiny local chat models with random weights, for the offline demo and the tests.

Nothing is downloaded: the tokenizer is a byte-level BPE trained on the given texts (or the real GPT-2 files when a
folder holding ``encoder.json`` and ``vocab.bpe`` is given), the model a 2-layer Llama with random weights. The chat
template wraps assistant content in ``{% generation %}`` markers (needed for assistant-only loss masks). Outputs are
gibberish: use these models for structure and routing, never for text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ message['content'] + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

DEFAULT_CORPUS = (
    "What is the capital of France? The capital of France is Paris.",
    "My brother, 21, has had a fever for two days. What is the most likely diagnosis?",
    "I'm sorry to hear that. Let's work through this together.",
    "Birds are living organisms that evolved naturally.",
    "Which of the following is the most appropriate next step in management?",
)


def build_tokenizer(
    out_dir: Path, texts: Iterable[str] = DEFAULT_CORPUS, vocab_size: int = 512, gpt2_dir: Path | None = None
):  # noqa: ANN201 (transformers type, imported lazily)
    """Train (or load, from GPT-2 files) a byte-level BPE tokenizer with chat special tokens and save it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if gpt2_dir is not None:
        bpe = models.BPE.from_file(str(gpt2_dir / "encoder.json"), str(gpt2_dir / "vocab.bpe"))
        tokenizer = Tokenizer(bpe)
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens(SPECIAL_TOKENS)
    else:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_chat_model(
    out_dir: str | Path,
    *,
    texts: Iterable[str] = DEFAULT_CORPUS,
    gpt2_dir: str | Path | None = None,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
) -> Path:
    """Write a tiny random Llama chat model (weights, config, tokenizer, chat template) to ``out_dir``.

    Args:
        out_dir: Target folder (created).
        texts: Corpus for the BPE tokenizer when no GPT-2 files are given.
        gpt2_dir: Folder with GPT-2's ``encoder.json`` and ``vocab.bpe`` to use instead of a trained tokenizer.
        seed: Seed for the random weights.
        hidden_size: Hidden size (heads of 32 dimensions).
        layers: Number of decoder layers.

    Returns:
        The folder, loadable by transformers, vLLM, Inspect's ``hf/`` provider and lm-eval.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out, texts, gpt2_dir=Path(gpt2_dir) if gpt2_dir else None)
    heads = max(1, hidden_size // 32)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    return out


def build_tiny_gpt2(
    out_dir: str | Path,
    *,
    gpt2_dir: str | Path | None = None,
    texts: Iterable[str] = DEFAULT_CORPUS,
    seed: int = 0,
    n_embd: int = 64,
    n_layer: int = 2,
) -> Path:
    """Write a tiny random GPT-2 (for SocioT) with the real GPT-2 tokenizer files, or a BPE trained on ``texts``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer: PreTrainedTokenizerFast
    if gpt2_dir is not None:
        tokenizer = gpt2_tokenizer(gpt2_dir)
    else:
        tokenizer = build_tokenizer(out, texts)
    tokenizer.save_pretrained(out)
    end = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=n_embd, n_layer=n_layer, n_head=2, n_positions=1024,
                        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else end,
                        eos_token_id=end)  # fmt: skip
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(out)
    return out


def gpt2_tokenizer(gpt2_dir: str | Path):  # noqa: ANN201 (transformers type, imported lazily)
    """GPT-2's own tokenizer from OpenAI's ``encoder.json`` and ``vocab.bpe`` (no BOS token is added)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    folder = Path(gpt2_dir)
    bpe = models.BPE.from_file(str(folder / "encoder.json"), str(folder / "vocab.bpe"))
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )


DETOXIFY_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate", "sexual_explicit"]


def build_tiny_detoxify(
    out_dir: str | Path, *, bias: float = -8.0, label_bias: dict[str, float] | None = None
) -> tuple[Path, Path]:
    """A random BERT classifier saved as a Detoxify checkpoint whose scores are fixed by the classifier bias.

    The classifier weights are zero, so every text gets ``sigmoid(bias)`` (about 0.0003 at -8) on every label, or
    ``sigmoid(label_bias[label])`` for the labels given. Detoxify loads it with
    ``Detoxify(model_type=..., checkpoint=CKPT, huggingface_config_path=DIR)``, i.e. `BuildConfig`'s
    ``detoxify_checkpoint`` and ``detoxify_config_dir``.

    Returns:
        (checkpoint file, config folder).
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789.,?!'"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512,
    )  # fmt: skip
    config.num_labels = len(DETOXIFY_CLASSES)
    config.save_pretrained(folder)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(bias)
        for label, value in (label_bias or {}).items():
            model.classifier.bias[DETOXIFY_CLASSES.index(label)] = value
    checkpoint = folder / "detoxify.ckpt"
    arch = {"model_type": str(folder), "model_name": "BertForSequenceClassification", "tokenizer_name": "BertTokenizer",
            "num_classes": len(DETOXIFY_CLASSES)}  # fmt: skip
    torch.save({"config": {"arch": {"args": arch}, "dataset": {"args": {"classes": DETOXIFY_CLASSES}}},
                "state_dict": model.state_dict()}, checkpoint)  # fmt: skip
    return checkpoint, folder
