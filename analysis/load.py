"""One long table of graded responses, from Inspect logs or from the paper authors' released CSVs.

Columns: ``model``, ``variant`` (original, warm, cold, warm_sysprompt or a checkpoint label), ``is_finetuned``
(0/1), ``dataset`` (disinfo, medqa, trivia, truthfulqa), ``question_id``, ``prompt_template``, ``amendment_type``,
``epoch``, ``output``, ``evaluation`` (CORRECT/INCORRECT), ``response_length`` (characters; in a saved table a NaN,
infinite or non-numeric length is an error naming the row), and the derived
``is_refusal``, ``is_incorrect``, ``amendment_group`` (the part before ":") and ``prompt_group`` (``user_opinion`` for
the correct/incorrect templates, ``original`` for original/original_neutral).

The refusal rule is applied once, here (`scorers.judges.refusal`): on disinfo a refusal counts CORRECT, on the other
datasets it is excluded. One rule serves a run: Inspect logs record the rule their grader applied (task argument
``refusal_rule``), and the analysis uses that rule; asking for another one, or mixing logs scored with different
rules, is an error. Inputs that record no rule (the authors' release, saved tables) use ``paper`` unless told
otherwise, so the paper's numbers reproduce. Rows whose evaluation is not
CORRECT/INCORRECT (a missing verdict, NOANSWER, a grader error) are excluded too. Every exclusion is counted per
dataset and variant in `LoadReport`.

A response is read once: when several finished logs hold the same evaluation of a sample (task, variant, model,
sample id, epoch), from a rerun into a folder that already held its logs or a copied folder given beside its
original, the newest log's row is kept and the others are counted (``LoadReport.duplicates``) and said in a note
(``LoadReport.notes``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from warmeval.scorers.judges.refusal import RefusalRule, refusal_pattern
from warmeval.util.text import stable_id

COLUMNS = [
    "model", "variant", "is_finetuned", "dataset", "question_id", "prompt_template", "amendment_type", "epoch",
    "output", "evaluation", "response_length",
]  # fmt: skip
DATASETS = ("disinfo", "medqa", "trivia", "truthfulqa")
TASK_TO_DATASET = {"triviaqa": "trivia", "truthfulqa": "truthfulqa", "disinfo": "disinfo", "medqa_conv": "medqa"}
FINETUNED_VARIANTS_NOT = ("original", "warm_sysprompt")
# Logs of these tasks sit beside the reliability tasks' in a run's folder but are not graded answers: the safety
# control (refusal rates, reported on their own) and the SocioT generations (the warmth trajectory).
CONTROL_TASK_NAMES = ("advbench", "sociot_generations")
AUTHORS_FILE = re.compile(r"^(?P<dataset>disinfo|medqa|trivia|truthfulqa)_(?P<variant>[\w.-]+)_outputs\.csv$")
AUTHORS_LAYOUT = "<model>/<variant>/<dataset>_<variant>_outputs.csv"


class AnalysisInputError(ValueError):
    """Input that cannot be analysed: the message names the file (and row, field) at fault."""


Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion ``successes`` of ``n``; (NaN, NaN) for ``n`` 0.

    Unlike the normal approximation (Wald), it never collapses to a point at 0 or 1: 0 of 4 gives [0, 0.490], 4 of
    4 [0.510, 1]. The report, the demo summary and the controls beside the paper give proportions this interval.
    """
    if not n > 0 or not math.isfinite(n) or not math.isfinite(successes) or not 0 <= successes <= n:
        return math.nan, math.nan
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass
class LogProtocol:
    """How one Inspect log was produced, as far as it records it (for the comparability verdict).

    Attributes:
        path: The log file.
        task: The task's short name (``triviaqa``, ``advbench``, ``sociot_generations``, ...).
        variant: The variant the log belongs to.
        model: The model under test.
        metadata: The eval's metadata (the task's design, stimuli, judge, refusal rule; the experiment's variant).
        roles: Bound model roles, by name.
        temperature: The generation temperature in force (None: the task's own).
        max_tokens: The generation limit in force (None: the task's own).
        epochs: Epochs run.
        samples: Samples in the log.
        judges: The judges that graded its samples (from the scores).
        self_graded: Some sample was graded by the model under test.
        task_version: The task's version (what some metadata values mean depends on it).
    """

    path: str
    task: str
    variant: str
    model: str
    metadata: dict[str, Any]
    roles: dict[str, str]
    temperature: float | None
    max_tokens: int | None
    epochs: int
    samples: int
    judges: set[str] = field(default_factory=set)
    self_graded: bool = False
    task_version: int = 0


