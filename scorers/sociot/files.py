"""Reading texts to score with SocioT, scoring files, and the warmth trajectory over checkpoints."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from warmeval.scorers.sociot.metric import (
    SocioTSummary,
    is_empty_text,
    is_gpt2,
    resolve_mode,
    resolve_model,
    sociot_scores,
    summarize,
)
from warmeval.util.files import safe_name
from warmeval.util.jsonl import json_objects

logger = logging.getLogger(__name__)

CHUNK = 256
ROWS_SHOWN = 20


class TextInputError(ValueError):
    """A file that cannot give texts to score: the message names the file, row and field."""


@dataclass(frozen=True)
class TextItem:
    """One text to score and where it came from."""

    source: str
    key: str
    text: str


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise TextInputError(f"{path}: not UTF-8 text (byte {error.start}); re-encode it as UTF-8") from error


def _lm_eval_text(record: dict[str, Any], path: Path, row: int) -> str:
    for key in ("filtered_resps", "resps"):
        value = record.get(key)
        while isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str):
            return value
    raise TextInputError(f"{path}: row {row}: lm-eval sample has no text in 'filtered_resps' or 'resps'")


def read_texts(path: str | Path, column: str = "text") -> list[TextItem]:
    """Texts from a JSONL/CSV file (``column``), an Inspect ``.eval``/``.json`` log, or lm-eval ``samples_*.jsonl``."""
    file = Path(path)
    if not file.is_file():
        raise TextInputError(f"{file}: no such file")
    items: list[TextItem] = []
    if file.suffix == ".eval" or (file.suffix == ".json" and _looks_like_inspect_log(file)):
        from inspect_ai.log import read_eval_log

        log = read_eval_log(str(file))
        for sample in log.samples or []:
            items.append(TextItem(str(file), f"{sample.id}#{sample.epoch}", sample.output.completion))
    elif file.suffix == ".csv":
        rows = list(csv.DictReader(_read_text(file).splitlines(keepends=True)))
        if rows and column not in rows[0]:
            raise TextInputError(f"{file}: no column {column!r} (columns: {', '.join(rows[0])}); pass --column")
        for number, row in enumerate(rows, start=1):
            value = row.get(column)
            if value is None:
                raise TextInputError(f"{file}: row {number}: field {column!r} is missing")
            items.append(TextItem(str(file), str(number), value))
    elif file.suffix in (".jsonl", ".ndjson"):
        lm_eval = file.name.startswith("samples_")
        for number, record in json_objects(_read_text(file), file, TextInputError):
            if lm_eval or ("resps" in record and column not in record):
                text = _lm_eval_text(record, file, number)
                key = str(record.get("doc_id", number))
            else:
                if column not in record:
                    raise TextInputError(f"{file}: row {number}: field {column!r} is missing; pass --column")
                value = record[column]
                if not isinstance(value, str):
                    raise TextInputError(f"{file}: row {number}: field {column!r} is not a string")
                text, key = value, str(record.get("id", number))
            items.append(TextItem(str(file), key, text))
    else:
        raise TextInputError(f"{file}: unsupported file type {file.suffix!r} (use .jsonl, .csv, .eval)")
    if not items:
        raise TextInputError(f"{file}: no texts to score")
    if all(is_empty_text(item.text) for item in items):
        raise TextInputError(f"{file}: all {len(items)} texts are empty or whitespace only; nothing to score")
    return items


def _warn_empty(items: Sequence[TextItem], empty: Sequence[int]) -> None:
    """One warning per source: how many of its texts are empty (left out of the mean), and their rows (keys)."""
    if not empty:
        return
    totals: dict[str, int] = {}
    for item in items:
        totals[item.source] = totals.get(item.source, 0) + 1
    by_source: dict[str, list[str]] = {}
    for index in empty:
        by_source.setdefault(items[index].source, []).append(items[index].key)
    for source, keys in by_source.items():
        more = len(keys) - ROWS_SHOWN
        shown = ", ".join(keys[:ROWS_SHOWN]) + (f", ... ({more} more)" if more > 0 else "")
        logger.warning("%d of %d texts in %s are empty or whitespace only: not scored (NaN in the per-text scores), "
                       "left out of the mean and counted as empty_texts; rows (keys): %s",
                       len(keys), totals[source], source, shown)  # fmt: skip


def _looks_like_inspect_log(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:2000]
    except (OSError, UnicodeDecodeError):
        return False
    return '"eval"' in head and '"version"' in head


def iter_chunks(items: Sequence[TextItem], size: int = CHUNK) -> Iterator[Sequence[TextItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def score_items(
    items: Sequence[TextItem],
    *,
    model: str | None = None,
    mode: str = "paper",
    dimension: str = "warmth",
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Scores of many texts, in chunks, with a progress bar on long inputs.

    An empty or whitespace-only text is not scored: its score is NaN, which `summarize` leaves out of the mean and
    counts as ``empty_texts``; a warning gives their number and rows (keys) per file.
    """
    from tqdm import tqdm

    mode = resolve_mode(mode)  # once, before any model loads (a deprecated name warns once)

    empty = [index for index, item in enumerate(items) if is_empty_text(item.text)]
    _warn_empty(items, empty)
    skipped = set(empty)
    scored = [item for index, item in enumerate(items) if index not in skipped]
    parts: list[np.ndarray] = []
    with tqdm(total=len(scored), desc="SocioT", unit="text", disable=not progress or len(scored) <= CHUNK) as bar:
        for chunk in iter_chunks(scored):
            parts.append(sociot_scores([item.text for item in chunk], model=model, mode=mode, dimension=dimension,
                                       batch_size=batch_size, device=device))  # fmt: skip
            bar.update(len(chunk))
    scores = np.full(len(items), np.nan)
    scores[[index for index in range(len(items)) if index not in skipped]] = (
        np.concatenate(parts) if parts else np.empty(0)
    )
    return scores


