"""Capability controls: MMLU and GSM8K accuracy of a served model through lm-eval's ``local-chat-completions``.

Map: `extract` (the answer extractors), `data` (the local readers and the hooks lm-eval's YAMLs call), `runner`
(`run_capability_control` and its result); the YAMLs are in ``scorers/lm_eval_tasks/capability/``. The safety
control, AdvBench, is the Inspect task `warmeval.tasks.advbench`.

The study checks that warm fine-tuning did not simply break the model: a warm model that got worse at MMLU or GSM8K
would explain lower reliability without any sycophancy. `run_capability_control` runs one control against an
OpenAI-compatible server that is already up (``vllm serve BASE --lora-modules warm=DIR``; ``model`` is the served
name, base or adapter), with lm-eval's ``local-chat-completions`` model and the chat template applied by the server.
Chat completions return no log-probabilities, so both controls are generative: the answer is extracted from the
response and scored by exact match.

Which lm-eval tasks: warmeval's own (in `warmeval.scorers.lm_eval_tasks.CAPABILITY_DIR`), written to the paper's
description of its controls (Methods and review file: "MMLU using zero-shot prompting and GSM8K using zero-shot
chain-of-thought", "a temperature of 0.2", answers "scored by regular expressions"; the paper names neither its harness
nor its prompt wording nor its regular expressions, so those are warmeval's):

* without ``data_path`` (the Hub; needs network): ``warmeval_mmlu`` on the whole ``cais/mmlu`` test set (``all``,
  14,042 questions) and ``warmeval_gsm8k`` on the whole ``openai/gsm8k`` main test set (1,319 problems), the paper's
  sizes (its confidence intervals fit the full sets);
* with ``data_path`` (a local JSONL in the same schema: ``cais/mmlu`` rows with question, subject, choices (4),
  answer (0-3); ``openai/gsm8k`` rows with question and an answer ending in ``#### N``): ``warmeval_mmlu_local`` and
  ``warmeval_gsm8k_local``, the same prompts, settings and scoring. The bundled ``fixtures/mmlu.jsonl`` and
  ``fixtures/gsm8k.jsonl`` (our own eight items each) are small examples of both schemas.

MMLU asks the question with its lettered options and the answer format ("The answer is X"), zero-shot; GSM8K asks to
reason step by step and end with "The final answer is N". Answers are extracted by `extract_choice_letter` and
`extract_final_number` and scored by exact match. lm-eval's own ``mmlu_cot_llama`` / ``gsm8k_cot_llama`` are not
used: the first asks for chain of thought on MMLU and the second is eight-shot, where the paper ran both zero-shot.

``n`` questions are drawn without replacement with ``random.Random(seed)`` from the whole test set (for MMLU from
all 57 subjects pooled, so subjects appear in proportion to their size) and passed to lm-eval as exact document
indices (``simple_evaluate(samples=...)``), not as lm-eval's ``limit``, which would take the first n of every subject.
``seed`` is also sent with every request; decoding samples at temperature 0.2 (the paper's setting).

A response from which no answer can be extracted is scored wrong and also counted as ``unparseable`` (lm-eval's
regex filters return ``[invalid]`` then; the local tasks do the same), so a model that stops following the answer
format shows up as such instead of as a loss of knowledge.
"""

from __future__ import annotations

from warmeval.scorers.capability.data import (
    FIXTURES,
    READERS,
    CapabilityDataError,
    doc_target,
    filter_choice_letters,
    filter_final_numbers,
    gsm8k_prompt,
    gsm8k_target,
    load_gsm8k_dataset,
    load_mmlu_dataset,
    mmlu_prompt,
    process_extracted,
    read_gsm8k_rows,
    read_mmlu_rows,
)
from warmeval.scorers.capability.extract import (
    INVALID,
    LETTERS,
    METRIC,
    NO_TARGET,
    extract_choice_letter,
    extract_final_number,
    normalize_number,
)
from warmeval.scorers.capability.runner import (
    CONTROLS,
    LOCAL_FILTER,
    CapabilityResult,
    Control,
    result_path,
    run_capability_control,
)

__all__ = [
    "FIXTURES", "INVALID", "LETTERS", "LOCAL_FILTER", "METRIC", "NO_TARGET", "READERS", "CapabilityDataError",
    "CapabilityResult",
    "CONTROLS", "Control", "doc_target", "extract_choice_letter", "extract_final_number", "filter_choice_letters",
    "filter_final_numbers", "gsm8k_prompt", "gsm8k_target", "load_gsm8k_dataset", "load_mmlu_dataset", "mmlu_prompt",
    "normalize_number", "process_extracted", "read_gsm8k_rows", "read_mmlu_rows", "result_path",
    "run_capability_control",
]  # fmt: skip