@dataclass
class LoadReport:
    """What loading kept and excluded, per (dataset, variant), and how the inputs were produced."""

    rows_read: int = 0
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)
    refusals_counted_correct: Counter[tuple[str, str]] = field(default_factory=Counter)
    refusals_excluded: Counter[tuple[str, str]] = field(default_factory=Counter)
    unparseable: Counter[tuple[str, str]] = field(default_factory=Counter)
    kept: Counter[tuple[str, str]] = field(default_factory=Counter)
    rule: str | None = None  # the refusal rule applied
    rule_logged: bool = False  # whether the inputs recorded it (else requested, or the paper default)
    protocols: list[LogProtocol] = field(default_factory=list)  # one per Inspect log read
    kinds: set[str] = field(default_factory=set)  # inspect, release (the authors' outputs), table (a saved table)
    duplicates: Counter[tuple[str, str]] = field(default_factory=Counter)  # rows of older logs of the same sample
    notes: list[str] = field(default_factory=list)  # what loading did that the reader should know, one line each

    def note(self, text: str) -> None:
        """Record a note (and pass it to an active `collecting_notes`)."""
        self.notes.append(text)
        sink = _NOTE_SINK.get()
        if sink is not None:
            sink.append(text)

    def table(self) -> pd.DataFrame:
        keys = sorted(set(self.kept) | set(self.refusals) | set(self.unparseable) | set(self.duplicates))
        return pd.DataFrame(
            [
                {
                    "dataset": d,
                    "variant": v,
                    "kept": self.kept[(d, v)],
                    "refusals": self.refusals[(d, v)],
                    "refusals_counted_correct": self.refusals_counted_correct[(d, v)],
                    "refusals_excluded": self.refusals_excluded[(d, v)],
                    "unparseable_excluded": self.unparseable[(d, v)],
                    "duplicates_excluded": self.duplicates[(d, v)],
                }
                for d, v in keys
            ]
        )


_NOTE_SINK: ContextVar[list[str] | None] = ContextVar("warmeval_load_notes", default=None)


@contextmanager
def collecting_notes() -> Iterator[list[str]]:
    """The notes of every `LoadReport` written to inside the block, for a caller that does not hold the report
    (``warmeval report`` around `warmeval.analysis.report.build_report`)."""
    notes: list[str] = []
    token = _NOTE_SINK.set(notes)
    try:
        yield notes
    finally:
        _NOTE_SINK.reset(token)


def is_finetuned_variant(variant: str) -> int:
    """1 for fine-tuned variants (warm, cold, checkpoints), 0 for the original model and the system-prompt control."""
    return 0 if variant in FINETUNED_VARIANTS_NOT else 1


def prompt_group(template: str) -> str:
    """user_opinion (correct/incorrect), mcq (the released two-option template), or original."""
    if template == "mcq":
        return "mcq"
    return "user_opinion" if template in ("correct", "incorrect") else "original"


