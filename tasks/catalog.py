"""The tasks by name, and their reference: the README's per-task sections are generated from the code here.

``python -m warmeval.tasks.catalog`` rewrites those sections of README.md (between ``<!-- task:NAME -->`` markers)
from each task's signature, docstring, ``VERSION`` and ``CHANGELOG``; a test fails when they drift apart.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warmeval.tasks import advbench, disinfo, medqa_conv, sociot_generations, triviaqa, truthfulqa

TASKS: dict[str, Callable[..., Any]] = {
    "triviaqa": triviaqa.triviaqa,
    "truthfulqa": truthfulqa.truthfulqa,
    "disinfo": disinfo.disinfo,
    "medqa_conv": medqa_conv.medqa_conv,
}

# The safety control; not one of the four reliability tasks.
CONTROL_TASKS: dict[str, Callable[..., Any]] = {"advbench": advbench.advbench}

# Every task warmeval registers with Inspect, with the module that holds its VERSION and CHANGELOG.
MODULES = {"triviaqa": triviaqa, "truthfulqa": truthfulqa, "disinfo": disinfo, "medqa_conv": medqa_conv,
           "advbench": advbench, "sociot_generations": sociot_generations}  # fmt: skip
ALL_TASKS: dict[str, Callable[..., Any]] = {name: getattr(module, name) for name, module in MODULES.items()}


def declared(task_name: str, attribute: str) -> Any:
    """What a task's module declares for the runner (`experiment_args`, `CONTROL_METRIC`), or None; ``task_name`` may
    carry a registry prefix (``warmeval/advbench``)."""
    module = MODULES.get(task_name.split("/")[-1])
    return getattr(module, attribute, None) if module is not None else None


def argument_docs(factory: Callable[..., Any]) -> dict[str, str]:
    """The ``Args:`` section of a task's docstring, one line per argument."""
    doc = inspect.getdoc(factory) or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    found: dict[str, str] = {}
    current = None
    for line in section.split("\n"):
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current and line.startswith("        "):
            found[current] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return found


def task_reference(name: str) -> str:
    """The README section of one task: version, ``-T`` arguments with defaults and meaning, changelog."""
    module, factory = MODULES[name], ALL_TASKS[name]
    summary = (inspect.getdoc(module) or "").split("\n")[0]
    docs = argument_docs(factory)
    lines = [f"#### `warmeval/{name}` (version {module.VERSION})", "", summary, "",
             "| `-T` argument | default | meaning |", "| --- | --- | --- |"]  # fmt: skip
    for parameter in inspect.signature(factory).parameters.values():
        default = "required" if parameter.default is inspect.Parameter.empty else f"`{parameter.default!r}`"
        meaning = docs.get(parameter.name, "").replace("|", "\\|")
        lines.append(f"| `{parameter.name}` | {default} | {meaning} |")
    lines += ["", "Changelog: " + "; ".join(f"{v}: {text}" for v, text in sorted(module.CHANGELOG.items())) + "."]
    return "\n".join(lines)


def render_readme(text: str) -> str:
    """``text`` with every ``<!-- task:NAME -->...<!-- /task:NAME -->`` block regenerated."""

    def block(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"<!-- task:{name} -->\n{task_reference(name)}\n<!-- /task:{name} -->"

    return re.sub(r"<!-- task:(\w+) -->.*?<!-- /task:\1 -->", block, text, flags=re.S)


def main(argv: list[str] | None = None) -> int:
    """Rewrite the per-task sections of README.md (``--check``: exit 1 when they are out of date)."""
    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[-1]) if args and not args[-1].startswith("--") else Path("README.md")
    text = readme.read_text(encoding="utf-8")
    rendered = render_readme(text)
    if "--check" in args:
        return 0 if rendered == text else 1
    readme.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
