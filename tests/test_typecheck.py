"""`make lint`'s type check sees across folders: a planted cross-folder type error fails it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import typecheck  # noqa: E402  (scripts/typecheck.py)


@pytest.mark.slow
def test_a_cross_folder_type_error_fails_the_type_check(tmp_path: Path) -> None:
    package = typecheck.lay_out(tmp_path)
    assert (package / "tasks" / "_common.py").is_file() and (package / "cli.py").is_file()
    # stable_id (tasks/) returns str; core/ code that takes it for an int must fail, not pass as Any
    (package / "_planted.py").write_text(
        "from warmeval.tasks._common import stable_id\n\nplanted: int = stable_id('a', 'b')\n"
    )
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir",
               str(tmp_path / "cache"), "-p", "warmeval"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env={**os.environ, "MYPYPATH": str(tmp_path)}, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    assert "_planted.py:3: error: Incompatible types in assignment" in done.stdout
    assert done.stdout.count("error:") == 1, done.stdout[-3000:]  # the planted error, and nothing else
