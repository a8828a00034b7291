"""Thin shim: lm-eval reloads this file per !function, so the real code lives in warmeval.scorers.sociot.lm_eval."""

from warmeval.scorers.sociot.lm_eval import (  # noqa: F401
    load_prompts,
    load_texts,
    process_file_doc,
    process_generation,
)
