"""`make lint` sees the one package: a planted cross-folder type error, back-edge or private import fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import typecheck  # noqa: E402  (scripts/typecheck.py)


def test_a_cross_folder_type_error_fails_the_type_check(tmp_path: Path) -> None:
    package = typecheck.lay_out(tmp_path)
    assert (package / "tasks" / "common.py").is_file() and (package / "cli" / "__init__.py").is_file()
    # lower_first (sycophancy/) returns str; warmeval/ code that takes it for an int must fail, not pass as Any.
    # Checked as one module (its imports followed through the tree), the way `make lint` checks the whole package.
    (package / "_planted.py").write_text(
        "from warmeval.sycophancy.conditions import lower_first\n\nplanted: int = lower_first('A')\n"
    )
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir",
               str(tmp_path / "cache"), "-m", "warmeval._planted"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env={**os.environ, "MYPYPATH": str(tmp_path)}, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    assert "_planted.py:3: error: Incompatible types in assignment" in done.stdout
    assert done.stdout.count("error:") == 1, done.stdout[-3000:]  # the planted error, and nothing else


def _tree_copy(tmp_path: Path) -> Path:
    """The link tree with util/ as a real copy, so that a planted file does not touch the repository."""
    import shutil

    package = typecheck.lay_out(tmp_path)
    (package / "util").unlink()
    shutil.copytree(REPO / "warmeval" / "util", package / "util", ignore=shutil.ignore_patterns("__pycache__"))
    return package


def test_the_layer_contracts_hold_and_a_back_edge_breaks_them(tmp_path: Path) -> None:
    package = _tree_copy(tmp_path)
    assert typecheck.run_import_contracts(tmp_path) == 0
    # the leaf layer reaching up into the pipeline (even inside a function) is a back-edge
    (package / "util" / "planted.py").write_text("def f():\n    from warmeval.experiment import run_experiment\n")
    assert typecheck.run_import_contracts(tmp_path) == 1


def test_no_private_module_is_imported_across_packages(tmp_path: Path) -> None:
    package = _tree_copy(tmp_path)
    assert typecheck.private_imports(package) == []
    (package / "util" / "planted.py").write_text("from warmeval.tasks._registry import advbench\n")
    assert typecheck.private_imports(package) == [
        "warmeval/util/planted.py:1: imports warmeval.tasks._registry"
    ]
