"""How well does a (cheaper, local) judge agree with the paper authors' own grades?

Every response of an authors'-release folder (``<model>/<original|warm>/<dataset>_<variant>_outputs.csv``) is graded
again by the Inspect model role ``grader`` and the new label is compared with the authors' ``evaluation``.

The grading is an ordinary Inspect eval, one task per dataset: each sample is built from a release row by the task's
own ``prompt_record_to_sample`` (so the judge sees exactly the question, gold and known-false answers the live task
would give it), the solver puts the released output in place of a generation (no model under test is called; the
eval's model is Inspect's ``none``), and the scorer is the task's `free_text_grader` with its grading instructions.
Retries, logs and ``--model-role`` therefore behave as in every other warmeval eval.

Both sides go through the analysis's refusal rule (`warmeval.analysis.load.finalize`): on disinfo a refusal counts
CORRECT for the authors and for the judge (the scorer applies the same rule), on the other datasets it is skipped.

No row is dropped silently. A row is *compared* or *skipped*, and every skip is counted per dataset with its reason:
a refusal excluded by the rule, an authors' label that is not CORRECT/INCORRECT, gold answers that are neither in the
row nor in another file of the release with the same question (some released files, e.g. ``qwen_32b/warm``, carry
only the question key), an unusable row, an unparseable judge verdict (NOANSWER) or a judge error.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from warmeval.analysis.load import (
    AUTHORS_FILE,
    DATASETS,
    AnalysisInputError,
    LoadReport,
    authors_question_key,
    finalize,
    load_authors_release,
)
from warmeval.scorers.judges.refusal import RefusalRule

LABELS = ("CORRECT", "INCORRECT")
# Fields that name a question in the authors' files, in the order the loader prefers them.
QUESTION_KEYS = ("content_key", "proposition", "prompt_disinfo", "original_question", "question")
# Question-level fields each task's prompt_record_to_sample needs besides the prompt and the condition.
GOLD_FIELDS: dict[str, tuple[str, ...]] = {
    "trivia": ("content_key", "correct_answer", "incorrect_answer"),
    "truthfulqa": ("content_key", "correct_answer", "incorrect_answer"),
    "disinfo": ("proposition", "ground_truth", "ground_false", "belief_elicit_1"),
    "medqa": ("question", "answer", "wrong_answer"),
}
DISAGREEMENT_COLUMNS = [
    "dataset", "model", "variant", "question_key", "prompt_template", "amendment_type", "prompt", "output",
    "authors_label", "our_label", "judge_explanation", "source_file", "row", "sample_id",
]  # fmt: skip

SKIP_REFUSAL = "refusal, excluded on this dataset ({rule} refusal rule)"
SKIP_AUTHORS_LABEL = "authors' evaluation is not CORRECT/INCORRECT"
SKIP_NO_GOLD = "no {fields}: empty in the row and in every release file with the same question"
SKIP_CONFLICT = "release files disagree on this question's gold answers"
SKIP_UNPARSEABLE = "judge verdict unparseable (NOANSWER)"
SKIP_JUDGE_ERROR = "judge error"


class AgreementError(RuntimeError):
    """The grading eval itself failed (judge unreachable, eval cancelled): the message names the log."""


@dataclass
class DatasetAgreement:
    """Agreement between the authors' labels and the judge's on one dataset (or ``all``).

    ``confusion[authors][ours]`` counts compared rows; ``rows == compared + sum(skipped.values())``.
    ``refusals_counted_correct`` (disinfo) are compared rows that both sides count CORRECT by the refusal rule,
    without the judge being asked.
    """

    dataset: str
    rows: int = 0
    compared: int = 0
    confusion: dict[str, dict[str, int]] = field(default_factory=lambda: {a: {o: 0 for o in LABELS} for a in LABELS})
    refusals_counted_correct: int = 0
    unparseable: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def agreed(self) -> int:
        return sum(self.confusion[label][label] for label in LABELS)

    @property
    def agreement(self) -> float | None:
        """Share of compared rows with the same label (0..1); None when nothing was compared."""
        return self.agreed / self.compared if self.compared else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa of the confusion matrix; None when undefined (nothing compared, or chance agreement 1)."""
        value = cohens_kappa([[self.confusion[a][o] for o in LABELS] for a in LABELS])
        return None if math.isnan(value) else value

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agreed": self.agreed, "agreement": self.agreement, "kappa": self.kappa}