def finalize(rows: pd.DataFrame, rule: RefusalRule = "paper", report: LoadReport | None = None) -> pd.DataFrame:
    """Apply the refusal rule once, drop rows without a CORRECT/INCORRECT verdict, add derived columns."""
    report = report or LoadReport()
    frame = rows.copy()
    frame["evaluation"] = frame["evaluation"].astype("string").str.strip().str.upper()
    frame["output"] = frame["output"].fillna("").astype(str)
    frame["is_refusal"] = frame["output"].str.contains(refusal_pattern(rule), regex=True).astype(int)
    refusal = frame["is_refusal"].to_numpy() == 1
    disinfo = (frame["dataset"] == "disinfo").to_numpy()
    verdict = frame["evaluation"].isin(["CORRECT", "INCORRECT"]).fillna(False).to_numpy(dtype=bool)
    _count(report.refusals, frame[refusal])
    _count(report.refusals_counted_correct, frame[refusal & disinfo])
    _count(report.refusals_excluded, frame[refusal & ~disinfo])
    _count(report.unparseable, frame[~refusal & ~verdict])
    frame.loc[refusal & disinfo, "evaluation"] = "CORRECT"
    frame = frame[(refusal & disinfo) | (~refusal & verdict)].reset_index(drop=True)
    _count(report.kept, frame)
    frame["is_incorrect"] = (frame["evaluation"] == "INCORRECT").astype(int)
    frame["amendment_group"] = frame["amendment_type"].str.split(":").str[0]
    frame["prompt_group"] = frame["prompt_template"].map(prompt_group)
    frame["is_finetuned"] = frame["is_finetuned"].astype(int)
    return frame


def _count(counter: Counter[tuple[str, str]], rows: pd.DataFrame) -> None:
    for (dataset, variant), size in rows.groupby(["dataset", "variant"]).size().items():
        counter[(str(dataset), str(variant))] += int(size)


# The field the authors' paired-test script matches a dataset's prompts on (``significance_tests.py``).
AUTHORS_KEYS = {"truthfulqa": "content_key", "disinfo": "prompt_disinfo", "trivia": "content_key",
                "medqa": "original_question"}  # fmt: skip


def authors_question_key(row: dict[str, str], dataset: str | None = None) -> str | None:
    """The field that names a row's question in the authors' files, stripped as their script strips it.

    With ``dataset``, the column their paired-test script matches it on, whenever the file has that column: an empty
    cell is ``nan``, as pandas reads it for them. Otherwise (their script would skip such a file) the first non-empty
    field of a fixed list.
    """
    preferred = AUTHORS_KEYS.get(dataset or "")
    if preferred and preferred in row:
        return (row[preferred] or "nan").strip()
    for key in ("content_key", "proposition", "prompt_disinfo", "original_question", "question"):
        if row.get(key):
            return row[key].strip()
    return None


def load_authors_release(root: str | Path) -> pd.DataFrame:
    """Rows of ``<model>/<original|warm>/<dataset>_<variant>_outputs.csv`` (the authors' release layout)."""
    base = Path(root)
    files = sorted(p for p in base.glob("*/*/*.csv") if AUTHORS_FILE.match(p.name))
    if not files:
        raise AnalysisInputError(nothing_to_read(base))
    records: list[dict[str, Any]] = []
    for path in files:
        match = AUTHORS_FILE.match(path.name)
        assert match
        model, variant = path.parent.parent.name, path.parent.name
        with open(path, newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=1):
                where = f"{path}: row {number}"
                key = authors_question_key(row, match.group("dataset"))
                if key is None:
                    raise AnalysisInputError(f"{where}: no question field (content_key, proposition, question, ...)")
                template = row.get("prompt_type") or row.get("prompt_template")  # their script prefers prompt_type
                if not template:
                    raise AnalysisInputError(f"{where}: missing field 'prompt_template' (or 'prompt_type')")
                for name in ("amendment_type", "output", "evaluation"):
                    if name not in row:
                        raise AnalysisInputError(f"{where}: missing field {name!r}")
                dataset = match.group("dataset")
                records.append(
                    {
                        "model": model,
                        "variant": variant,
                        "is_finetuned": is_finetuned_variant(variant),
                        "dataset": dataset,
                        "question_id": stable_id(dataset, key),
                        "prompt_template": template,
                        "amendment_type": row["amendment_type"] or "unmodified",
                        "epoch": 1,
                        "output": row["output"],
                        "evaluation": row["evaluation"],
                        "response_length": len(row["output"] or ""),
                    }
                )
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def _variant_of(log: Any) -> str:
    meta = log.eval.metadata or {}
    if meta.get("variant"):
        return str(meta["variant"])
    if (log.eval.task_args or {}).get("system_prompt") not in (None, "", "none"):
        return "warm_sysprompt"  # any system prompt (paper, warm or a file) is the system-prompt control
    name = log.eval.model.lower()
    for variant in ("warm", "cold"):
        if variant in name.split("/")[-1]:
            return variant
    return "original"


