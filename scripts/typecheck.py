"""Type-check warmeval as the one package it is installed as, so that every ``warmeval.*`` import resolves.

The installed layout maps ``core/`` to ``warmeval`` and the top-level folders (tasks, solvers, scorers, training,
sycophancy, analysis) to ``warmeval.<folder>`` through an import hook that mypy cannot follow: checked folder by
folder, every cross-folder import would be ``Any``. This lays out that mapping as a tree of links under
``build/typecheck/warmeval`` and runs ``mypy -p warmeval`` on it with the project's mypy settings.

    python scripts/typecheck.py              # what `make lint` runs
    python scripts/typecheck.py --tree DIR   # lay out the tree only (the tests plant a type error in a copy)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT_PACKAGE = "core"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO / "build" / "typecheck", help="where to lay out the tree")
    parser.add_argument("--layout-only", action="store_true", help="lay out the tree, do not run mypy")
    args = parser.parse_args(argv)
    lay_out(args.tree)
    return 0 if args.layout_only else run_mypy(args.tree)


if __name__ == "__main__":
    sys.exit(main())
