"""Thin shim: lm-eval re-executes this file per !function, so the real code lives in warmeval.scorers.capability."""

from warmeval.scorers.capability import (  # noqa: F401
    doc_target,
    filter_choice_letters,
    filter_final_numbers,
    gsm8k_prompt,
    load_gsm8k_dataset,
    load_mmlu_dataset,
    mmlu_prompt,
    process_extracted,
)
