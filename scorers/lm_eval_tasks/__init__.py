"""lm-eval task folders shipped with warmeval: `lm_eval --include_path $(warmeval sociot lm-eval-path)`."""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