def write_scores(path: str | Path, items: Sequence[TextItem], scores: np.ndarray) -> None:
    """Per-text scores as CSV: source, key, score, characters."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "key", "score", "chars"])
        for item, value in zip(items, scores, strict=True):
            writer.writerow([item.source, item.key, f"{value:.10g}", len(item.text)])


@dataclass(frozen=True)
class TrajectoryPoint:
    """Warmth of one checkpoint's generations."""

    label: str
    epoch: float
    summary: SocioTSummary


def parse_labelled(specs: Sequence[str]) -> list[tuple[str, float, str]]:
    """``EPOCH=FILE`` (or ``LABEL@EPOCH=FILE``) arguments to (label, epoch, file)."""
    parsed = []
    for spec in specs:
        if "=" not in spec:
            raise TextInputError(f"{spec!r}: expected EPOCH=FILE (e.g. 0=base.jsonl 2=warm-epoch2.jsonl)")
        left, file = spec.split("=", 1)
        label, _, epoch_text = left.rpartition("@")
        try:
            epoch = float(epoch_text)
        except ValueError as error:
            raise TextInputError(f"{spec!r}: the epoch {epoch_text!r} is not a number") from error
        parsed.append((label or epoch_text, epoch, file))
    seen: dict[str, str] = {}
    for (label, _, _), spec in zip(parsed, specs, strict=True):
        if safe_name(label) in seen:
            raise TextInputError(f"{spec!r}: label {label!r} is also given by {seen[safe_name(label)]!r}; their scores "
                                 "would overwrite each other (name them LABEL@EPOCH=FILE)")  # fmt: skip
        seen[safe_name(label)] = spec
    return parsed


def trajectory(
    specs: Sequence[str],
    out_dir: str | Path,
    *,
    column: str = "text",
    model: str | None = None,
    mode: str = "paper",
    batch_size: int | None = None,
    device: str | None = None,
) -> list[TrajectoryPoint]:
    """Score each checkpoint's generations (``LABEL@EPOCH=FILE``); write the trajectory (see `write_trajectory`)."""
    mode = resolve_mode(mode)
    scored = []
    for label, epoch, file in parse_labelled(specs):
        items = read_texts(file, column)
        scores = score_items(items, model=model, mode=mode, batch_size=batch_size, device=device)
        scored.append((label, epoch, items, scores))
    return write_trajectory(scored, out_dir, mode, model)


TRAJECTORY_COLUMNS = ["label", "epoch", "n", "mean", "se", "ci_low", "ci_high", "mode", "model", "model_is_gpt2",
                      "empty_texts"]  # fmt: skip


