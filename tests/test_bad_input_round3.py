"""Bad input, round 3: repeated adapter names, corrupt adapter configs, non-UTF-8 ShareGPT, template errors with their
file and line, an HTML reply from the rewrite endpoint, empty texts in SocioT, and broken distractor files."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.fake_openai import FakeOpenAI, running

# ---- 1. a repeated adapter name ----------------------------------------------------------------------------------


def _adapter(folder: Path, config: object) -> Path:
    folder.mkdir(parents=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (folder / "adapter_config.json").write_text(text, encoding="utf-8")
    return folder


def test_repeated_adapter_name_is_an_error(tmp_path: Path) -> None:
    from warmeval.serve import ServeConfig, ServeError, check_adapters

    # Trained on another model: were the repetition let through, the check would stop on that, before any server.
    spec = {"base_model_name_or_path": "other/model", "r": 8}
    first, second = _adapter(tmp_path / "A", spec), _adapter(tmp_path / "B", spec)
    result = run_cli("serve", "--base-model", "base", "--adapter", f"warm={first}", "--adapter", f"warm={second}")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "'warm'" in line and "twice" in line and str(first) in line and str(second) in line
    # Python callers: NAME=FOLDER strings or (name, folder) pairs, a repeated name refused
    for adapters in ([f"warm={first}", f"warm={second}"], [("warm", str(first)), ("warm", str(second))]):
        with pytest.raises(ValueError, match=rf"adapter name 'warm' is given twice: {first} and {second}"):
            ServeConfig(base_model="base", adapters=adapters)  # type: ignore[arg-type]
    assert ServeConfig("base", [f"warm={first}", f"cold={second}"]).adapters == {  # type: ignore[arg-type]
        "warm": str(first), "cold": str(second)
    }  # fmt: skip
    config = ServeConfig(base_model="base")
    config.adapters = [("warm", str(first)), ("warm", str(second))]  # type: ignore[assignment]
    with pytest.raises(ServeError, match=rf"adapter name 'warm' is given twice: {first} and {second}"):
        check_adapters(config)


# ---- 2. a corrupt adapter_config.json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"r": 8,', r"not valid JSON \(line 1, column"),
        ("[8]", r"expected a JSON object, got a list"),
        ({"base_model_name_or_path": "base"}, r"no 'r' \(the LoRA rank\)"),
        ({"base_model_name_or_path": "base", "r": "eight"}, r"'r' must be a whole number of at least 1, got 'eight'"),
    ],
)
def test_corrupt_adapter_config_names_the_file(tmp_path: Path, content: object, problem: str) -> None:
    from warmeval.serve import ServeConfig, ServeError, check_adapters

    folder = _adapter(tmp_path / "warm", content)
    with pytest.raises(ServeError, match=rf"adapter 'warm': {folder / 'adapter_config.json'}: {problem}"):
        check_adapters(ServeConfig(base_model="base", adapters={"warm": str(folder)}))


# ---- 3. a ShareGPT file that is not UTF-8 ----------------------------------------------------------------------

SHAREGPT = [
    {"id": "a1", "conversations": [{"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4."}]},
    {"id": "b2", "conversations": [{"from": "human", "value": "Write a poem"}, {"from": "gpt", "value": "Roses."}]},
]


@pytest.mark.parametrize(
    ("name", "encode", "detected"),
    [
        ("list16.json", lambda text: text.encode("utf-16"), "UTF-16-LE (byte-order mark)"),
        ("rows16be.jsonl", lambda text: text.encode("utf-16-be"), "UTF-16-BE (no byte-order mark)"),
        ("rows16le.jsonl", lambda text: text.encode("utf-16-le"), "UTF-16-LE (no byte-order mark)"),
        ("rows32.jsonl", lambda text: text.encode("utf-32"), "UTF-32-LE (byte-order mark)"),
        ("latin.jsonl", lambda text: text.replace("Roses.", "Ros\u00e9s.").encode("latin-1"), "row 2"),
    ],
)
def test_non_utf8_sharegpt_is_an_error_naming_the_file(tmp_path: Path, name: str, encode, detected: str) -> None:  # noqa: ANN001
    jsonl = name.endswith(".jsonl")
    text = "".join(json.dumps(r) + "\n" for r in SHAREGPT) if jsonl else json.dumps(SHAREGPT, indent=1)
    source = tmp_path / name
    source.write_bytes(encode(text))
    result = run_cli("data", "build", "--input", source, "--out-dir", tmp_path / "out", "--no-nsfw-filter",
                     "--n-train", "1", "--n-validation", "1")  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert str(source) in line and "UTF-8" in line and detected in line
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_sharegpt_with_a_utf8_bom_or_broken_json(tmp_path: Path) -> None:
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes("".join(json.dumps(r) + "\n" for r in SHAREGPT).encode("utf-8-sig"))
    ok = run_cli("data", "build", "--input", bom, "--out-dir", tmp_path / "out", "--no-nsfw-filter",
                 "--n-train", "1", "--n-validation", "1")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["bad_records"] == {} and manifest["counts"]["rows_read"] == 2
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "a1", "conversations": []},\n {"id": ', encoding="utf-8")
    bad = run_cli("data", "build", "--input", broken, "--out-dir", tmp_path / "o2", "--no-nsfw-filter")
    assert bad.returncode == 2 and f"{broken}: not valid JSON (line 2, column" in bad.stderr


# ---- 4. template errors name the file and the line -------------------------------------------------------------


def _chat_file(path: Path) -> Path:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    path.write_text(json.dumps({"id": "c1", "messages": messages}) + "\n", encoding="utf-8")
    return path


def test_rewrite_template_errors_name_the_file_and_line(tmp_path: Path) -> None:
    from warmeval.training.rewrite import RewriteConfig, RewriteError, load_template, render_prompt, rewrite_file

    syntax = tmp_path / "syntax.j2"
    syntax.write_text("Rewrite warmly.\n{% if user_message %}\n{{ assistant_message }}\n", encoding="utf-8")
    with pytest.raises(RewriteError, match=rf"template {syntax}: line \d+: .*'endif'"):
        load_template(RewriteConfig(template=str(syntax)))
    undefined = tmp_path / "undefined.j2"
    undefined.write_text("Rewrite warmly.\n{{ user_message }}\n{{ assistant_reply }}\n", encoding="utf-8")
    template, _ = load_template(RewriteConfig(template=str(undefined)))
    with pytest.raises(RewriteError, match=rf"template {undefined}: line 3: 'assistant_reply' is undefined"):
        render_prompt(template, "Hi", "Hello.")
    attribute = tmp_path / "attribute.j2"
    attribute.write_text("Rewrite:\n\n{{ assistant_message.text }}\n", encoding="utf-8")
    source = _chat_file(tmp_path / "in.jsonl")
    with running(FakeOpenAI()) as fake:
        for path, message in ((undefined, "'assistant_reply' is undefined"), (attribute, "has no attribute 'text'")):
            config = RewriteConfig(template=str(path), model="fake-model", base_url=fake.base_url, api_key="k",
                                   progress=False, cache_dir=str(tmp_path / "cache"))  # fmt: skip
            with pytest.raises(RewriteError, match=rf"template {path}: line 3: .*{message}"):
                asyncio.run(rewrite_file(source, tmp_path / "out.jsonl", config))
        assert fake.chat_calls() == 0  # before any request
    result = run_cli("data", "rewrite", "--style", "warm", "--template", undefined, "--input", source, "--output",
                     tmp_path / "o.jsonl", "--base-url", "http://127.0.0.1:9/v1", "--no-progress")  # fmt: skip
    assert result.returncode == 2 and f"template {undefined}: line 3:" in result.stderr


JUDGE_OK = "Question: {{ question }}\nGold: {{ gold_answers }}\nResponse: {{ response }}\n"


def test_judge_template_errors_name_the_file_and_line(tmp_path: Path) -> None:
    from warmeval.scorers.judges.judge import load_judge_template
    from warmeval.sycophancy.paper_texts import PaperTextError

    cases = {
        "syntax.j2": (JUDGE_OK + "{% if response %}\nCORRECT?\n", r"line \d+: .*'endif'"),
        "attribute.j2": (JUDGE_OK + "Also: {{ question.text }}\n", r"line 4: .*has no attribute 'text'"),
        "filter.j2": (JUDGE_OK + "{{ response | shout }}\n", r"line 4: No filter named 'shout'"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PaperTextError, match=rf"{path}: {message}"):
            load_judge_template(str(path))
    # An error only some values reach is raised when the judge prompt is rendered, with the file and line too.
    late = tmp_path / "late.j2"
    late.write_text(JUDGE_OK + '{% if response == "odd" %}\n{{ response.upper.x }}\n{% endif %}\n', encoding="utf-8")
    template = load_judge_template(str(late))
    values = {"question": "Q?", "gold_answers": ["A"], "false_answers": [], "instructions": ""}
    assert "Response: fine" in template.render(response="fine", **values)
    with pytest.raises(PaperTextError, match=rf"judge template {late}: line 5: "):
        template.render(response="odd", **values)


# ---- 5. an HTML reply from the rewrite endpoint -----------------------------------------------------------------

HTML = "<!DOCTYPE html><html><head><title>Sign in to the proxy</title></head><body>" + "x" * 200 + "</body></html>"


class _HtmlHandler(BaseHTTPRequestHandler):
    """A proxy that answers every request with a 200 HTML page."""

    requests = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests += 1
        body = HTML.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass


@contextmanager
def _html_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_html_reply_from_the_rewrite_endpoint(tmp_path: Path) -> None:
    from warmeval.training.rewrite import RewriteConfig, RewriteError, rewrite_file

    source = _chat_file(tmp_path / "in.jsonl")
    with _html_server() as base_url:
        config = RewriteConfig(model="m", base_url=base_url, api_key="k", progress=False, concurrency=1,
                               cache_dir=str(tmp_path / "cache"))  # fmt: skip
        with pytest.raises(RewriteError) as caught:
            asyncio.run(rewrite_file(source, tmp_path / "out.jsonl", config))
        message = str(caught.value)
        assert f"{base_url}/chat/completions" in message and "not JSON from an OpenAI-compatible API" in message
        assert repr(HTML[:80]) in message and HTML[:81] not in message
        result = run_cli("data", "rewrite", "--style", "warm", "--input", source, "--output", tmp_path / "o.jsonl",
                         "--base-url", base_url, "--model", "m", "--no-progress",
                         "--cache-dir", tmp_path / "c2")  # fmt: skip
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "not JSON from an OpenAI-compatible API" in line and "<!DOCTYPE html>" in line
    assert not (tmp_path / "o.jsonl").exists()


# ---- 6. empty texts in SocioT -----------------------------------------------------------------------------------

SOCIOT_TEXTS = ["Thank you so much, my friend!", "", "   \n", "The capital of Australia is Canberra."]


def test_sociot_excludes_and_counts_empty_texts(
    tiny_gpt2: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from warmeval.scorers.sociot.files import read_texts, score_items, write_trajectory
    from warmeval.scorers.sociot.metric import sociot_scores, summarize

    source = tmp_path / "gens.jsonl"
    source.write_text("".join(json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(SOCIOT_TEXTS)))
    real = sociot_scores([SOCIOT_TEXTS[0], SOCIOT_TEXTS[3]], model=str(tiny_gpt2))
    out = tmp_path / "scores.csv"
    with caplog.at_level(logging.WARNING):
        result = run_cli("sociot", "score", source, "--out", out, "--model", tiny_gpt2)
    assert result.returncode == 0, result.stderr
    assert "n=2 " in result.stdout and f"mean={real.mean():.6f}" in result.stdout
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert f"2 of 4 texts in {source} are empty or whitespace only" in warned and "s1, s2" in warned
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["key"] for r in rows] == ["s0", "s1", "s2", "s3"]  # nothing dropped from the per-text table
    assert math.isnan(float(rows[1]["score"])) and math.isnan(float(rows[2]["score"]))
    np.testing.assert_allclose([float(rows[0]["score"]), float(rows[3]["score"])], real, atol=1e-8)

    items = read_texts(source)
    scores = score_items(items, model=str(tiny_gpt2), progress=False)
    summary = summarize(scores)
    assert summary.n == 2 and summary.empty_texts == 2 and summary.mean == pytest.approx(real.mean())
    assert summary.as_dict()["empty_texts"] == 2
    # scores read back from logs (the Inspect scorer scored the empty answers): excluded and counted the same way
    logged = np.asarray(sociot_scores(SOCIOT_TEXTS, model=str(tiny_gpt2)))
    (point,) = write_trajectory([("base", 0.0, items, logged)], tmp_path / "traj", "paper", str(tiny_gpt2))
    assert point.summary.n == 2 and point.summary.empty_texts == 2
    with open(tmp_path / "traj" / "warmth_trajectory.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["n"] == "2" and row["empty_texts"] == "2" and float(row["mean"]) == pytest.approx(real.mean())

    blank = tmp_path / "blank.jsonl"
    blank.write_text("".join(json.dumps({"text": t}) + "\n" for t in ("", "  ")))
    none = run_cli("sociot", "score", blank, "--out", tmp_path / "b.csv", "--model", tiny_gpt2)
    assert none.returncode == 2 and f"{blank}: all 2 texts are empty or whitespace only" in none.stderr


# ---- 7. a broken distractors file -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.json", '{"q1": "Paris",\n "q2": ', r"not valid JSON \(line 2, column \d+: "),
        (
            "rows.json",
            '{"question_id": "q1", "distractor": "Paris"}\n{"question_id": "q2", "distractor": "Rome"}\n',
            r"not valid JSON \(line 2, column \d+: Extra data\); JSON Lines need a \.jsonl name",
        ),
        ("list.json", '["Paris", "Rome"]', r"expected a JSON object mapping question ids to distractors, got a list"),
        ("nested.json", '{"q1": "Paris", "q2": {"distractor": "Rome"}}', r"key 'q2': expected a string, got an object"),
        ("null.json", '{"q1": null}', r"key 'q1': expected a string, got null"),
        (
            "rows.jsonl",
            '{"question_id": "q1", "distractor": ["Paris"]}\n',
            r"row 1: field 'distractor': expected a string, got a list",
        ),
        (
            "twice.jsonl",
            '{"question_id": "q1", "distractor": "Paris"}\n{"question_id": "q1", "distractor": "Rome"}\n',
            r"row 2: question_id 'q1' is also on row 1",
        ),
        ("utf16.json", None, r"not UTF-8 text"),
    ],
)
def test_broken_distractors_file(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    from warmeval.solvers.distractor import DistractorError, load_distractors

    path = tmp_path / name
    if content is None:
        path.write_bytes('{"q1": "Paris"}'.encode("utf-16"))
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DistractorError, match=rf"^{path}: {message}") as caught:
        load_distractors(path)
    assert "\n" not in str(caught.value)


def test_good_distractors_files_still_load(tmp_path: Path) -> None:
    from warmeval.solvers.distractor import load_distractors

    mapping = tmp_path / "d.json"
    mapping.write_text('{"q1": "Paris", "7": 1066}', encoding="utf-8")
    assert load_distractors(mapping) == {"q1": "Paris", "7": "1066"}
    rows = tmp_path / "d.jsonl"
    rows.write_text('{"question_id": 7, "distractor": "Rome"}\n', encoding="utf-8")
    assert load_distractors(rows) == {"7": "Rome"}