def _model_of(log: Any) -> str:
    meta = log.eval.metadata or {}
    if meta.get("base_model"):
        return str(meta["base_model"])
    return str(log.eval.model).split(":")[0]


def nothing_to_read(folder: Path) -> str:
    """What to say of an input folder that holds neither Inspect logs nor the authors' outputs."""
    return (f"{folder}: no Inspect logs (*.eval) and no authors' outputs ({AUTHORS_LAYOUT}) found; pass a folder of "
            "Inspect .eval logs (a run's <output_dir>/logs), a folder in the authors' release layout, or a saved "
            "table (.csv/.parquet)")  # fmt: skip


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def _created(text: Any) -> datetime:
    """A log's creation time, comparable across time zones (naive times taken as UTC; unreadable ones oldest)."""
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _finished_logs(paths: list[Path]) -> list[tuple[datetime, Path]]:
    """The successful logs among ``paths`` with their creation times, in the order given.

    A log left unfinished by a killed run is passed over when the same evaluation (task, model, variant, task
    arguments) finished in another log (``eval_set`` resumes in a new log); an evaluation with no finished log at all
    is an error that says so. Every finished log is returned: `_read_logs` keeps the newest log's row of a sample
    found in several and counts the others.
    """
    from inspect_ai.log import read_eval_log

    finished: list[tuple[datetime, Path]] = []
    done: set[str] = set()
    unfinished: dict[str, tuple[Path, str]] = {}
    for path in paths:
        try:
            header = read_eval_log(str(path), header_only=True)
        except Exception as error:  # a truncated or foreign file
            raise AnalysisInputError(f"{path}: not a readable Inspect log ({_one_line(error)})") from None
        spec = header.eval
        key = json.dumps([spec.task, str(spec.model), (spec.metadata or {}).get("variant"), spec.task_args],
                         sort_keys=True, default=str)  # fmt: skip
        if header.status != "success":
            unfinished.setdefault(key, (path, header.status))
        else:
            done.add(key)
            finished.append((_created(spec.created), path))
    for key, (path, status) in unfinished.items():
        if key not in done:
            raise AnalysisInputError(f"{path}: log status is {status!r}; finish or rerun it before analysing")
    return finished


def _protocol(log: Any, path: Path) -> LogProtocol:
    """What a log records of how it was produced."""
    config = log.plan.config if log.plan is not None else None
    judges: set[str] = set()
    self_graded = False
    for sample in log.samples or []:
        for score in (sample.scores or {}).values():
            meta = score.metadata or {}
            if meta.get("judge"):
                judges.add(str(meta["judge"]))
            self_graded = self_graded or bool(meta.get("self_graded"))
    roles = {name: str(getattr(role, "model", role)) for name, role in (log.eval.model_roles or {}).items()}
    return LogProtocol(
        path=str(path), task=log.eval.task.split("/")[-1], variant=_variant_of(log), model=str(log.eval.model),
        metadata=dict(log.eval.metadata or {}), roles=roles,
        temperature=getattr(config, "temperature", None), max_tokens=getattr(config, "max_tokens", None),
        epochs=int(log.eval.config.epochs or 1), samples=len(log.samples or []), judges=judges,
        self_graded=self_graded, task_version=int(log.eval.task_version or 0),
    )  # fmt: skip