def write_trajectory(
    scored: Sequence[tuple[str, float, Sequence[TextItem], np.ndarray]],
    out_dir: str | Path,
    mode: str,
    model: str | None = None,
) -> list[TrajectoryPoint]:
    """Write ``scores_<label>.csv`` per checkpoint, ``warmth_trajectory.csv`` and ``warmth_trajectory.png``.

    Args:
        scored: ``(label, epoch, texts, scores)`` per checkpoint, scored by the caller (from files, or read from the
            ``sociot_generations`` task's Inspect logs).
        out_dir: Output folder.
        mode: The SocioT mode the scores were computed in (recorded per row, and on the figure's axis).
        model: SocioT's likelihood model (recorded per row: the report sets a trajectory on the paper's scale only
            when it was scored in ``paper`` mode with GPT-2).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = []
    for label, epoch, items, given in scored:
        # Scores read from logs scored empty answers too: those are left out of the mean here, and counted.
        scores = np.asarray(given, dtype=np.float64).copy()
        empty = [i for i, item in enumerate(items) if is_empty_text(item.text) and not np.isnan(scores[i])]
        _warn_empty(items, empty)
        scores[empty] = np.nan
        write_scores(out / f"scores_{safe_name(label)}.csv", items, scores)
        points.append(TrajectoryPoint(label, epoch, summarize(scores)))
    points.sort(key=lambda p: p.epoch)
    with open(out / "warmth_trajectory.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRAJECTORY_COLUMNS)
        scorer = resolve_model(model)
        for p in points:
            s = p.summary
            writer.writerow([p.label, p.epoch, s.n, f"{s.mean:.8g}", f"{s.se:.8g}", f"{s.ci_low:.8g}",
                             f"{s.ci_high:.8g}", mode, scorer, str(is_gpt2(scorer)).lower(),
                             s.empty_texts])  # fmt: skip
    line = (None, [p.epoch for p in points], [p.summary.mean for p in points], [p.summary.se for p in points])
    plot_trajectories([line], out / "warmth_trajectory.png", f"SocioT warmth ({mode} mode, raw scale)")
    return points


def plot_trajectories(
    series: Sequence[tuple[str | None, Sequence[float], Sequence[float], Sequence[float]]], path: Path, ylabel: str
) -> None:
    """Warmth by checkpoint: one line per ``(name, epochs, means, standard errors)``, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
    for i, (name, epochs, means, ses) in enumerate(series):
        errors = [0.0 if math.isnan(se) else 1.96 * se for se in ses]
        ax.errorbar(list(epochs), list(means), yerr=errors, marker="os^D"[i % 4], color=("black", "0.45", "0.7")[i % 3],
                    capsize=3, linewidth=1.2, label=name)  # fmt: skip
    if any(name for name, *_ in series):
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel("training epoch")
    ax.set_ylabel(ylabel)
    ax.set_title("Warmth of generations by checkpoint (mean ± 95% CI)", fontsize=9)
    ax.grid(True, color="0.85", linewidth=0.6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def trajectories_from_logs(
    logs: Sequence[Any],
    series: dict[str, list[tuple[float, str]]],
    base: str,
    out_dir: str | Path,
    mode: str,
    model: str | None,
) -> list[Path]:
    """The warmth trajectory of each checkpoint series from the ``sociot_generations`` logs of a run.

    The scores are those the task's `sociot_warmth` scorer wrote into the logs; the answers are also written to
    ``generations/<served name>.jsonl`` (``id``, ``prompt``, ``text``), the input ``warmeval sociot trajectory`` takes.

    Args:
        logs: The generations logs (headers; the model is ``vllm/<served name>``).
        series: Per series, ``(epoch, served name)`` of each checkpoint.
        base: The base model's served name (epoch 0 of every series).
        out_dir: Output folder: ``<series>/warmth_trajectory.csv`` (see `write_trajectory`) and ``generations/``.
        mode: The SocioT mode the scores were computed in.
        model: SocioT's likelihood model.

    Returns:
        The ``warmth_trajectory.csv`` of each series, in the order of ``series``.
    """
    import json

    from inspect_ai.log import read_eval_log

    from warmeval.util.files import write_atomic

    out = Path(out_dir)
    by_model: dict[str, tuple[list[TextItem], np.ndarray]] = {}
    for header in logs:
        name = header.eval.model.removeprefix("vllm/")
        log = read_eval_log(header.location)
        items, scores, rows = [], [], []
        for sample in sorted(log.samples or [], key=lambda s: (str(s.id), s.epoch)):
            score = next(iter((sample.scores or {}).values()), None)
            if score is None or not isinstance(score.value, int | float):
                raise RuntimeError(f"{header.location}: sample {sample.id} has no SocioT score")
            items.append(TextItem(source=name, key=str(sample.id), text=sample.output.completion))
            scores.append(float(score.value))
            rows.append({"id": str(sample.id), "prompt": sample.input, "text": sample.output.completion})
        by_model[name] = (items, np.asarray(scores, dtype=float))
        generations = out / "generations" / f"{safe_name(name)}.jsonl"
        write_atomic(generations, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    wanted = {base, *(name for points in series.values() for _, name in points)}
    missing = sorted(wanted - set(by_model))
    if missing:
        raise RuntimeError(f"no sociot_generations log for {', '.join(missing)}")
    tables = []
    for name, points in series.items():
        scored = [("base", 0.0, *by_model[base])]
        scored += [(served, epoch, *by_model[served]) for epoch, served in points]
        write_trajectory(scored, out / name, mode, model)
        tables.append(out / name / "warmth_trajectory.csv")
    return tables