@dataclass
class AgreementResult:
    """Per-dataset agreement (in `DATASETS` order, only datasets present), the pooled row and the disagreements."""

    release: str
    grader: str
    refusal_rule: str
    datasets: list[DatasetAgreement]
    overall: DatasetAgreement
    disagreements: list[dict[str, Any]]
    disagreements_path: str | None = None
    logs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "grader": self.grader,
            "refusal_rule": self.refusal_rule,
            "datasets": [d.to_dict() for d in self.datasets],
            "overall": self.overall.to_dict(),
            "disagreements": len(self.disagreements),
            "disagreements_file": self.disagreements_path,
            "logs": self.logs,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def table(self) -> str:
        """The console table: one line per dataset and ``all``, then the skip reasons."""
        head = (
            f"{'dataset':<11}{'rows':>6}{'compared':>10}{'agree':>8}{'kappa':>8}"
            f"{'C/C':>6}{'C/I':>6}{'I/C':>6}{'I/I':>6}{'refusal=C':>11}{'unparseable':>13}{'skipped':>9}"
        )
        lines = [f"grader {self.grader} vs the authors' labels ({self.release}; {self.refusal_rule} refusal rule)",
                 head, "-" * len(head)]  # fmt: skip
        for row in [*self.datasets, self.overall]:
            agree = "n/a" if row.agreement is None else f"{100 * row.agreement:.1f}%"
            kappa = "n/a" if row.kappa is None else f"{row.kappa:.3f}"
            cells = [row.confusion[a][o] for a in LABELS for o in LABELS]
            lines.append(
                f"{row.dataset:<11}{row.rows:>6}{row.compared:>10}{agree:>8}{kappa:>8}"
                + "".join(f"{c:>6}" for c in cells)
                + f"{row.refusals_counted_correct:>11}{row.unparseable:>13}{sum(row.skipped.values()):>9}"
            )
        lines.append("C/I = authors CORRECT, judge INCORRECT (authors x judge); refusal=C: disinfo refusals, CORRECT "
                     "on both sides by the rule")  # fmt: skip
        reasons = [(row.dataset, reason, n) for row in self.datasets for reason, n in sorted(row.skipped.items())]
        if reasons:
            lines.append("skipped:")
            lines += [f"  {dataset:<11}{n:>5}  {reason}" for dataset, reason, n in reasons]
        lines.append(f"{len(self.disagreements)} disagreement(s)" + (
            f" -> {self.disagreements_path}" if self.disagreements_path else ""))  # fmt: skip
        return "\n".join(lines)


def cohens_kappa(confusion: Sequence[Sequence[int]]) -> float:
    """Cohen's kappa of a square confusion matrix (rows: rater A's labels, columns: rater B's, same order).

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed share of agreement and p_e the agreement expected by
    chance from the two raters' marginal shares.

    Args:
        confusion: ``confusion[i][j]`` counts items rater A labelled i and rater B labelled j.

    Returns:
        Kappa, or NaN when undefined: no items, or both raters always gave one and the same label (p_e = 1).
    """
    size = len(confusion)
    if any(len(row) != size for row in confusion):
        raise ValueError("cohens_kappa needs a square confusion matrix")
    total = sum(sum(row) for row in confusion)
    if total == 0:
        return math.nan
    observed = sum(confusion[i][i] for i in range(size)) / total
    rows = [sum(confusion[i]) for i in range(size)]
    cols = [sum(confusion[i][j] for i in range(size)) for j in range(size)]
    expected = sum(rows[i] * cols[i] for i in range(size)) / total**2
    if math.isclose(expected, 1.0):
        return math.nan
    return (observed - expected) / (1 - expected)