def _eval_files(base: Path) -> list[Path]:
    paths = sorted(base.rglob("*.eval")) if base.is_dir() else [base]
    if not paths:
        raise AnalysisInputError(f"{base}: no .eval logs")
    return paths


def load_inspect_logs(
    root: str | Path, rules: dict[str, str] | None = None, protocols: list[LogProtocol] | None = None
) -> pd.DataFrame:
    """Rows of every ``.eval`` log under ``root`` (recursively) produced by the four warmeval tasks.

    ``model`` is the eval metadata ``base_model`` (else the model name without a ``:adapter`` suffix); ``variant`` is
    the eval metadata ``variant``, else ``warm_sysprompt`` for any ``-T system_prompt=``, else warm/cold when the
    model name says so, else original. The refusal rule each log was scored with goes into ``rules`` (by path), and
    how each log was produced into ``protocols`` (the control tasks' logs included). A sample found in several
    finished logs is read from the newest (see `_read_logs`).
    """
    report = LoadReport()
    frame = _read_logs(_eval_files(Path(root)), rules if rules is not None else {}, report)
    if protocols is not None:
        protocols.extend(report.protocols)
    return frame


def _read_logs(paths: list[Path], rules: dict[str, str], report: LoadReport) -> pd.DataFrame:
    """The rows of the finished logs among ``paths``, each response once.

    Two logs can hold the same evaluation of a sample (task, variant, model, task arguments but for the files'
    locations, sample id, epoch): a rerun into a folder
    that already held its logs, a copied folder given beside its original. The newest log's row is kept; the others
    are counted in ``report.duplicates`` and said in a note. A log none of whose samples is kept adds no protocol;
    every log's refusal rule goes into ``rules``. Rows come in the order of ``paths``.
    """
    from inspect_ai.log import read_eval_log

    finished = _finished_logs(paths)
    def age(i: int) -> tuple[datetime, int, str]:  # created is to the second: two logs of one second go by mtime
        with contextlib.suppress(OSError):
            return finished[i][0], finished[i][1].stat().st_mtime_ns, str(finished[i][1])
        return finished[i][0], 0, str(finished[i][1])

    newest_first = sorted(range(len(finished)), key=age, reverse=True)
    seen: set[tuple[str, str, str, str, str, int]] = set()
    records: dict[int, list[dict[str, Any]]] = {}
    protocols: dict[int, LogProtocol] = {}
    older: Counter[Path] = Counter()
    for index in newest_first:
        path = finished[index][1]
        try:
            log = read_eval_log(str(path))
        except Exception as error:  # a sample entry that does not decompress or parse
            raise AnalysisInputError(f"{path}: not a readable Inspect log ({_one_line(error)})") from None
        try:
            kept = _log_rows(log, path, seen, report, older)
            if kept is not None:
                records[index] = kept
                protocols[index] = _protocol(log, path)
            logged_rule = (log.eval.metadata or {}).get("refusal_rule")
            if logged_rule and log.eval.task.split("/")[-1] not in CONTROL_TASK_NAMES:
                # Every log's rule, a superseded one's too: logs of one sample scored with different rules are a
                # conflict to resolve (`resolve_rule`), not a duplicate to pass over.
                rules[str(path)] = str(logged_rule)
        except AnalysisInputError:
            raise
        except Exception as error:  # a log of an unexpected shape: the log's problem, named
            raise AnalysisInputError(f"{path}: cannot read ({_one_line(error)})") from None
    report.protocols += [protocols[i] for i in sorted(protocols)]
    if older:
        example = sorted(older)[0]
        report.note(
            f"{sum(older.values())} duplicate responses (the same task, variant, model, task arguments, sample and "
            f"epoch in more than one log) passed over: the newest log's row of each is kept; older copies in "
            f"{len(older)} log(s), e.g. {example}"
        )
    rows = [row for index in sorted(records) for row in records[index]]
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


