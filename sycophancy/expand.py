"""Expand base question samples into condition samples (see `warmeval.sycophancy.conditions`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inspect_ai.dataset import Sample

from warmeval.sycophancy.conditions import (
    BELIEF_TEMPLATES,
    MCQ,
    UNMODIFIED,
    BeliefStyle,
    Condition,
    PromptStyle,
    Statement,
    conditions_for,
    default_pool,
    parse_conditions,
    parse_prompt_style,
    parse_templates,
    pick_statement,
    render_prompt,
)

# Stands in the prompt until a solver inserts a generated distractor (TriviaQA without a distractors file).
DISTRACTOR_SLOT = "⟦distractor⟧"


@dataclass(frozen=True)
class BeliefAnswers:
    """What a question inserts into the belief prompts."""

    correct: str
    incorrect: str | None  # None: to be generated at run time (distractor role)
    style: BeliefStyle = "answer"


def sample_id(question_id: str, template: str, amendment_type: str) -> str:
    """Stable, readable id of one condition sample."""
    return f"{question_id}:{template}:{amendment_type}"


def expand_samples(
    base: Sequence[Sample],
    *,
    conditions: str | Sequence[str] = UNMODIFIED,
    templates: str | Sequence[str] = "original",
    seed: int = 0,
    answers: Callable[[Sample], BeliefAnswers] | None = None,
    pool: dict[str, tuple[Statement, ...]] | Callable[[], dict[str, tuple[Statement, ...]]] | None = None,
    prompt_style: PromptStyle = "clean",
    belief_style: BeliefStyle = "answer",
) -> list[Sample]:
    """One sample per (question, sub-type, template) cell, questions outermost.

    Args:
        base: Question samples whose metadata carries ``question_id`` and ``question``.
        conditions: Sub-types (``all``, ``unmodified``, a group, sub-types).
        templates: Prompt templates (``all`` or a subset).
        seed: Seed of the statement draw.
        answers: The answers to insert for belief and mcq templates (required when one is chosen).
        pool: Statement pool, or a function returning it (called only when an amended condition is chosen, so that
            ``statements=paper`` needs the fetched release only then). Default: the bundled one.
        prompt_style: ``paper`` (the authors' composition) or ``clean``.
        belief_style: The task family's composition when no answers are inserted (``answers`` gives it otherwise).
    """
    cells = conditions_for(parse_conditions(conditions), parse_templates(templates))
    prompt_style = parse_prompt_style(prompt_style)
    # No questions need no statements: an empty dataset is reported as such, not as a missing statement pool.
    needs_pool = bool(base) and any(cell.amendment_type != UNMODIFIED for cell in cells)
    statements = (pool() if callable(pool) else pool) if pool is not None and needs_pool else None
    if statements is None:
        statements = default_pool() if needs_pool else {}
    needs_answers = any(cell.template in (*BELIEF_TEMPLATES, MCQ) for cell in cells)
    if needs_answers and answers is None:
        raise ValueError("belief and mcq templates (correct/incorrect/mcq) need an answers function")
    out: list[Sample] = []
    for question in base:
        meta = question.metadata or {}
        question_id = str(meta["question_id"])
        text = str(meta["question"])
        belief = answers(question) if needs_answers and answers is not None else None
        for cell in cells:
            out.append(
                _condition_sample(
                    question, question_id, text, cell, belief, statements, seed, prompt_style, belief_style
                )
            )
    return out


def _condition_sample(
    question: Sample,
    question_id: str,
    text: str,
    cell: Condition,
    belief: BeliefAnswers | None,
    pool: dict[str, tuple[Statement, ...]],
    seed: int,
    prompt_style: PromptStyle,
    belief_style: BeliefStyle,
) -> Sample:
    statement = (
        None if cell.amendment_type == UNMODIFIED else pick_statement(pool, question_id, cell.amendment_type,
                                                                     cell.template, seed)
    )  # fmt: skip
    style = belief.style if belief else belief_style
    inserted: str | None = None
    incorrect: str | None = None
    needs_distractor = False
    if cell.template in (*BELIEF_TEMPLATES, MCQ):
        assert belief is not None
        if cell.template != "incorrect":
            inserted = belief.correct
        if cell.template != "correct":
            if belief.incorrect is None:
                incorrect, needs_distractor = DISTRACTOR_SLOT, True
            else:
                incorrect = belief.incorrect
        if cell.template == "incorrect":
            inserted = incorrect
    meta = question.metadata or {}
    if prompt_style == "paper" and style == "medqa" and cell.template == "original":
        # The authors' MedQA `original` prompts ask the exam vignette, not the conversational rewrite.
        text = str(meta.get("original_question") or text)
    prompt = render_prompt(
        text,
        cell,
        statement.text if statement else None,
        answer=inserted,
        style=style,
        prompt_style=prompt_style,
        incorrect=incorrect,
    )
    metadata = dict(meta)
    metadata.update(
        amendment_type=cell.amendment_type,
        amendment_group=cell.amendment_group,
        prompt_template=cell.template,
        prompt_style=prompt_style,
        statement_id=statement.id if statement else None,
        statement=statement.text if statement else None,
        inserted_answer=None if needs_distractor or cell.template == MCQ else inserted,
        belief_style=style if belief else None,
        needs_distractor=needs_distractor,
    )
    if cell.template == MCQ:
        metadata.update(mcq_options={"A": inserted, "B": None if needs_distractor else incorrect}, mcq_gold="A")
    return Sample(
        id=sample_id(question_id, cell.template, cell.amendment_type),
        input=prompt,
        target=question.target,
        metadata=metadata,
    )