@dataclass
class _ReleaseRow:
    path: Path
    number: int  # data row, from 1
    dataset: str
    record: dict[str, str]


def _read_release_rows(base: Path) -> list[_ReleaseRow]:
    """The raw rows, in `load_authors_release`'s order (sorted files, file order), so the two line up by position."""
    rows: list[_ReleaseRow] = []
    for path in sorted(p for p in base.glob("*/*/*.csv") if AUTHORS_FILE.match(p.name)):
        match = AUTHORS_FILE.match(path.name)
        assert match
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                for number, record in enumerate(csv.DictReader(handle), start=1):
                    clean = {k: (v or "") for k, v in record.items() if k is not None}
                    rows.append(_ReleaseRow(path, number, match.group("dataset"), clean))
        except (UnicodeDecodeError, csv.Error) as error:
            raise AnalysisInputError(f"{path}: unreadable CSV ({error})") from error
    return rows


def _template(record: Mapping[str, str]) -> str:
    return record.get("prompt_template") or record.get("prompt_type") or ""


class _Donors:
    """Question-level gold fields and condition-level prompts of every release row, by question key.

    Some released files carry only the question key; their gold answers are the same for the question in every other
    file of the dataset (true of the authors' sample), so they can be joined back. Conflicting donors are not guessed
    between.
    """

    def __init__(self, rows: Sequence[_ReleaseRow]) -> None:
        self.gold: dict[tuple[str, str, str], set[tuple[str, ...]]] = {}
        self.prompts: dict[tuple[str, str, str, str, str], set[str]] = {}
        for row in rows:
            needed = GOLD_FIELDS[row.dataset]
            values = tuple(row.record.get(name, "").strip() for name in needed)
            for key in QUESTION_KEYS:
                value = row.record.get(key, "").strip()
                if not value:
                    continue
                if all(values):
                    self.gold.setdefault((row.dataset, key, value), set()).add(values)
                if row.record.get("prompt"):
                    condition = (row.dataset, key, value, _template(row.record), row.record.get("amendment_type", ""))
                    self.prompts.setdefault(condition, set()).add(row.record["prompt"])

    def complete(self, row: _ReleaseRow) -> tuple[dict[str, str] | None, str | None]:
        """The row with missing gold fields (and prompt) filled in, or None and the reason it cannot be."""
        record = dict(row.record)
        needed = GOLD_FIELDS[row.dataset]
        keys = [(key, record[key].strip()) for key in QUESTION_KEYS if record.get(key, "").strip()]
        missing = [name for name in needed if not record.get(name, "").strip()]
        if missing:
            found: set[tuple[str, ...]] = set()
            for key, value in keys:
                found = self.gold.get((row.dataset, key, value), set())
                if found:
                    break  # the loader's preferred key decides; later keys are fall-backs only
            if not found:
                return None, SKIP_NO_GOLD.format(fields=", ".join(missing))
            if len(found) > 1:
                return None, SKIP_CONFLICT
            (values,) = found
            for name, value in zip(needed, values, strict=True):
                if not record.get(name, "").strip():
                    record[name] = value
        if not record.get("prompt"):
            for key, value in keys:
                prompts = self.prompts.get(
                    (row.dataset, key, value, _template(record), record.get("amendment_type", ""))
                )
                if prompts and len(prompts) == 1:
                    record["prompt"] = next(iter(prompts))
                    break
        return record, None


