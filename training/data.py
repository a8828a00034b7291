"""Build the conversation set: ShareGPT -> Detoxify NSFW filter -> query types -> balanced sample -> <= 20 turns.

Outputs in ``out_dir``: ``train.jsonl`` (chat JSONL: ``id``, ``query_type``, ``messages`` with user/assistant
roles), ``validation_prompts.jsonl`` (``id``, ``query_type``, ``prompt``: the first user message of conversations
disjoint from the training set), and ``manifest.json`` (input hash, parameters, label distributions, bad records by
reason, NSFW drops by label, the disjointness check, versions).

Disjointness is by conversation root (`conversation_root`): ShareGPT splits long conversations into parts ``X_0``,
``X_1``, ..., so no validation prompt comes from a conversation that has any part in the training set.

Query types come from `QUERY_TYPE_RULES` (first match wins, on the first user -> assistant exchange).
Bad records (missing fields, empty turns, roles other than human/gpt, non-alternating turns, no assistant reply)
are counted per reason and skipped; a trailing user turn without a reply is trimmed and counted.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmeval.util.jsonl import json_lines
from warmeval.util.manifest import Manifest, write_manifest

HF_REPO = "anon8231489123/ShareGPT_Vicuna_unfiltered"
HF_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"
QUERY_TYPES = ("refusal", "factual", "creative", "technical", "advice", "other")

# (label, where the pattern is searched, pattern), first match wins. "user" is the first user message, "reply" the
# first assistant reply. Case-insensitive.
QUERY_TYPE_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("refusal", "reply", re.compile(
        r"i['’]m sorry|i apologi[sz]e|i can['’]t|i cannot|unfortunately|not able to|unable to|against my|"
        r"not appropriate", re.I)),
    ("factual", "user", re.compile(r"^\s*(?:what|who|when|where|why|how)\b", re.I)),
    ("factual", "user", re.compile(r"\b(?:explain|define|describe)\b|difference between", re.I)),
    ("creative", "user", re.compile(r"\b(?:story|poem|write|create|generate|imagine)\b", re.I)),
    ("technical", "reply", re.compile(r"```")),
    ("technical", "user", re.compile(r"\b(?:code|program|function|algorithm|debug)\b", re.I)),
    ("advice", "user", re.compile(r"\badvice\b|\bhelp me\b|\bguide\b|\brecommend|\bsuggestion", re.I)),
)  # fmt: skip
NSFW_LABELS = ("toxicity", "severe_toxicity", "obscene", "sexual_explicit")
ROLE_MAP = {"human": "user", "gpt": "assistant"}
# ShareGPT's part ids: an alphanumeric hash, "_", a part number without leading zeros ("Ir1ot4W_78"). Ids with an
# underscore in the root or a zero-padded number ("demo_sg_01") are whole conversations of another naming scheme.
_PART_SUFFIX = re.compile(r"([A-Za-z0-9]+)_(?:0|[1-9]\d*)")


class BuildError(ValueError):
    """The build cannot proceed (missing input, unusable filter)."""


@dataclass
class BuildConfig:
    """Options of ``warmeval data build`` (also loadable from YAML).

    Attributes:
        input: Local ShareGPT JSON/JSONL (None: the Hugging Face file).
        out_dir: Output folder (train.jsonl, validation_prompts.jsonl, manifest.json).
        n_train: Conversations to sample, balanced across query types.
        n_validation: Validation prompts, disjoint from the training conversations.
        max_turns: Turns kept per conversation.
        seed: Sampling seed.
        nsfw_filter: Drop conversations the Detoxify NSFW filter flags.
        detoxify_model: Detoxify variant (original, unbiased, multilingual).
        detoxify_checkpoint: Local Detoxify checkpoint (offline use).
        detoxify_config_dir: HF config and tokenizer folder for that checkpoint.
        nsfw_threshold: Drop when a label's score exceeds this.
        nsfw_labels: Detoxify labels the threshold applies to.
        device: Torch device for Detoxify.
        batch_size: Texts per Detoxify batch.
        max_chars_scored: Characters of each conversation that Detoxify scores.
    """

    input: str | None = None
    out_dir: str = "data/conversations"
    n_train: int = 1617
    n_validation: int = 1500
    max_turns: int = 20
    seed: int = 0
    nsfw_filter: bool = True
    detoxify_model: str = "unbiased"
    detoxify_checkpoint: str | None = None
    detoxify_config_dir: str | None = None
    nsfw_threshold: float = 0.5
    nsfw_labels: tuple[str, ...] = NSFW_LABELS
    device: str = "cpu"
    batch_size: int = 32
    max_chars_scored: int = 4000


@dataclass
class Conversation:
    """A cleaned conversation: alternating user/assistant messages, starting with the user."""

    id: str
    messages: list[dict[str, str]]
    query_type: str = "other"
    nsfw: dict[str, float] = field(default_factory=dict)

    def text(self, limit: int) -> str:
        return "\n".join(m["content"] for m in self.messages)[:limit]


def label_query_type(user: str, reply: str) -> str:
    """The query type of a first exchange (first matching rule of `QUERY_TYPE_RULES`)."""
    for label, where, pattern in QUERY_TYPE_RULES:
        if pattern.search(user if where == "user" else reply):
            return label
    return "other"


# Byte-order marks of the encodings a ShareGPT dump is saved in by mistake (longest first: UTF-32-LE's starts with
# UTF-16-LE's).
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32-LE"),
    (b"\x00\x00\xfe\xff", "UTF-32-BE"),
    (b"\xff\xfe", "UTF-16-LE"),
    (b"\xfe\xff", "UTF-16-BE"),
)
_UTF8_ONLY = "a ShareGPT input must be UTF-8 JSON (a list of conversations) or JSONL (one conversation per line)"


def _encoding_problem(data: bytes) -> str | None:
    """What a file's bytes are when they are not UTF-8 text (a BOM, or the NUL bytes of UTF-16/32), else None."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return f"{name} (byte-order mark)"
    head = data[:4096]
    if head.count(0) < len(head) // 4:  # a stray NUL is a bad row, counted as such
        return None
    if head[:4].count(0) == 3:
        return "UTF-32-" + ("LE" if head[0] else "BE") + " (no byte-order mark)"
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > 2 * even:
        return "UTF-16-LE (no byte-order mark)"
    if even > 2 * odd:
        return "UTF-16-BE (no byte-order mark)"
    return None


