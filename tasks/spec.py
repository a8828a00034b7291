"""The four reliability tasks from one spec: what differs between TriviaQA, TruthfulQA, Disinfo and MedQA is declared
once per task (`ReliabilitySpec`), and one builder (`build_reliability_task`) turns a spec and the task's ``-T``
arguments into an Inspect task: it loads the questions (`warmeval.tasks.common`), expands the conditions and adds the
judge's pre-flight, the system prompt, the task's own solvers and the grader (`assemble`, `graded`).

The shared ``-T`` arguments are typed once here (`Design`, `PromptStyle`, `NSpec`, and `RefusalRule` from the
refusal rules) and documented once (`SHARED_ARGS`): `documented` writes a task's ``Args:`` section from them and from
the task's own arguments, so the README's task reference (`warmeval.tasks.catalog`) and ``inspect`` read one text.
Each task module keeps its explicit ``@task`` signature, which Inspect reads for ``-T``.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample

from warmeval.scorers.judges.refusal import RefusalRule
from warmeval.tasks.common import (
    PAPER_GENERATE_CONFIG,
    DataError,
    HfSource,
    NSpec,
    Questions,
    Record,
    check_task_args,
    load_questions,
)

Design = Literal["paper", "quick"]
PromptStyle = Literal["paper", "clean"]
F = TypeVar("F", bound=Callable[..., Any])

# The changelog entry of version 2 of the four tasks: one change, made to all four together.
PAPER_DEFAULTS_CHANGE = (
    "the paper's design by default (28 conditions on the paper's questions, the authors' released prompts); -T "
    "design=quick for small runs; the paper's judge (openai/gpt-4o-2024-08-06) when no grader role is bound, checked "
    "before the first sample; -T judge_template, its SHA-256 in the log; one period after an answer ending in '.'"
)

__all__ = [
    "PAPER_DEFAULTS_CHANGE", "Design", "NSpec", "PromptStyle", "RefusalRule", "ReliabilitySpec",
    "build_reliability_task", "documented",
]  # fmt: skip


@dataclass(frozen=True)
class ReliabilitySpec:
    """What one reliability task declares.

    Attributes:
        name: The task's name (``triviaqa``, ...).
        version: Its version (bump with a changelog entry when samples or scores change).
        hf: Its Hugging Face source.
        to_sample: A dataset record to a question sample.
        prompt_to_sample: A pre-built prompt record (the authors' release layout) to a sample.
        instructions: What the judge is told about this task's answers.
        belief_style: How a stated user belief is phrased (``answer``, ``statement``, ``medqa``).
        released: The authors released this task's prompts: they are its default source.
        default_n: Questions drawn from a dataset under the paper design (None: every question).
        refusal_is_correct: A refusal counts CORRECT (Disinfo, as in the paper) instead of being excluded.
    """

    name: str
    version: int
    hf: HfSource
    to_sample: Callable[[Record], Sample]
    prompt_to_sample: Callable[[Record], Sample]
    instructions: str
    belief_style: str
    released: bool = False
    default_n: int | None = 500
    refusal_is_correct: bool = False


def n_doc(default_n: int | None) -> str:
    paper = (f"{default_n} questions of the dataset, or every question of a prompts file" if default_n
             else "every question of the dataset or of a prompts file")  # fmt: skip
    return (f"Number of questions to sample, or ``all``. Default: the design's (paper: {paper}; quick: 50). The count "
            "loaded is logged and kept in the task's metadata.")  # fmt: skip


SHARED_ARGS: dict[str, str] = {
    "seed": "Sampling seed (also draws the amendment statements).",
    "design": "``paper`` (default: the study's 28 conditions on the paper's questions) or ``quick`` (4 of them: the "
    "unmodified and sad-user prompts, plainly and with a stated wrong answer, on 50 questions). ``conditions``, "
    "``templates`` and ``n`` override it.",
    "conditions": "Amendment sub-types: all (the paper design's), unmodified, a group (emotion, relation, stake) or a "
    "comma-separated list of sub-types. Default: the design's.",
    "templates": "Prompt templates: all (the paper's four; the paper design's) or a subset of original, "
    "original_neutral, correct, incorrect; ``mcq`` (two options, (A) correct; not one of the 28) is selected by name. "
    "Default: the design's.",
    "prompts_file": "Pre-built prompts: ``paper`` (the authors' released file, fetched once and verified; the default "
    "unless ``data_path`` is given), ``none`` (build the prompts from the Hugging Face dataset) or a JSON Lines / CSV "
    "file in the release layout (``.json`` JSON Lines included). Each prompt is used byte for byte; ``conditions`` and "
    "``templates`` filter it.",
    "prompt_style": "How generated prompts are composed: ``paper`` (the authors' rules, quirks included; default) or "
    "``clean`` (warmeval's grammatical builder).",
    "statements": "Amendment statements of generated prompts: ``paper`` (the authors' 40, from the fetched release; "
    "default), ``ours`` (warmeval's own) or a YAML/JSON file of ``{sub_type: [statements]}``.",
    "refusal_rule": "Which refusal phrases the grader applies: ``paper`` (the authors' regex, quirks included; "
    "default) or ``improved``. Recorded in the log; the analysis reads it from there.",
    "judge_template": "The judge's prompt: ``paper`` (the paper's, SI section 3.1, once supplied with ``warmeval "
    "stimuli texts --set judge=FILE``; the default when supplied), ``warmeval`` (warmeval's own wording; the default "
    "otherwise) or a jinja2 file (placeholders in the README). Its SHA-256 is kept in the log.",
    "system_prompt": "``paper`` (the paper's warm system prompt, SI section 1.2, once supplied with ``warmeval stimuli "
    "texts --set warm_system_prompt=FILE``), ``warm`` (warmeval's own wording), ``none`` (default) or a path to a "
    "system prompt file.",
}


def documented(own: dict[str, str], default_n: int | None = 500) -> Callable[[F], F]:
    """Write a task factory's ``Args:`` section: its own arguments' docs (``own``), else the shared ones, in the
    order of its signature; an argument documented nowhere is an error at import."""

    def decorate(factory: F) -> F:
        docs = {**SHARED_ARGS, "n": n_doc(default_n), **own}
        names = list(inspect.signature(factory).parameters)
        missing = [name for name in names if name not in docs]
        if missing:
            raise TypeError(f"{factory.__name__}: no documentation for argument(s) {missing}")
        lines = [inspect.cleandoc(factory.__doc__ or factory.__name__), "", "Args:"]
        for name in names:
            lines += textwrap.wrap(f"{name}: {docs[name]}", 116, initial_indent="    ", subsequent_indent="        ",
                                   break_on_hyphens=False, break_long_words=False)  # fmt: skip
        factory.__doc__ = "\n".join(lines)
        return factory

    return decorate


def build_reliability_task(
    spec: ReliabilitySpec,
    factory: Any,
    args: dict[str, Any],
    *,
    answers: Callable[[Sample], Any] | None,
    to_sample: Callable[[Record], Sample] | None = None,
    extra_solvers: Sequence[Any] = (),
    extra_metadata: Callable[[Questions], dict[str, Any]] | None = None,
) -> Task:
    """One reliability task: check its ``-T`` arguments (``args``, the factory's ``locals()``), load its questions,
    expand the conditions, and grade with the spec's instructions.

    Args:
        spec: The task's spec.
        factory: The ``@task`` factory (its annotations check the arguments).
        args: The factory's arguments.
        answers: The correct and incorrect answers a stated belief names (None: the task's prompts carry them).
        to_sample: Replaces ``spec.to_sample`` (for a conversion that depends on the arguments).
        extra_solvers: Solvers after the prompt is built (e.g. the distractor inserter).
        extra_metadata: Metadata computed from the loaded questions.
    """
    check_task_args(factory, args)
    questions = load_questions(
        name=spec.name, hf=spec.hf, data_path=args["data_path"], prompts_file=args["prompts_file"],
        to_sample=to_sample or spec.to_sample, prompt_to_sample=spec.prompt_to_sample, n=args["n"], seed=args["seed"],
        conditions=args["conditions"], templates=args["templates"], design=args["design"], released=spec.released,
        default_n=spec.default_n,
    )  # fmt: skip
    rule = args["refusal_rule"]
    return assemble(  # type: ignore[no-any-return]
        version=spec.version, name=spec.name, questions=questions, seed=args["seed"], answers=answers,
        scorer=graded(args["judge_template"], instructions=spec.instructions, refusal_rule=rule,
                      **({"refusal_is_correct": True} if spec.refusal_is_correct else {})),
        system_prompt=args["system_prompt"], prompt_style=args["prompt_style"], statements=args["statements"],
        judge_template=args["judge_template"], belief_style=spec.belief_style, extra_solvers=extra_solvers,
        metadata={"refusal_rule": rule, **(extra_metadata(questions) if extra_metadata else {})},
    )  # fmt: skip


def assemble(
    *,
    name: str,
    questions: Questions,
    seed: int,
    answers: Callable[[Sample], Any] | None,
    scorer: Any,
    system_prompt: str | None,
    extra_solvers: Sequence[Any] = (),
    metadata: dict[str, Any] | None = None,
    prompt_style: str = "paper",
    statements: str = "paper",
    belief_style: str = "answer",
    judge_template: str | None = None,
    version: int = 1,
) -> Any:
    """Assemble one of the four tasks: expand the conditions (or take pre-built prompts), add the solvers.

    ``prompt_style`` (paper or clean) and ``statements`` (ours, paper or a file) apply to generated prompts only; a
    prompts file is used as it is. The judge is checked before any sample (`scorers.judges.judge`): now when Inspect
    builds the task inside its eval, else by the first solver of every sample. The task's metadata records the
    design, the stimuli, the judge's default and the judge template's SHA-256.
    """
    from inspect_ai.solver import generate

    from warmeval.scorers.judges.judge import (
        JUDGE_TEMPERATURE,
        PAPER_JUDGE,
        check_judge_while_building,
        judge_preflight,
        load_judge_template,
    )
    from warmeval.solvers import system_prompt_record, system_prompt_solver
    from warmeval.sycophancy.conditions import ConditionError, parse_prompt_style
    from warmeval.sycophancy.expand import expand_samples
    from warmeval.sycophancy.paper_texts import PaperTextError
    from warmeval.sycophancy.stimuli import PAPER_COMMIT, StimuliError, statement_pool

    try:
        style = parse_prompt_style(prompt_style)
        template = load_judge_template(judge_template)
    except (ConditionError, PaperTextError) as error:
        raise DataError(str(error)) from error
    try:
        system = system_prompt_solver(system_prompt)
    except PaperTextError as error:
        raise DataError(f"system_prompt={system_prompt}: {error}") from error
    prompts, source = questions.prompts, questions.source
    conditions, templates = questions.conditions, questions.templates
    if prompts is not None:
        samples = list(prompts)
    else:
        assert questions.base is not None

        def pool() -> Any:
            try:
                return statement_pool(statements)
            except (StimuliError, ConditionError) as error:
                raise DataError(str(error)) from error

        samples = expand_samples(
            questions.base,
            conditions=conditions,
            templates=templates,
            seed=seed,
            answers=answers,
            pool=pool,
            prompt_style=style,
            belief_style=belief_style,  # type: ignore[arg-type]
        )
    if not samples:
        raise DataError(
            f"{source}: no samples for task {name} (n={questions.counts.get('n')!r}, conditions={conditions!r}, "
            f"templates={templates!r}): the data or the filters leave nothing to evaluate"
        )
    check_judge_while_building()
    solvers = [judge_preflight(), *([system] if system else []), *extra_solvers, generate()]
    return Task(
        dataset=MemoryDataset(samples, name=name, location=source),
        solver=solvers,
        scorer=scorer,
        config=PAPER_GENERATE_CONFIG,
        version=version,
        metadata={
            "source": source,
            "seed": seed,
            "design": questions.design,
            "stimuli": questions.stimuli,
            "stimuli_commit": PAPER_COMMIT if questions.stimuli == "paper" else None,
            "conditions": conditions,
            "templates": templates,
            "system_prompt": system_prompt or "none",
            "system_prompt_text": system_prompt_record(system_prompt),
            "prompt_style": "released" if prompts is not None else style,
            "statements": None if prompts is not None else statements,
            "judge": {"default": PAPER_JUDGE, "temperature": JUDGE_TEMPERATURE, "template": template.record.as_dict()},
            **(metadata or {}),
            **questions.counts,  # n as resolved (the design's, or all), over the task's raw argument
        },
    )


def graded(judge_template: str | None, **options: Any) -> Any:
    """The free-text grader of a task (`warmeval.scorers.free_text_grader`), a bad judge template a `DataError`."""
    from warmeval.scorers import free_text_grader
    from warmeval.sycophancy.paper_texts import PaperTextError

    try:
        return free_text_grader(judge_template=judge_template, **options)
    except PaperTextError as error:
        raise DataError(f"judge_template={judge_template}: {error}") from error
