"""One vocabulary: wherever an option takes the value ``paper``, it means the authors' released behaviour.

The walk covers every Inspect task argument, every CLI option, and SocioT's Python entry points; each offered
``paper`` value must be described by a parenthesis naming the authors, the release, the paper's own text or the
paper's design, and no description anywhere may call ``paper`` warmeval's own (principled) variant.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import typer

from warmeval.cli import app
from warmeval.scorers.sociot.inspect_scorer import sociot_warmth
from warmeval.scorers.sociot.metric import MODES, sociot_scores
from warmeval.tasks.catalog import ALL_TASKS, argument_docs

REPO = Path(__file__).resolve().parents[1]
# "paper (", "`paper` (", "``paper`` (": an offered value with its description.
OFFERED = re.compile(r"(?<![\w'])`{0,2}paper`{0,2}\s*\(")
MARKERS = ("authors'", "released", "the paper's", "SI section")


def descriptions(text: str) -> list[str]:
    """The parenthesis after each offered ``paper`` in ``text`` (nested parentheses kept)."""
    found = []
    for match in OFFERED.finditer(text):
        depth, start = 0, match.end() - 1
        for end in range(start, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                found.append(text[start + 1 : end])
                break
    return found


def _offers_paper(annotation: Any, default: Any) -> bool:
    return "'paper'" in str(annotation) or default == "paper"


def _cli_options() -> list[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> list[tuple[str, Any]]:
        if getattr(command, "commands", None):
            return [row for name, sub in command.commands.items() for row in walk(sub, [*path, name])]
        return [(" ".join(path), param) for param in command.params if param.param_type_name == "option"]

    return walk(typer.main.get_command(app), [])


def test_descriptions_helper_on_literals() -> None:
    assert descriptions("``paper`` (the authors' rules (quirks)) or ``clean``") == ["the authors' rules (quirks)"]
    assert descriptions("the paper's rows; newspaper (no)") == []


def test_every_task_argument_offering_paper_describes_the_authors_release() -> None:
    checked = 0
    for name, factory in ALL_TASKS.items():
        docs = argument_docs(factory)
        for parameter in inspect.signature(factory).parameters.values():
            text = docs[parameter.name]
            found = descriptions(text)
            if _offers_paper(parameter.annotation, parameter.default):
                assert found, f"{name}: {parameter.name} takes 'paper' but its doc does not describe it: {text}"
            for description in found:
                checked += 1
                assert any(m in description for m in MARKERS), f"{name}: {parameter.name}: paper ({description})"
    # prompt_style, statements, refusal_rule, prompts_file, design, judge_template, system_prompt on four tasks, ...
    assert checked >= 28


def test_every_cli_option_offering_paper_describes_the_authors_release() -> None:
    checked = 0
    for command, option in _cli_options():
        text = option.help or ""
        found = descriptions(text)
        if option.default == "paper":
            assert found, f"{command} --{option.name}: default paper, undescribed: {text}"
        for description in found:
            checked += 1
            assert any(m in description for m in MARKERS), f"{command} --{option.name}: paper ({description})"
    options = {(command, option.name) for command, option in _cli_options() if descriptions(option.help or "")}
    assert {("sociot score", "mode"), ("sociot trajectory", "mode"), ("analyse paired", "layout"),
            ("analyse paired", "refusal_rule"), ("data rewrite", "template")} <= options  # fmt: skip
    assert checked >= 10


def test_sociot_paper_is_the_authors_implementation_everywhere() -> None:
    assert MODES[0] == "paper"
    assert inspect.signature(sociot_scores).parameters["mode"].default == "paper"
    assert inspect.signature(sociot_warmth).parameters["mode"].default == "paper"
    for function in (sociot_scores, sociot_warmth):
        doc = inspect.getdoc(function) or ""
        assert "``paper`` (the authors' implementation" in doc, function.__name__


def test_no_text_calls_paper_warmevals_own_variant() -> None:
    wrong = re.compile(r"`paper`[^.\n]{0,60}principled|principled[^.\n]{0,40}`paper`|mode=\"paper\"` scores only")
    texts = [REPO / "README.md", *REPO.glob("*/*.py"), *REPO.glob("scorers/lm_eval_tasks/*/*.yaml")]
    texts = [path for path in texts if path.resolve() != Path(__file__).resolve()]
    offenders = [str(path) for path in texts if path.is_file() and wrong.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