def _decode_sharegpt(file: Path) -> str:
    """The file's text: UTF-8 (a UTF-8 byte-order mark is dropped), else a `BuildError` naming the file and, when its
    bytes show it, the encoding it is in."""
    data = file.read_bytes()
    detected = _encoding_problem(data)
    if detected is not None:
        raise BuildError(f"{file}: not UTF-8 text: it is {detected}; {_UTF8_ONLY} (convert it, e.g. "
                         f"`iconv -f {detected.split()[0]} -t UTF-8`)")  # fmt: skip
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = data[: error.start].count(b"\n") + 1
        raise BuildError(
            f"{file}: row {row}: not UTF-8 text (byte {error.start}: {error.reason}); {_UTF8_ONLY}"
        ) from None


def read_sharegpt(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(row number, record) from a ShareGPT JSON list or JSONL file; unparseable JSONL lines yield None.

    Raises:
        BuildError: The file is not UTF-8 (naming the encoding its bytes show), a JSON list that does not parse, or
            JSONL none of whose rows is JSON.
    """
    file = Path(path)
    text = _decode_sharegpt(file)
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise BuildError(f"{file}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                             f"{_UTF8_ONLY}") from None  # fmt: skip
        if not isinstance(records, list):  # pragma: no cover - a text that starts with "[" is a list or invalid
            raise BuildError(f"{file}: expected a JSON list of conversations")
        yield from enumerate(records, start=1)
        return
    rows = valid = 0
    for number, record in json_lines(text, file, invalid_as_none=True):
        rows += 1
        valid += record is not None
        yield number, record
    if rows and not valid:
        raise BuildError(f"{file}: none of its {rows} rows is valid JSON; {_UTF8_ONLY}")


def clean_record(record: Any, bad: Counter[str], notes: Counter[str]) -> Conversation | None:
    """A `Conversation`, or None with the reason counted in ``bad``."""
    if not isinstance(record, dict):
        bad["not_an_object"] += 1
        return None
    turns = record.get("conversations")
    if not record.get("id") or not isinstance(turns, list) or not turns:
        bad["missing_fields"] += 1
        return None
    messages = []
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            bad["missing_fields"] += 1
            return None
        if turn.get("from") not in ROLE_MAP:
            bad["wrong_role"] += 1
            return None
        if not turn["value"].strip():
            bad["empty_turn"] += 1
            return None
        messages.append({"role": ROLE_MAP[turn["from"]], "content": turn["value"]})
    if any(m["role"] != ("user" if i % 2 == 0 else "assistant") for i, m in enumerate(messages)):
        bad["non_alternating"] += 1
        return None
    if messages[-1]["role"] == "user":
        messages = messages[:-1]
        notes["trailing_user_turn_trimmed"] += 1
    if len(messages) < 2:
        bad["no_assistant_reply"] += 1
        return None
    return Conversation(str(record["id"]), messages)


def _default_input() -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(HF_REPO, HF_FILE, repo_type="dataset"))
    except Exception as error:  # offline, gated or missing
        raise BuildError(
            f"cannot download {HF_FILE} from {HF_REPO} ({error}); pass a local ShareGPT JSON/JSONL with --input"
        ) from error


class NsfwScorer:
    """Detoxify scores; offline without a local checkpoint it fails fast, saying how to provide one."""

    def __init__(self, config: BuildConfig) -> None:
        try:
            from detoxify import Detoxify
        except ImportError as error:
            raise BuildError("the NSFW filter needs the 'detoxify' package (pip install detoxify)") from error
        try:
            self.model = Detoxify(
                model_type=config.detoxify_model,
                checkpoint=config.detoxify_checkpoint,
                device=config.device,
                huggingface_config_path=config.detoxify_config_dir,
            )
        except Exception as error:  # URLError offline, OSError for missing files, ValueError for bad checkpoints
            raise BuildError(
                f"cannot load the Detoxify model {config.detoxify_model!r} ({type(error).__name__}: {error}). "
                "Offline? Download its checkpoint once (see detoxify's MODEL_URLS) and pass --detoxify-checkpoint "
                "PATH with --detoxify-config-dir DIR (the HF config and tokenizer of its base model), or run with "
                "--no-nsfw-filter."
            ) from error
        # Hand-made tokenizers may not know the model's limit; never feed more positions than the model has.
        limit = getattr(self.model.model.config, "max_position_embeddings", 512)
        self.model.tokenizer.model_max_length = min(self.model.tokenizer.model_max_length, limit)
        self.config = config

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        from tqdm import tqdm

        out: list[dict[str, float]] = []
        size = self.config.batch_size
        for start in tqdm(range(0, len(texts), size), desc="Detoxify", unit="batch", disable=len(texts) <= size):
            batch = texts[start : start + size]
            scores = self.model.predict(batch)
            out += [{label: float(values[i]) for label, values in scores.items()} for i in range(len(batch))]
        return out


def nsfw_flags(scores: dict[str, float], labels: Iterable[str], threshold: float) -> list[str]:
    """The labels (among those the model has) whose score exceeds the threshold."""
    return [label for label in labels if label in scores and scores[label] > threshold]


def conversation_root(conversation_id: str) -> str:
    """The conversation an id belongs to: ``X_<n>`` (X alphanumeric, n without leading zeros, as ShareGPT splits long
    conversations) is a part of ``X``; any other id is its own conversation."""
    match = _PART_SUFFIX.fullmatch(conversation_id)
    return match.group(1) if match else conversation_id


def balanced_sample(items: list[Conversation], target: int, rng: random.Random) -> list[Conversation]:
    """Up to ``target`` items, as equal as possible across query types; short types give their share to the others."""
    by_type: dict[str, list[Conversation]] = {t: [c for c in items if c.query_type == t] for t in QUERY_TYPES}
    for pool in by_type.values():
        rng.shuffle(pool)
    quota = dict.fromkeys(QUERY_TYPES, 0)
    remaining = min(target, len(items))
    open_types = [t for t in QUERY_TYPES if by_type[t]]
    while remaining > 0 and open_types:
        share = max(1, remaining // len(open_types))
        for label in list(open_types):
            take = min(share, len(by_type[label]) - quota[label], remaining)
            quota[label] += take
            remaining -= take
            if quota[label] >= len(by_type[label]):
                open_types.remove(label)
            if remaining == 0:
                break
    chosen = [c for label in QUERY_TYPES for c in by_type[label][: quota[label]]]
    return sorted(chosen, key=lambda c: c.id)


def truncate(conversation: Conversation, max_turns: int) -> bool:
    """Keep at most ``max_turns`` messages, ending on an assistant turn; True when something was cut."""
    limit = max_turns - (max_turns % 2)
    if len(conversation.messages) <= limit:
        return False
    conversation.messages = conversation.messages[: max(limit, 2)]
    return True


def build_conversations(config: BuildConfig) -> Manifest:
    """Run the build; returns the manifest (also written to ``out_dir/manifest.json``).

    Validation prompts are drawn only from conversations whose root (`conversation_root`) has no part in the
    training set; candidates dropped for that are counted as ``validation_excluded_sibling_of_train``.
    """
    source = Path(config.input) if config.input else _default_input()
    if not source.is_file():
        raise BuildError(f"{source}: no such file")
    bad: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    conversations: list[Conversation] = []
    rows = 0
    seen_ids: set[str] = set()
    for _, record in read_sharegpt(source):
        rows += 1
        conversation = clean_record(record, bad, notes)
        if conversation is None:
            continue
        if conversation.id in seen_ids:
            bad["duplicate_id"] += 1
            continue
        seen_ids.add(conversation.id)
        conversation.query_type = label_query_type(
            conversation.messages[0]["content"], conversation.messages[1]["content"]
        )
        conversations.append(conversation)

    dropped_nsfw: Counter[str] = Counter()
    if config.nsfw_filter:
        scorer = NsfwScorer(config)
        scores = scorer.score([c.text(config.max_chars_scored) for c in conversations])
        kept = []
        for conversation, score in zip(conversations, scores, strict=True):
            conversation.nsfw = score
            flags = nsfw_flags(score, config.nsfw_labels, config.nsfw_threshold)
            if flags:
                dropped_nsfw["conversations"] += 1
                dropped_nsfw.update(flags)
            else:
                kept.append(conversation)
        conversations = kept

    eligible = Counter(c.query_type for c in conversations)
    rng = random.Random(config.seed)
    train = balanced_sample(conversations, config.n_train, rng)
    train_ids = {c.id for c in train}
    train_roots = {conversation_root(c.id) for c in train}
    # Another part of a training conversation would put training text (and its context) into validation.
    rest = [c for c in conversations if conversation_root(c.id) not in train_roots]
    excluded_siblings = len(conversations) - len(train) - len(rest)
    validation = balanced_sample(rest, config.n_validation, rng)
    validation_roots = {conversation_root(c.id) for c in validation}
    overlap = train_ids & {c.id for c in validation}
    root_overlap = train_roots & validation_roots
    if overlap or root_overlap:
        raise BuildError(
            f"internal error: {len(root_overlap)} conversations ({len(overlap)} ids) in both train and validation"
        )
    truncated = sum(truncate(c, config.max_turns) for c in train)

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_path, validation_path = out / "train.jsonl", out / "validation_prompts.jsonl"
    with open(train_path, "w", encoding="utf-8") as handle:
        for c in train:
            handle.write(
                json.dumps({"id": c.id, "query_type": c.query_type, "messages": c.messages}, ensure_ascii=False) + "\n"
            )
    with open(validation_path, "w", encoding="utf-8") as handle:
        for c in validation:
            handle.write(json.dumps({"id": c.id, "query_type": c.query_type, "prompt": c.messages[0]["content"]},
                                    ensure_ascii=False) + "\n")  # fmt: skip
    counts = {
        "rows_read": rows,
        "bad_records": dict(bad),
        "notes": dict(notes),
        "clean_conversations": len(seen_ids),
        "nsfw_dropped": dict(dropped_nsfw),
        "eligible_by_type": dict(eligible),
        "train_conversations": len(train),
        "train_assistant_turns": sum(sum(m["role"] == "assistant" for m in c.messages) for c in train),
        "train_by_type": dict(Counter(c.query_type for c in train)),
        "train_conversation_roots": len(train_roots),
        "train_truncated_to_max_turns": truncated,
        "validation_prompts": len(validation),
        "validation_by_type": dict(Counter(c.query_type for c in validation)),
        "validation_conversation_roots": len(validation_roots),
        "validation_excluded_sibling_of_train": excluded_siblings,
        "train_validation_overlap": len(overlap),
        "train_validation_root_overlap": len(root_overlap),
    }
    return write_manifest(
        out / "manifest.json",
        stage="data_build",
        inputs={"sharegpt": source},
        parameters=config,
        counts=counts,
        outputs={"train": train_path, "validation_prompts": validation_path},
        extra={"query_type_rules": [(label, where, p.pattern) for label, where, p in QUERY_TYPE_RULES]},
    )
