"""AdvBench harmful behaviours: the safety control of the warm-persona study (refusal rate, judged by a model).

Control task of Ibrahim, Hafner & Rocher, "Training language models to be warm can reduce accuracy and increase
sycophancy" (Nature 2026, arXiv 2507.21919): warm fine-tuning should not change how often a model refuses harmful
requests. Zou et al. 2023 for the data.

    inspect eval warmeval/advbench --model vllm/meta-llama/Llama-3.1-8B-Instruct
    inspect eval tasks/advbench.py --model hf//path/to/model -T data_path=harmful_behaviors.csv -T n=50

Source: Hugging Face ``walledai/AdvBench`` (split ``train``: ``prompt``, ``target``), or ``-T data_path=`` a local
CSV/JSONL with ``prompt`` (or the original CSV's ``goal``). The ``grader`` role (unbound: the paper's judge,
``openai/gpt-4o-2024-08-06``, at temperature 0) judges each response REFUSED or COMPLIED (strictly parsed; anything else
is NOANSWER and counted). Metrics (`scorers.judges.refusal_judge`): ``judged_refusal_rate`` (over judged responses),
``judged_refusal_stderr`` and ``unparseable_rate``. Defaults: all 520 prompts (``-T n=`` to sample); max 300 tokens,
temperature 0.8.
"""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.solver import generate

from warmeval.scorers.judges.judge import check_judge_while_building, judge_preflight
from warmeval.scorers.judges.refusal_judge import REFUSAL_JUDGE_TEMPLATE, parse_refusal_verdict, refusal_judge
from warmeval.solvers import system_prompt_record, system_prompt_solver
from warmeval.sycophancy.paper_texts import PaperTextError
from warmeval.tasks.common import (
    PAPER_GENERATE_CONFIG,
    DataError,
    Record,
    build_dataset,
    check_task_args,
    load_hf_records,
    read_local_records,
    stable_id,
)

VERSION = 2
# What ``warmeval run`` reports for this control: (metric, its standard error) from the log's results.
CONTROL_METRIC = ("judged_refusal_rate", "judged_refusal_stderr")
# What the judge reads for each sample (besides the prompt and the response): `warmeval run --plan` counts it.
JUDGE_PROMPT = REFUSAL_JUDGE_TEMPLATE
# Bump VERSION when a change alters the samples or the scores; say what changed here.
CHANGELOG = {
    1: ("first release: AdvBench's 520 harmful requests, refusal judged REFUSED/COMPLIED by the grader role"),
    2: "the paper's judge (openai/gpt-4o-2024-08-06) when no grader role is bound, checked before the first sample",
}

HF_PATH = "walledai/AdvBench"
HF_SPLIT = "train"
__all__ = ["REFUSAL_JUDGE_TEMPLATE", "advbench", "parse_refusal_verdict", "record_to_sample", "refusal_judge"]


def record_to_sample(record: Record) -> Sample:
    """One AdvBench behaviour (``prompt`` or ``goal``) to a sample."""
    prompt = str(record.get("prompt") or record.get("goal") or "").strip()
    if not prompt:
        raise DataError("missing or empty field 'prompt' (or 'goal')")
    question_id = stable_id("advbench", prompt)
    return Sample(id=question_id, input=prompt, target=str(record.get("target") or ""),
                  metadata={"task": "advbench", "question_id": question_id, "question": prompt})  # fmt: skip


@task
def advbench(
    data_path: str | None = None, n: int | None = None, seed: int = 0, system_prompt: str | None = None
) -> Task:
    """AdvBench refusal rate.

    Args:
        data_path: Local CSV/JSONL instead of the Hugging Face dataset.
        n: Number of prompts to sample (default: all).
        seed: Sampling seed.
        system_prompt: ``paper`` (the paper's warm system prompt, SI section 1.2, once supplied with ``warmeval
            stimuli texts --set warm_system_prompt=FILE``), ``warm`` (warmeval's own wording), ``none`` (default) or
            a path to a system prompt file.
    """
    check_task_args(advbench, locals())
    if data_path:
        records, source = read_local_records(data_path), str(data_path)
    else:
        records, source = load_hf_records(HF_PATH, None, HF_SPLIT), HF_PATH
    try:
        system = system_prompt_solver(system_prompt)
    except PaperTextError as error:
        raise DataError(f"system_prompt={system_prompt}: {error}") from error
    dataset = build_dataset(records, record_to_sample, name="advbench", source=source, n=n, seed=seed)
    check_judge_while_building()
    return Task(
        dataset=dataset,
        solver=[judge_preflight(), *([system] if system else []), generate()],
        scorer=refusal_judge(),
        config=PAPER_GENERATE_CONFIG,
        version=VERSION,
        metadata={
            "source": source,
            "n": n,
            "seed": seed,
            "system_prompt": system_prompt or "none",
            "system_prompt_text": system_prompt_record(system_prompt),
        },  # fmt: skip
    )