# Task arguments that say where a task's files are, not what it evaluates.
LOCATION_ARGS = frozenset({"data_path", "prompts_file", "distractor_cache"})


def _log_rows(
    log: Any, path: Path, seen: set[tuple[str, str, str, str, str, int]], report: LoadReport, older: Counter[Path]
) -> list[dict[str, Any]] | None:
    """The rows of one log whose samples no newer log held (None: every sample was held by a newer log)."""
    task_name = log.eval.task.split("/")[-1]
    variant, model = _variant_of(log), _model_of(log)
    control = task_name in CONTROL_TASK_NAMES
    # The task's arguments are part of what an evaluation is (another seed draws other statements and distractors:
    # other responses, not copies), but not where its files lie (a copy of the data at another path is the same).
    arguments = json.dumps({k: v for k, v in (log.eval.task_args or {}).items() if k not in LOCATION_ARGS},
                           sort_keys=True, default=str)  # fmt: skip
    rows: list[dict[str, Any]] = []
    fresh = 0
    for sample in log.samples or []:
        meta = sample.metadata or {}
        task = meta.get("task")
        dataset = TASK_TO_DATASET.get(str(task)) if task is not None else None
        if not control and dataset is None:
            raise AnalysisInputError(f"{path}: sample {sample.id}: field 'task' is {task!r}, not a warmeval task")
        key = (task_name, variant, model, arguments, str(sample.id), int(sample.epoch))
        if key in seen:
            if dataset is not None and not control:
                older[path] += 1
                report.duplicates[(dataset, variant)] += 1
            continue
        seen.add(key)
        fresh += 1
        if control or dataset is None:
            continue
        score = (sample.scores or {}).get("free_text_grader")
        grade = (score.metadata or {}).get("grade") if score is not None else None
        output = sample.output.completion if sample.output else ""
        rows.append(
            {
                "model": model,
                "variant": variant,
                "is_finetuned": is_finetuned_variant(variant),
                "dataset": dataset,
                "question_id": str(meta.get("question_id")),
                "prompt_template": meta.get("prompt_template", "original"),
                "amendment_type": meta.get("amendment_type", "unmodified"),
                "epoch": sample.epoch,
                "output": output,
                "evaluation": grade if grade in ("CORRECT", "INCORRECT") else (grade or "MISSING"),
                "response_length": len(output),
            }
        )
    return None if log.samples and not fresh else rows


def load_table(
    inputs: str | Path | list[str | Path], rule: RefusalRule | None = None, report: LoadReport | None = None
) -> pd.DataFrame:
    """Load and finalise one or more inputs: Inspect log folders/files, authors' release folders, or saved tables.

    ``rule`` None: the rule the logs were scored with (``paper`` for inputs that record none); a rule that differs
    from the logs' is an `AnalysisInputError` (see the module docstring).
    """
    report = report if report is not None else LoadReport()
    rows, chosen = load_rows(inputs, rule, report)
    return finalize(rows, chosen, report)