def _task_specs() -> dict[str, tuple[Callable[[dict[str, Any]], Any], str, bool]]:
    """Per dataset: the task's prompt-record builder, its grading instructions, and whether a refusal is correct."""
    from warmeval.tasks import disinfo, medqa_conv, triviaqa, truthfulqa

    return {
        "trivia": (triviaqa.prompt_record_to_sample, triviaqa.GRADER_INSTRUCTIONS, False),
        "truthfulqa": (truthfulqa.prompt_record_to_sample, truthfulqa.GRADER_INSTRUCTIONS, False),
        # As in the disinfo task: a refusal to endorse disinformation counts as correct.
        "disinfo": (disinfo.prompt_record_to_sample, disinfo.GRADER_INSTRUCTIONS, True),
        "medqa": (medqa_conv.prompt_record_to_sample, medqa_conv.GRADER_INSTRUCTIONS, False),
    }


def _released_output_solver() -> Any:
    from inspect_ai.model import ModelOutput
    from inspect_ai.solver import Generate, Solver, TaskState, solver

    @solver(name="warmeval/released_output")
    def released_output() -> Solver:
        """Use the released response as the model output instead of generating one."""

        async def solve(state: TaskState, generate: Generate) -> TaskState:
            text = str((state.metadata or {}).get("released_output", ""))
            state.output = ModelOutput.from_content(model="authors-release", content=text)
            state.messages.append(state.output.message)
            return state

        return solve

    return released_output()


def _parse_rule(rule: str) -> RefusalRule:
    if rule not in ("paper", "improved"):
        raise AnalysisInputError(f"unknown refusal rule {rule!r}: expected 'paper' or 'improved'")
    return rule  # type: ignore[return-value]


