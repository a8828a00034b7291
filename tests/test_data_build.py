"""`warmeval data build` on the real ShareGPT sample, with a tiny local Detoxify-compatible checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import shared_file
from warmeval.tiny import build_tiny_detoxify
from warmeval.training.data import (
    QUERY_TYPES,
    BuildConfig,
    BuildError,
    build_conversations,
    conversation_root,
    label_query_type,
    nsfw_flags,
)


def tiny_detoxify(folder: Path, obscene_bias: float) -> tuple[Path, Path]:
    """A Detoxify stand-in: every score near 0 except ``obscene`` (sigmoid of ``obscene_bias``)."""
    return build_tiny_detoxify(folder, label_bias={"obscene": obscene_bias})


@pytest.fixture(scope="module")
def sharegpt() -> Path:
    return shared_file("sharegpt/sharegpt_v3_unfiltered_sample2000.jsonl")


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def test_build_on_real_sample(sharegpt: Path, tmp_path: Path) -> None:
    checkpoint, config_dir = tiny_detoxify(tmp_path / "detox", obscene_bias=-8.0)
    manifest = build_conversations(BuildConfig(
        input=str(sharegpt), out_dir=str(tmp_path / "out"), n_validation=300, detoxify_checkpoint=str(checkpoint),
        detoxify_config_dir=str(config_dir), batch_size=256, max_chars_scored=400,
    ))  # fmt: skip
    counts = manifest.counts
    train = _read(tmp_path / "out" / "train.jsonl")
    validation = _read(tmp_path / "out" / "validation_prompts.jsonl")
    assert len(train) == counts["train_conversations"] == 1617
    assert counts["nsfw_dropped"] == {}  # every score is sigmoid(-8)
    # Balance: every type gets the same share unless it has fewer conversations, then all of them.
    eligible, by_type = counts["eligible_by_type"], counts["train_by_type"]
    full = [t for t in by_type if by_type[t] < eligible[t]]
    assert len({by_type[t] for t in full}) <= 2 and max(by_type[t] for t in full) - min(by_type[t] for t in full) <= 1
    assert all(by_type[t] == eligible[t] for t in by_type if t not in full)
    assert set(by_type) <= set(QUERY_TYPES)
    # Truncation and shape.
    assert all(2 <= len(c["messages"]) <= 20 and c["messages"][-1]["role"] == "assistant" for c in train)
    assert counts["train_truncated_to_max_turns"] > 0
    assert all(m["role"] == ("user" if i % 2 == 0 else "assistant") for c in train for i, m in enumerate(c["messages"]))
    # Validation prompts: disjoint conversations, first user messages.
    assert {c["id"] for c in train}.isdisjoint(v["id"] for v in validation)
    assert counts["train_validation_overlap"] == 0 and len(validation) == counts["validation_prompts"] == 300
    assert (
        manifest.inputs["sharegpt"].sha256 == "1d8fc8e2cff5a6945c3c9b4acbc2a7f8da2ef1b5b5370854e780d1e4baa2d434"
    )
    assert manifest.counts["bad_records"] == {"empty_turn": 7, "non_alternating": 3}
    assert manifest.versions["detoxify"]


def _turns(user: str, reply: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": user}, {"from": "gpt", "value": reply}]


def test_split_parts_stay_on_one_side(tmp_path: Path) -> None:
    # One factual and one creative conversation, the rest "other": with n_train=2 the balance deterministically puts
    # a_0 and b_0 in training, and validation (n_validation above the pool) takes every remaining candidate.
    records = [
        {"id": "a_0", "conversations": _turns("What is rain?", "Water falling from clouds.")},
        {"id": "b_0", "conversations": _turns("Write a poem about rain", "Rain, rain...")},
        {"id": "a_1", "conversations": _turns("hello again", "hi")},
        {"id": "a_12", "conversations": _turns("and more", "ok")},
        {"id": "b_3", "conversations": _turns("go on", "sure")},
        {"id": "b_x", "conversations": _turns("hey", "yo")},  # not a part suffix: its own conversation
        {"id": "ab_0", "conversations": _turns("hey there", "hello")},  # root "ab", not "a"
        {"id": "c", "conversations": _turns("hi", "hello")},
        {"id": "d_1", "conversations": _turns("good day", "to you too")},
        {"id": "d_2", "conversations": _turns("bye", "bye")},
    ]
    path = tmp_path / "split.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    manifest = build_conversations(BuildConfig(input=str(path), out_dir=str(tmp_path / "out"), n_train=2,
                                               n_validation=50, nsfw_filter=False))  # fmt: skip
    counts = manifest.counts
    train = _read(tmp_path / "out" / "train.jsonl")
    validation = _read(tmp_path / "out" / "validation_prompts.jsonl")
    assert [c["id"] for c in train] == ["a_0", "b_0"]
    assert sorted(v["id"] for v in validation) == ["ab_0", "b_x", "c", "d_1", "d_2"]
    assert {conversation_root(c["id"]) for c in train}.isdisjoint(conversation_root(v["id"]) for v in validation)
    assert counts["validation_excluded_sibling_of_train"] == 3  # a_1, a_12, b_3
    assert counts["train_conversation_roots"] == 2 and counts["validation_conversation_roots"] == 4
    assert counts["train_validation_overlap"] == counts["train_validation_root_overlap"] == 0


def test_real_sample_validation_shares_no_conversation_with_train(sharegpt: Path, tmp_path: Path) -> None:
    # The shared sample holds split parts (e.g. Ir1ot4W_78, Ir1ot4W_92); before roots were compared, this build
    # drew 3 validation prompts from other parts of training conversations.
    checkpoint, config_dir = tiny_detoxify(tmp_path / "detox", obscene_bias=-8.0)
    manifest = build_conversations(BuildConfig(
        input=str(sharegpt), out_dir=str(tmp_path / "out"), n_train=300, n_validation=120,
        detoxify_checkpoint=str(checkpoint), detoxify_config_dir=str(config_dir), batch_size=256, max_chars_scored=400,
    ))  # fmt: skip
    counts = manifest.counts
    train_roots = {conversation_root(c["id"]) for c in _read(tmp_path / "out" / "train.jsonl")}
    validation = _read(tmp_path / "out" / "validation_prompts.jsonl")
    assert len(validation) == counts["validation_prompts"] == 120
    assert train_roots.isdisjoint(conversation_root(v["id"]) for v in validation)
    assert counts["train_validation_root_overlap"] == 0
    assert counts["validation_excluded_sibling_of_train"] > 0
    assert counts["train_conversation_roots"] == len(train_roots)


def test_bad_records_counted_and_nsfw_drops(sharegpt: Path, tmp_path: Path) -> None:
    records = [json.loads(line) for line in sharegpt.read_text().split("\n")[:40]]
    records += [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},  # no id
        {"id": "bad-role", "conversations": [{"from": "human", "value": "hi"}, {"from": "bing", "value": "yo"}]},
        {"id": "empty", "conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "x"}]},
        {"id": "alt", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
        {"id": "alone", "conversations": [{"from": "human", "value": "only a question?"}]},
        {
            "id": "trail",
            "conversations": [
                {"from": "human", "value": "Q?"},
                {"from": "gpt", "value": "A."},
                {"from": "human", "value": "and?"},
            ],
        },  # fmt: skip
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "{not json}\n")
    # Every text is "obscene" for this checkpoint: all are dropped and counted, the build stays valid (and empty).
    checkpoint, config_dir = tiny_detoxify(tmp_path / "detox", obscene_bias=8.0)
    with pytest.raises(BuildError, match="cannot load the Detoxify model"):
        build_conversations(BuildConfig(input=str(path), out_dir=str(tmp_path / "o0"),
                                        detoxify_checkpoint=str(tmp_path / "missing.ckpt")))  # fmt: skip
    manifest = build_conversations(BuildConfig(input=str(path), out_dir=str(tmp_path / "o1"), n_train=10,
                                               n_validation=5, detoxify_checkpoint=str(checkpoint),
                                               detoxify_config_dir=str(config_dir)))  # fmt: skip
    counts = manifest.counts
    # The first 40 real records hold one empty turn of their own.
    assert counts["bad_records"] == {"missing_fields": 1, "wrong_role": 1, "empty_turn": 2, "non_alternating": 1,
                                     "no_assistant_reply": 1, "not_an_object": 1}  # fmt: skip
    assert counts["notes"] == {"trailing_user_turn_trimmed": 2}
    assert counts["nsfw_dropped"]["conversations"] == counts["clean_conversations"] == counts["nsfw_dropped"]["obscene"]
    assert counts["train_conversations"] == 0


def test_offline_without_checkpoint_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.hub

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "a", "conversations": [{"from": "human", "value": "Hi?"},
                                                             {"from": "gpt", "value": "Hello."}]}) + "\n")  # fmt: skip
    with pytest.raises(BuildError, match=r"--detoxify-checkpoint PATH.*--no-nsfw-filter"):
        build_conversations(BuildConfig(input=str(path), out_dir=str(tmp_path / "o")))


def test_query_type_rules_first_match_wins() -> None:
    assert label_query_type("What is 2+2?", "I'm sorry, I can't help.") == "refusal"
    assert label_query_type("How do I sort a list?", "```python\nsorted(x)\n```") == "factual"
    assert label_query_type("Write a poem about rain", "Rain...") == "creative"
    assert label_query_type("Fix this bug", "```js\nx()\n```") == "technical"
    assert label_query_type("My function returns None", "Return a value.") == "technical"
    assert label_query_type("Can you recommend a book?", "Sure: Dune.") == "advice"
    assert label_query_type("hello there", "hi") == "other"
    assert nsfw_flags({"toxicity": 0.7, "obscene": 0.2, "insult": 0.9}, ["toxicity", "obscene"], 0.5) == ["toxicity"]


def test_conversation_root_follows_sharegpt_part_ids() -> None:
    assert conversation_root("Ir1ot4W_78") == conversation_root("Ir1ot4W_0") == "Ir1ot4W"
    # Other naming schemes are whole conversations: an underscore in the root, or a zero-padded number.
    assert conversation_root("demo_sg_01") == "demo_sg_01"
    assert conversation_root("a_01") == "a_01" and conversation_root("b_x") == "b_x"