def load_rows(
    inputs: str | Path | list[str | Path], rule: RefusalRule | None = None, report: LoadReport | None = None
) -> tuple[pd.DataFrame, RefusalRule]:
    """The rows of the inputs as read (``COLUMNS``; no refusal rule applied, nothing excluded) and the run's rule.

    `load_table` finalises them; the authors' paired-test layout (`warmeval.analysis.paired.paper_layout`) applies
    their own filter to them instead. The Inspect logs of all inputs are read together, so that a response found in
    several logs (even under different inputs) is read once (see `_read_logs`); their rows take the place of the
    first input that holds logs.
    """
    paths = [Path(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    frames: list[pd.DataFrame | None] = []
    rules: dict[str, str] = {}
    report = report if report is not None else LoadReport()
    logs: list[Path] = []
    slot: int | None = None
    for path in paths:
        try:
            if _holds_logs(path):
                report.kinds.add("inspect")
                logs += _eval_files(path)
                if slot is None:
                    slot = len(frames)
                    frames.append(None)
            else:
                frames.append(_load_one(path, report))
        except AnalysisInputError:
            raise
        except Exception as error:  # unreadable input of any kind is the input's problem, reported as such
            raise AnalysisInputError(f"{path}: cannot read ({_one_line(error)})") from None
    if not frames:
        raise AnalysisInputError("no inputs given")
    if slot is not None:
        frames[slot] = _read_logs(logs, rules, report)
    rows = pd.concat(frames, ignore_index=True)
    chosen = resolve_rule(rule, rules)
    report.rows_read += len(rows)
    report.rule, report.rule_logged = chosen, bool(rules)
    return rows, chosen


def _holds_logs(path: Path) -> bool:
    """An ``.eval`` file, or a folder with one somewhere under it."""
    if path.is_file():
        return path.suffix == ".eval"
    return path.is_dir() and any(path.rglob("*.eval"))


def _load_one(path: Path, report: LoadReport) -> pd.DataFrame:
    """A saved table or a folder in the authors' release layout (Inspect logs: `_read_logs`)."""
    if not path.exists():
        raise AnalysisInputError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix in (".csv", ".parquet"):
        report.kinds.add("table")
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, keep_default_na=False)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise AnalysisInputError(f"{path}: missing column(s) {missing}")
        flags = pd.to_numeric(frame["is_finetuned"], errors="coerce")
        bad = frame.index[~flags.isin([0, 1])]
        if len(bad):
            row = int(bad[0])
            raise AnalysisInputError(
                f"{path}: row {row + 2}: field 'is_finetuned' is {frame['is_finetuned'].iloc[row]!r}, not 0 or 1"
            )
        lengths = pd.to_numeric(frame["response_length"], errors="coerce")
        bad = frame.index[~(lengths.notna() & (lengths.abs() != math.inf))]
        if len(bad):
            row = int(bad[0])
            raise AnalysisInputError(f"{path}: row {row + 2}: field 'response_length' is "
                                     f"{frame['response_length'].iloc[row]!r}, not a finite number "
                                     f"({len(bad)} such row(s))")  # fmt: skip
        return frame[COLUMNS].assign(is_finetuned=flags.astype(int), response_length=lengths)
    if path.is_file():
        raise AnalysisInputError(f"{path}: not an Inspect .eval log, a .csv/.parquet table or a release folder")
    if not any(AUTHORS_FILE.match(p.name) for p in path.glob("*/*/*.csv")):
        raise AnalysisInputError(nothing_to_read(path))
    report.kinds.add("release")
    return load_authors_release(path)


def resolve_rule(requested: RefusalRule | None, logged: dict[str, str]) -> RefusalRule:
    """The one refusal rule of a run: the logs' (all alike), else the requested one, else ``paper``."""
    kinds = sorted(set(logged.values()))
    if len(kinds) > 1:
        first = {kind: next(p for p, k in logged.items() if k == kind) for kind in kinds}
        listing = "; ".join(f"{kind!r} in {path}" for kind, path in first.items())
        raise AnalysisInputError(f"logs scored with different refusal rules ({listing}); rescore them with one rule")
    if kinds and requested is not None and requested != kinds[0]:
        path = next(iter(logged))
        raise AnalysisInputError(
            f"{path}: scored with refusal rule {kinds[0]!r}, but the analysis was asked for {requested!r}; "
            f"use --refusal-rule {kinds[0]} (or rescore the logs with -T refusal_rule={requested})"
        )
    if requested is not None and requested not in ("paper", "improved"):
        raise AnalysisInputError(f"unknown refusal rule {requested!r} (known: paper, improved)")
    chosen = kinds[0] if kinds else (requested or "paper")
    if chosen not in ("paper", "improved"):
        raise AnalysisInputError(f"unknown refusal rule {chosen!r} (known: paper, improved)")
    return chosen  # type: ignore[return-value]
