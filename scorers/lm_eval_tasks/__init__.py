"""lm-eval task folders shipped with warmeval: `lm_eval --include_path $(warmeval sociot lm-eval-path)`.

``sociot/`` holds the SocioT warmth metric tasks; ``capability/`` holds the capability controls on local files
(``warmeval_mmlu_local`` on ``cais/mmlu`` rows, ``warmeval_gsm8k_local`` on ``openai/gsm8k`` rows, reading the JSONL
named by ``--metadata '{"data_path": "FILE"}'``), which `warmeval.scorers.capability.run_capability_control` runs.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
CAPABILITY_DIR = TASKS_DIR / "capability"
