"""The README's per-task reference is generated from the code and cannot drift; every task is versioned."""

from __future__ import annotations

import inspect
from pathlib import Path

from inspect_ai import Task

from warmeval.tasks.catalog import ALL_TASKS, MODULES, argument_docs, main, render_readme, task_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_task_sections_are_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_readme(text) == text, "README task sections are stale: run python -m warmeval.tasks.catalog"
    for name in ALL_TASKS:
        assert f"<!-- task:{name} -->\n{task_reference(name)}\n<!-- /task:{name} -->" in text


def test_every_argument_is_documented_and_every_task_versioned() -> None:
    for name, factory in ALL_TASKS.items():
        documented = argument_docs(factory)
        parameters = list(inspect.signature(factory).parameters)
        assert sorted(documented) == sorted(parameters), name
        module = MODULES[name]
        assert module.VERSION == max(module.CHANGELOG), name


def test_a_stale_section_is_found_and_rewritten(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- task:advbench -->\nold text\n<!-- /task:advbench -->\nend\n")
    assert main(["--check", str(readme)]) == 1
    assert main([str(readme)]) == 0 and main(["--check", str(readme)]) == 0
    assert "| `data_path` |" in readme.read_text() and "old text" not in readme.read_text()


def test_the_version_reaches_the_task(tmp_path: Path) -> None:
    from warmeval.tasks.advbench import advbench

    fixture = Path(__file__).resolve().parents[1] / "warmeval" / "fixtures" / "advbench.csv"
    task = advbench(data_path=str(fixture))
    assert isinstance(task, Task) and task.version == MODULES["advbench"].VERSION
