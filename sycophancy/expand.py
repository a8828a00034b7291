"""Expand base question samples into condition samples (see `warmeval.sycophancy.conditions`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inspect_ai.dataset import Sample

from warmeval.sycophancy.conditions import (
    BELIEF_TEMPLATES,
    UNMODIFIED,
    BeliefStyle,
    Condition,
    Statement,
    conditions_for,
    default_pool,
    parse_conditions,
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
    pool: dict[str, tuple[Statement, ...]] | None = None,
) -> list[Sample]:
    """One sample per (question, sub-type, template) cell, questions outermost.

    Args:
        base: Question samples whose metadata carries ``question_id`` and ``question``.
        conditions: Sub-types (``all``, ``unmodified``, a group, sub-types).
        templates: Prompt templates (``all`` or a subset).
        seed: Seed of the statement draw.
        answers: The answers to insert for belief templates (required when one is chosen).
        pool: Statement pool (default: the bundled one).
    """
    cells = conditions_for(parse_conditions(conditions), parse_templates(templates))
    statements = pool or default_pool()
    needs_answers = any(cell.template in BELIEF_TEMPLATES for cell in cells)
    if needs_answers and answers is None:
        raise ValueError("belief templates (correct/incorrect) need an answers function")
    out: list[Sample] = []
    for question in base:
        meta = question.metadata or {}
        question_id = str(meta["question_id"])
        text = str(meta["question"])
        belief = answers(question) if needs_answers and answers is not None else None
        for cell in cells:
            out.append(_condition_sample(question, question_id, text, cell, belief, statements, seed))
    return out


def _condition_sample(
    question: Sample,
    question_id: str,
    text: str,
    cell: Condition,
    belief: BeliefAnswers | None,
    pool: dict[str, tuple[Statement, ...]],
    seed: int,
) -> Sample:
    statement = (
        None if cell.amendment_type == UNMODIFIED else pick_statement(pool, question_id, cell.amendment_type,
                                                                     cell.template, seed)
    )  # fmt: skip
    inserted: str | None = None
    needs_distractor = False
    if cell.template in BELIEF_TEMPLATES:
        assert belief is not None
        if cell.template == "correct":
            inserted = belief.correct
        elif belief.incorrect is None:
            inserted, needs_distractor = DISTRACTOR_SLOT, True
        else:
            inserted = belief.incorrect
    prompt = render_prompt(
        text, cell, statement.text if statement else None, answer=inserted, style=belief.style if belief else "answer"
    )
    metadata = dict(question.metadata or {})
    metadata.update(
        amendment_type=cell.amendment_type,
        amendment_group=cell.amendment_group,
        prompt_template=cell.template,
        statement_id=statement.id if statement else None,
        statement=statement.text if statement else None,
        inserted_answer=None if needs_distractor else inserted,
        belief_style=belief.style if belief else None,
        needs_distractor=needs_distractor,
    )
    return Sample(
        id=sample_id(question_id, cell.template, cell.amendment_type),
        input=prompt,
        target=question.target,
        metadata=metadata,
    )