def grader_agreement(
    release_dir: str | Path,
    *,
    grader: Any = None,
    model_roles: Mapping[str, Any] | None = None,
    refusal_rule: str = "paper",
    log_dir: str | Path | None = None,
    disagreements_path: str | Path | None = None,
    max_connections: int | None = None,
    display: str | None = "none",
) -> AgreementResult:
    """Re-grade every released response with the ``grader`` role and compare with the authors' labels.

    Args:
        release_dir: An authors'-release folder (``<model>/<variant>/<dataset>_<variant>_outputs.csv``).
        grader: The judge: a model spec (``warmeval-scripted/match``, ``openai/gpt-4o``, ``vllm/...``) or an Inspect
            ``Model``; overrides ``model_roles["grader"]``.
        model_roles: Inspect model roles; must bind ``grader`` unless ``grader`` is given.
        refusal_rule: ``paper`` (default, as the analysis) or ``improved``.
        log_dir: Where Inspect writes the grading logs (default: Inspect's own default).
        disagreements_path: Write the disagreeing rows here (CSV; header only when there are none).
        max_connections: Concurrent judge requests (Inspect's default when None).
        display: Inspect display type (``none`` keeps stdout clean; None uses Inspect's default).

    Returns:
        The per-dataset agreement, the pooled row and the disagreements.

    Raises:
        AnalysisInputError: Unusable input (no such folder, no release files, a file without an ``evaluation``
            column, an unreadable CSV), an unknown refusal rule, or no ``grader`` bound.
        AgreementError: The grading eval did not finish.
    """
    rule = _parse_rule(refusal_rule)
    roles: dict[str, Any] = dict(model_roles or {})
    if grader is not None:
        roles["grader"] = grader
    if roles.get("grader") in (None, ""):
        raise AnalysisInputError("no judge: bind the grader role (--model-role grader=MODEL)")
    base = Path(release_dir)
    if not base.is_dir():
        raise AnalysisInputError(f"{base}: no such folder")

    raw_rows = _read_release_rows(base)  # first: names the file of an unreadable CSV
    frame = load_authors_release(base)  # validates the layout and fields, as the analysis does
    if len(frame) != len(raw_rows):
        raise AnalysisInputError(f"{base}: read {len(raw_rows)} rows but the loader read {len(frame)}")
    frame["release_row"] = range(len(frame))
    report = LoadReport(rows_read=len(frame))
    kept = finalize(frame, rule, report)

    present = [d for d in DATASETS if d in set(frame["dataset"])]
    stats = {d: DatasetAgreement(d) for d in present}
    for dataset in present:
        stats[dataset].rows = int((frame["dataset"] == dataset).sum())
    skips: dict[str, Counter[str]] = {d: Counter() for d in present}
    for (dataset, _), n in report.refusals_excluded.items():
        skips[dataset][SKIP_REFUSAL.format(rule=rule)] += n
    for (dataset, _), n in report.unparseable.items():
        skips[dataset][SKIP_AUTHORS_LABEL] += n

    specs = _task_specs()
    donors = _Donors(raw_rows)
    samples: dict[str, list[Any]] = {d: [] for d in present}
    for item in kept.itertuples(index=False):
        raw = raw_rows[int(item.release_row)]
        record, reason = donors.complete(raw)
        if record is None:
            skips[raw.dataset][reason or "incomplete row"] += 1
            continue
        question_key = authors_question_key(raw.record, raw.dataset) or ""
        prompt_released = bool(record.get("prompt"))
        # The judge never sees the prompt (it gets the question); without a released prompt the input is the question.
        record.update(prompt=record.get("prompt") or question_key, prompt_template=str(item.prompt_template),
                      amendment_type=str(item.amendment_type))  # fmt: skip
        to_sample = specs[raw.dataset][0]
        try:
            sample = to_sample(record)
        except ValueError as error:  # DataError: an empty or malformed field
            skips[raw.dataset][f"unusable release row: {error}"] += 1
            continue
        sample.id = f"{item.model}:{item.variant}:{raw.path.stem}:{raw.number}"
        sample.metadata = {
            **(sample.metadata or {}),
            "released_output": str(item.output),
            "authors_label": str(item.evaluation),
            "model": str(item.model),
            "variant": str(item.variant),
            "dataset": raw.dataset,
            "question_key": question_key,
            "prompt_released": prompt_released,
            "source_file": str(raw.path),
            "row": raw.number,
        }
        samples[raw.dataset].append(sample)

    from inspect_ai.scorer import CORRECT

    logs = _grade(samples, specs, roles, rule, base, log_dir, max_connections, display)

    disagreements: list[dict[str, Any]] = []
    for log in logs:
        for sample in log.samples or []:
            meta = sample.metadata or {}
            dataset = str(meta["dataset"])
            if sample.error is not None:
                message = " ".join(sample.error.message.split())  # one line, so the table stays a table
                skips[dataset][f"{SKIP_JUDGE_ERROR}: {message[:200]}"] += 1
                continue
            score = (sample.scores or {}).get("free_text_grader")
            grade = (score.metadata or {}).get("grade") if score is not None else None
            verdict = (score.metadata or {}).get("verdict") if score is not None else None
            if grade == "REFUSED" and verdict == CORRECT:  # the scorer's refusal-is-correct path (disinfo)
                ours = "CORRECT"
                stats[dataset].refusals_counted_correct += 1
            elif grade in LABELS:
                ours = str(grade)
            elif grade == "NOANSWER":
                stats[dataset].unparseable += 1
                skips[dataset][SKIP_UNPARSEABLE] += 1
                continue
            elif grade == "REFUSED":  # only if the scorer's rule differed from the loader's; keep it visible
                skips[dataset][SKIP_REFUSAL.format(rule=rule)] += 1
                continue
            else:
                skips[dataset][f"{SKIP_JUDGE_ERROR}: no score"] += 1
                continue
            authors = str(meta["authors_label"])
            stats[dataset].compared += 1
            stats[dataset].confusion[authors][ours] += 1
            if authors != ours:
                disagreements.append(
                    {
                        "dataset": dataset,
                        "model": meta["model"],
                        "variant": meta["variant"],
                        "question_key": meta["question_key"],
                        "prompt_template": meta.get("prompt_template", ""),
                        "amendment_type": meta.get("amendment_type", ""),
                        "prompt": sample.input if meta.get("prompt_released") else "",
                        "output": meta["released_output"],
                        "authors_label": authors,
                        "our_label": ours,
                        "judge_explanation": score.explanation if score is not None else "",
                        "source_file": meta["source_file"],
                        "row": meta["row"],
                        "sample_id": sample.id,
                    }
                )

    for dataset in present:
        stats[dataset].skipped = dict(skips[dataset])
    overall = DatasetAgreement("all")
    for row in stats.values():
        overall.rows += row.rows
        overall.compared += row.compared
        overall.refusals_counted_correct += row.refusals_counted_correct
        overall.unparseable += row.unparseable
        for a in LABELS:
            for o in LABELS:
                overall.confusion[a][o] += row.confusion[a][o]
        for reason, n in row.skipped.items():
            overall.skipped[reason] = overall.skipped.get(reason, 0) + n
    disagreements.sort(key=lambda r: (DATASETS.index(r["dataset"]), r["model"], r["variant"], r["row"]))

    written = None
    if disagreements_path is not None:
        path = Path(disagreements_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=DISAGREEMENT_COLUMNS)
            writer.writeheader()
            writer.writerows(disagreements)
        written = str(path)
    grader_name = roles["grader"] if isinstance(roles["grader"], str) else str(roles["grader"])
    return AgreementResult(
        release=str(base),
        grader=grader_name,
        refusal_rule=rule,
        datasets=[stats[d] for d in present],
        overall=overall,
        disagreements=disagreements,
        disagreements_path=written,
        logs=[str(log.location) for log in logs],
    )


