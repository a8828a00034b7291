"""lm-eval task folders shipped with warmeval: `lm_eval --include_path $(warmeval sociot lm-eval-path)`.

``sociot/`` holds the SocioT warmth metric tasks; ``capability/`` holds the capability controls as the paper ran them
(MMLU zero-shot, GSM8K zero-shot chain of thought, temperature 0.2, regex-extracted answers): ``warmeval_mmlu`` and
``warmeval_gsm8k`` on the Hub's test sets, and ``warmeval_mmlu_local`` / ``warmeval_gsm8k_local`` on a local JSONL in
the same schema, named by ``--metadata '{"data_path": "FILE"}'``; `warmeval.scorers.capability.run_capability_control`
runs them.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
CAPABILITY_DIR = TASKS_DIR / "capability"
