"""Static checks on warmeval as the one package it is installed as: types across folders, layers, private modules.

The installed layout maps ``warmeval/`` to ``warmeval`` and the top-level folders (tasks, solvers, scorers, training,
sycophancy, analysis) to ``warmeval.<folder>`` through an import hook that mypy cannot follow: checked folder by
folder, every cross-folder import would be ``Any``. This lays out that mapping as a tree of links under
``build/typecheck/warmeval`` and, on it:

1. ``mypy -p warmeval`` with the project's mypy settings;
2. ``lint-imports`` with the layer contract of ``[tool.importlinter]`` in pyproject.toml (pipeline over domain packages
   over the ``util`` leaf: no back-edges);
3. a check that no module imports another package's private module (``warmeval.tasks._x`` from outside ``tasks``).

    python scripts/typecheck.py              # what `make lint` runs
    python scripts/typecheck.py --tree DIR   # lay out the tree only (the tests plant a type error in a copy)
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT_PACKAGE = "warmeval"
SUBPACKAGES = ("tasks", "solvers", "scorers", "training", "sycophancy", "analysis")


def lay_out(tree: Path, repo: Path = REPO) -> Path:
    """Create ``tree/warmeval`` as links to the package's files and folders; returns the package folder."""
    package = tree / "warmeval"
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    for entry in sorted((repo / ROOT_PACKAGE).iterdir()):
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in SUBPACKAGES:
        (package / name).symlink_to(repo / name)
    return package


def run_mypy(tree: Path, repo: Path = REPO) -> int:
    """``mypy -p warmeval`` on the tree, with the project's settings and a cache kept between runs."""
    command = [sys.executable, "-m", "mypy", "--config-file", str(repo / "pyproject.toml"),
               "--cache-dir", str(repo / "build" / "mypy-cache"), "-p", "warmeval"]  # fmt: skip
    env = {**os.environ, "MYPYPATH": str(tree)}
    return subprocess.run(command, cwd=tree, env=env, check=False).returncode


def run_import_contracts(tree: Path, repo: Path = REPO) -> int:
    """``lint-imports`` on the tree with the contracts of pyproject.toml; 0 when every contract is kept."""
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; c()",
               str(repo / "pyproject.toml"), "--no-cache"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(command, cwd=tree, env=env, check=False).returncode


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _private_outside(name: str, module: str) -> bool:
    """Whether ``name`` has a private part (``_x``) owned by a package that ``module`` is not inside."""
    pieces = name.split(".")
    if pieces[0] != "warmeval":
        return False
    for depth, piece in enumerate(pieces[1:], start=1):
        if piece.startswith("_") and not piece.startswith("__"):
            return not module.startswith(".".join(pieces[:depth]) + ".")
    return False


def private_imports(package: Path) -> list[str]:
    """``file:line: module`` for every import of another package's private module (a ``_name`` part)."""
    found = []
    for file in sorted(package.rglob("*.py")):
        parts = file.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            offending = [name for name in _imported_modules(node) if _private_outside(name, module)]
            if offending:
                found.append(f"{file.relative_to(package.parent)}:{node.lineno}: imports {offending[0]}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO / "build" / "typecheck", help="where to lay out the tree")
    parser.add_argument("--layout-only", action="store_true", help="lay out the tree, do not run mypy")
    args = parser.parse_args(argv)
    package = lay_out(args.tree)
    if args.layout_only:
        return 0
    failures = 0
    if run_mypy(args.tree):
        failures += 1
    if run_import_contracts(args.tree):
        failures += 1
    private = private_imports(package)
    for line in private:
        print(f"{line}: a private module of another package (make it public or move the code)")
    failures += bool(private)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
