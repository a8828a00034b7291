"""Packaging: the wheel builds without a setuptools warning and ships every data folder the code reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_builds_without_warnings_and_ships_its_data(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    source = tmp_path / "src"
    for name in tracked:  # a clean checkout: no build/ or egg-info left over from the editable install
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path / "wheels"), str(source)], capture_output=True, text=True)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    # pip's own notes about this machine's index locations are not the project's
    warnings = [line for line in (built.stdout + built.stderr).splitlines()
                if "warning" in line.lower() and "Location 'file:" not in line]  # fmt: skip
    assert warnings == []
    (wheel,) = (tmp_path / "wheels").glob("warmeval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("warmeval/fixtures/triviaqa.jsonl", "warmeval/solvers/prompts/warm_system.j2",
                    "warmeval/training/prompts/rewrite_warm.j2", "warmeval/sycophancy/statements.yaml",
                    "warmeval/scorers/lm_eval_tasks/sociot/sociot_warmth_file.yaml",
                    "warmeval/scorers/lm_eval_tasks/capability/warmeval_mmlu.yaml",
                    "warmeval/tasks/triviaqa.py", "warmeval/analysis/paper_results.py",
                    "warmeval/cli/analysis.py"):  # fmt: skip
        assert shipped in names, shipped
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