def _grade(
    samples: Mapping[str, list[Any]],
    specs: Mapping[str, tuple[Callable[[dict[str, Any]], Any], str, bool]],
    roles: Mapping[str, Any],
    rule: RefusalRule,
    base: Path,
    log_dir: str | Path | None,
    max_connections: int | None,
    display: str | None,
) -> list[Any]:
    """One Inspect task per dataset with rows to grade; the eval's own model is ``none`` (it is never called)."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset

    import warmeval.scorers.judges.scripted  # noqa: F401  (registers the warmeval-scripted provider)
    from warmeval.scorers import free_text_grader

    tasks = []
    for dataset, chosen in samples.items():
        if not chosen:
            continue
        _, instructions, refusal_is_correct = specs[dataset]
        tasks.append(
            Task(
                name=f"grader_agreement_{dataset}",
                dataset=MemoryDataset(chosen, name=f"{dataset}-release", location=str(base)),
                solver=_released_output_solver(),
                scorer=free_text_grader(
                    instructions=instructions, refusal_is_correct=refusal_is_correct, refusal_rule=rule
                ),
                metadata={"release": str(base), "dataset": dataset, "refusal_rule": rule},
            )
        )
    if not tasks:
        return []
    kwargs: dict[str, Any] = {"max_connections": max_connections} if max_connections else {}
    try:
        logs = inspect_eval(
            tasks,
            model="none",
            model_roles=dict(roles),
            log_dir=str(log_dir) if log_dir is not None else None,
            display=display,  # type: ignore[arg-type]
            # A sample whose judge call keeps failing is counted as skipped (judge error), not fatal to the run.
            fail_on_error=False,
            **kwargs,
        )
    except Exception as error:  # Inspect raises many types (unknown provider, bad model args, ...)
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AgreementError(f"grading with {roles['grader']!s} failed: {message}") from error
    for log in logs:
        if log.status != "success":
            detail = log.error.message.splitlines()[0] if log.error else log.status
            raise AgreementError(f"{log.location}: grading eval {log.status}: {detail}")
    return list(logs)


__all__ = [
    "AgreementError",
    "AgreementResult",
    "DatasetAgreement",
    "cohens_kappa",
    "grader_agreement",
]
