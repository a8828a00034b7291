"""lm-eval task folder of warmeval's capability controls on local files (`lm_eval --include_path TASKS_DIR`).

``warmeval_mmlu_local`` (``cais/mmlu`` rows) and ``warmeval_gsm8k_local`` (``openai/gsm8k`` rows) read the JSONL named
by ``--metadata '{"data_path": "FILE"}'``; `warmeval.capability.run_capability_control` runs them for you.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
