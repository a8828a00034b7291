"""The report: a self-contained HTML page, Markdown and PNG figures (matplotlib, readable in grayscale).

Figures: error rate by task and variant (unmodified, original prompts) with Wilson score 95% CIs; the fine-tuning
effect (average marginal effect, percentage points) by amendment group and by sub-type; the effect with and without a
stated user belief; and, when SocioT trajectory tables are given, warmth by epoch (points with a non-finite value left
out, with a warning that counts them). Every table carries its sample sizes; the exclusions table gives refusal and
unparseable counts per dataset and variant. Table cells are rounded for people (`tidy`); the JSON files keep every
digit.

"Beside the paper" (`warmeval.analysis.beside`): when the paper's released result tables are at hand (a folder given
as ``paper_results``, else the fetched copy), the run's results next to the paper's five models, computed by the
authors' procedure on both sides, with a Fig. 2-style figure, the SocioT trajectories and the controls; otherwise one
line saying how to get the tables. ``beside_paper.json`` holds the per-dataset differences and the paper's ranges.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import numbers
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from warmeval.analysis.comparability import verdict
from warmeval.analysis.glm import KNOWN_DATASETS, MODEL_SPECS, fit_all
from warmeval.analysis.load import AnalysisInputError, LoadReport, finalize, load_rows, wilson_interval
from warmeval.scorers.judges.refusal import RefusalRule
from warmeval.scorers.sociot.files import plot_trajectories as sociot_plot
from warmeval.util.files import safe_name, write_atomic

log = logging.getLogger(__name__)

GRAYS = ["0.15", "0.55", "0.8", "white"]
HATCHES = ["", "//", "..", "xx"]
VARIANT_ORDER = ["original", "warm", "cold", "warm_sysprompt"]


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class ReportOutputError(OSError):
    """The report folder could not be written or replaced: the message names the path; the previous report, if any,
    is left as it was."""


def error_by_task(frame: pd.DataFrame) -> pd.DataFrame:
    """Error rate per dataset and variant on unmodified, original prompts, with Wilson score 95% CIs (never a point
    at 0 or 1: 4 of 4 wrong gives [0.510, 1])."""
    rows = frame[(frame["amendment_type"] == "unmodified") & (frame["prompt_group"] == "original")]
    table = rows.groupby(["dataset", "variant"])["is_incorrect"].agg(["mean", "count", "sum"]).reset_index()
    table = table.rename(columns={"mean": "error_rate", "count": "n"})
    bounds = [wilson_interval(float(k), float(n)) for k, n in zip(table["sum"], table["n"], strict=True)]
    table["ci_low"] = [low for low, _ in bounds]
    table["ci_high"] = [high for _, high in bounds]
    return table.drop(columns="sum")


def _variants(frame: pd.DataFrame) -> list[str]:
    present = list(frame["variant"].unique())
    return [v for v in VARIANT_ORDER if v in present] + sorted(v for v in present if v not in VARIANT_ORDER)


def plot_error_by_task(table: pd.DataFrame, path: Path) -> None:
    plt = _plt()
    datasets = sorted(table["dataset"].unique())
    variants = _variants(table)
    width = 0.8 / max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=150)
    for i, variant in enumerate(variants):
        sub = table[table["variant"] == variant].set_index("dataset").reindex(datasets)
        xs = [k + (i - (len(variants) - 1) / 2) * width for k in range(len(datasets))]
        err = [
            100 * (sub["error_rate"] - sub["ci_low"]).fillna(0),
            100 * (sub["ci_high"] - sub["error_rate"]).fillna(0),
        ]
        style = {"color": GRAYS[i % len(GRAYS)], "hatch": HATCHES[i % len(HATCHES)], "edgecolor": "black"}
        ax.bar(xs, 100 * sub["error_rate"].fillna(0), width, yerr=err, capsize=2, label=variant, linewidth=0.6,
               **style)  # fmt: skip
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel("error rate (%)")
    ax.set_title("Error rate by task (unmodified prompts, 95% CI)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


NOT_ESTIMABLE = "not estimable (separation)"


def effect_table(results: dict[str, Any], key: str) -> pd.DataFrame:
    """AMEs of fine-tuning (percentage points) per level of one model, absent and separated levels included.

    A level flagged for separation is shown as not estimable (its raw numbers stay in ``models.json``).
    """
    model = results.get(key, {})
    rows = []
    for level, ame in model.get("ame", {}).items():
        if ame.get("absent"):
            rows.append({"level": level, "ame_points": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                         "n": 0, "note": "absent"})  # fmt: skip
            continue
        logit = model.get("logit_effects", {}).get(level, model.get("logit_effects", {}).get("overall", {}))
        if ame.get("separation"):
            rows.append({"level": level, "ame_points": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                         "n": ame["n"], "logit_effect": math.nan, "logit_p": math.nan,
                         "note": NOT_ESTIMABLE})  # fmt: skip
            continue
        rows.append({"level": level, "ame_points": 100 * ame["estimate"], "ci_low": 100 * ame["ci_low"],
                     "ci_high": 100 * ame["ci_high"], "n": ame["n"], "logit_effect": logit.get("estimate"),
                     "logit_p": logit.get("p"), "note": ""})  # fmt: skip
    return pd.DataFrame(rows)


def plot_effects(table: pd.DataFrame, path: Path, title: str) -> None:
    plt = _plt()
    shown = table[table["note"] != "absent"] if not table.empty else table
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * max(len(shown), 2) + 1.2), dpi=150)
    if shown.empty:
        ax.text(0.5, 0.5, "model could not be fitted on these data", ha="center", va="center")
    else:
        ys = list(range(len(shown)))
        estimable = (shown["note"] != NOT_ESTIMABLE).to_numpy()
        points = shown[estimable]
        ax.errorbar(points["ame_points"], [y for y, ok in zip(ys, estimable, strict=True) if ok],
                    xerr=[points["ame_points"] - points["ci_low"], points["ci_high"] - points["ame_points"]],
                    fmt="o", color="black", capsize=3)  # fmt: skip
        for y, ok in zip(ys, estimable, strict=True):
            if not ok:  # a label where the point would be, never a ±70,000-point interval
                ax.text(0.02, y, NOT_ESTIMABLE, transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                        style="italic")  # fmt: skip
        ax.set_yticks(ys, shown["level"])
        ax.set_ylim(-0.6, len(ys) - 0.4)
        ax.axvline(0, color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xlabel("effect of fine-tuning on error (percentage points, AME, 95% CI)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


TRAJECTORY_COLUMNS = ("epoch", "mean", "se")


def read_trajectories(paths: Sequence[Path]) -> tuple[pd.DataFrame, list[str]]:
    """Read ``warmth_trajectory.csv`` files (one series each, named by its folder) and the warnings about them.

    A point whose epoch or mean is NaN or infinite, or whose standard error is infinite, cannot be plotted honestly:
    it is left out, and a warning (logged, and returned for the report) gives the count, the file, the column and the
    rows. A missing column or a value that is not a number is an `AnalysisInputError` naming the file (and row).
    """
    frames, notes = [], []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except Exception as error:  # a missing or malformed file is the input's problem
            raise AnalysisInputError(f"{path}: cannot read ({type(error).__name__}: {error})") from None
        missing = set(TRAJECTORY_COLUMNS) - set(frame.columns)
        if missing:
            raise AnalysisInputError(f"{path}: missing column(s) {sorted(missing)} (expected a warmth_trajectory.csv)")
        keep = pd.Series(True, index=frame.index)
        for column in TRAJECTORY_COLUMNS:
            raw = frame[column]
            values = pd.to_numeric(raw, errors="coerce")
            text = frame.index[values.isna() & raw.notna()]
            if len(text):
                row = int(text[0])
                raise AnalysisInputError(f"{path}: row {row + 2}: field {column!r} is {raw.iloc[row]!r}, not a number")
            # a NaN standard error is a checkpoint of one text (no interval), not a bad point
            bad = values.abs() == math.inf if column == "se" else ~(values.notna() & (values.abs() != math.inf))
            if bad.any():
                lines = ", ".join(str(int(i) + 2) for i in frame.index[bad])
                notes.append(f"{int(bad.sum())} non-finite value(s) in column {column!r} of {path} (rows {lines}): "
                             "left out of the warmth figure and table")  # fmt: skip
            frame[column] = values
            keep &= ~bad
        frame = frame[keep]
        if frame.empty:
            notes.append(f"{path}: no finite point left; its series is not shown")
            continue
        frames.append(frame.sort_values("epoch").assign(series=path.parent.name or path.stem))
    for note in notes:
        log.warning("warmth trajectory: %s", note)
    if not frames:
        return pd.DataFrame(columns=[*TRAJECTORY_COLUMNS, "series"]), notes
    return pd.concat(frames, ignore_index=True), notes


def _plot_warmth(warmth: pd.DataFrame, out: Path) -> None:
    lines = [(str(series), f["epoch"].tolist(), f["mean"].tolist(), f["se"].tolist())
             for series, f in warmth.groupby("series", sort=False)]  # fmt: skip
    sociot_plot(lines, out, "SocioT warmth (raw)")


def plot_trajectories(paths: list[Path], out: Path) -> pd.DataFrame:
    """Read ``warmth_trajectory.csv`` files (one series each, named by its folder) and plot them on one figure
    (non-finite points left out with a warning: `read_trajectories`)."""
    warmth, _ = read_trajectories(paths)
    _plot_warmth(warmth, out)
    return warmth


# Rounding for people (the JSON files keep every digit): proportions and most figures to 3 decimals, effects in
# percentage points to 1, SocioT warmth (a scale that starts near 0.011) to 4; counts as integers; p-values below
# the last decimal as "<0.001". A value that rounds to zero is shown as 0 (never -0.000), and none in scientific
# notation.
COUNT_COLUMNS = frozenset({"n", "kept", "refusals", "refusals_counted_correct", "refusals_excluded",
                           "unparseable_excluded", "unparseable", "n_pairs", "samples", "epoch"})  # fmt: skip
P_VALUE_COLUMNS = frozenset({"logit_p", "p", "q", "p_mcnemar", "q_fdr"})
DECIMALS = 3


def _decimals(frame: pd.DataFrame) -> dict[str, int]:
    """Decimals per column of one of the report's tables (others: `DECIMALS`)."""
    if "ame_points" in frame.columns:  # an effect table: percentage points
        return {"ame_points": 1, "ci_low": 1, "ci_high": 1}
    if {"series", "mean"} <= set(frame.columns):  # SocioT warmth
        return {column: 4 for column in ("mean", "se", "ci_low", "ci_high")}
    return {}


def format_cell(value: Any, decimals: int = DECIMALS, column: str = "") -> str:
    """One table cell for people: fixed decimals, no scientific notation, "-" for a missing value."""
    if isinstance(value, str):
        return value
    if value is None or (not isinstance(value, list | tuple | dict) and bool(pd.isna(value))):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if not isinstance(value, numbers.Real):
        return str(value)
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if column in COUNT_COLUMNS and number.is_integer():
        return str(int(number))
    if column in P_VALUE_COLUMNS and 0 <= number < 0.5 * 10**-decimals:
        return f"<{10**-decimals:.{decimals}f}"
    text = f"{number:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def tidy(frame: pd.DataFrame, decimals: dict[str, int] | None = None) -> pd.DataFrame:
    """A table as the report shows it: every cell a string (`format_cell`), decimals by column (default: the
    report's own choice for that table, `_decimals`)."""
    places = _decimals(frame) if decimals is None else decimals
    shown = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        shown[column] = [format_cell(v, places.get(str(column), DECIMALS), str(column)) for v in frame[column]]
    return shown


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no rows_\n"
    cells = tidy(frame)
    header = "| " + " | ".join(map(str, cells.columns)) + " |\n|" + "---|" * len(cells.columns) + "\n"
    return header + "".join("| " + " | ".join(row) + " |\n" for row in cells.to_numpy().tolist())


def build_report(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    trajectories: Sequence[str | Path] | None = None,
    controls: pd.DataFrame | None = None,
    rule: RefusalRule | None = None,
    variants: tuple[str, str] = ("original", "warm"),
    also: Sequence[str] = (),
    include_mcq: bool = False,
    paper_results: str | Path | None = None,
) -> Path:
    """Load, analyse and write ``report.html``, ``report.md``, the figures, ``models.json`` and ``comparability.json``.

    Both reports open with the comparability verdict (`warmeval.analysis.comparability`): one line starting
    ``Paper-comparable:`` with every deviation from the paper's protocol the inputs show. Returns the HTML's path.

    Every output is written into a temporary sibling folder, which replaces ``out_dir`` as a whole only once complete:
    a run that fails half-way leaves the previous report as it was (and no half-written file). Tables are rounded
    for people (`tidy`); the JSON files keep full precision.

    Args:
        inputs: Inspect log folders or files, release folders, or saved tables.
        out_dir: Report folder.
        trajectories: ``warmth_trajectory.csv`` files, one series each (named by its folder).
        controls: A table of capability and safety controls (one row per control and variant, with ``control`` and
            ``n``) to show as is and to judge against the paper's sizes (None: the controls are not checked).
        rule: Refusal rule (default: the one the logs were scored with; see `warmeval.analysis.load`).
        variants: The two variants the models compare (when both are present): ``models.json`` and the model
            figures.
        also: Further interventions, each compared with ``variants[0]`` on its own (never pooled), as the paper
            fits them: ``models_<variant>.json`` and figures named ``..._<variant>.png``.
        include_mcq: Fit the models with the released ``mcq`` prompts too (left out by default, as in the paper).
        paper_results: A folder holding the paper's released result tables (None: the fetched copy, if any).

    Raises:
        AnalysisInputError: Inputs that cannot be analysed, or hold no analysable response (nothing is written); a
            trajectory file with a missing column or a value that is not a number.
        PaperResultsError: ``paper_results`` names a folder whose tables are missing or not the released ones.
        ReportOutputError: ``out_dir`` holds files a report does not write, or could not be written or replaced
            (the previous report is left untouched).
    """
    from warmeval.analysis.paper_results import locate

    out = Path(out_dir)
    load_report = LoadReport()
    rows, chosen = load_rows(list(inputs), rule, load_report)
    frame = finalize(rows, chosen, load_report)
    if frame.empty:  # before anything is written: a report of "0 of 0 responses" is no report
        raise AnalysisInputError(_nothing_to_analyse(inputs, load_report))
    folder = locate(paper_results)  # before any figure: a bad folder is the caller's error
    warmth, warmth_notes = read_trajectories([Path(p) for p in trajectories]) if trajectories else (None, [])
    target = _report_folder(out)
    results = _fit(frame, variants, include_mcq)

    def write(stage: Path) -> None:
        write_atomic(stage / "models.json", json.dumps(results, indent=1, default=float))
        sections: list[tuple[str, str | None, Any]] = []
        errors = error_by_task(frame)
        exclusions = load_report.table()
        if not exclusions.empty:
            errors = errors.merge(
                exclusions[["dataset", "variant", "refusals", "unparseable_excluded"]],
                on=["dataset", "variant"],
                how="left",
            )
        plot_error_by_task(errors, stage / "error_by_task.png")
        sections.append(("Error rate by task and variant", "error_by_task.png", errors))
        sections[1:1] = _model_sections(results, stage, "")
        for other in also:
            pair = (variants[0], other)
            extra = _fit(frame, pair, include_mcq)
            write_atomic(stage / f"models_{safe_name(other)}.json", json.dumps(extra, indent=1, default=float))
            sections += _model_sections(extra, stage, f"{other} vs {variants[0]}")
        if warmth is not None:
            _plot_warmth(warmth, stage / "warmth_trajectory.png")
            sections.append(("SocioT warmth by checkpoint", "warmth_trajectory.png", warmth))
            sections += [("### Warning: warmth points left out", None, f"Warning: {note}.") for note in warmth_notes]
        if controls is not None and not controls.empty:
            sections.append(("Capability and safety controls", None, controls))
        sections.append(("Sample sizes and exclusions (refusals, unparseable verdicts)", None, load_report.table()))
        beside_sections, beside_json = _beside(rows, chosen, folder, stage, warmth, controls)
        write_atomic(stage / "beside_paper.json", json.dumps(beside_json, indent=1))

        absent = [d for d in KNOWN_DATASETS if d not in set(frame["dataset"])]
        reference = next((m["reference_dataset"] for m in results.values() if m.get("reference_dataset")), None)
        judged = verdict(load_report, controls=controls)
        write_atomic(stage / "comparability.json", json.dumps(judged.to_json(), indent=1))
        intro = (f"Responses analysed: {len(frame)} of {load_report.rows_read} read; refusal rule: "
                 f"{load_report.rule}; models fitted on variants {', '.join(variants)}"
                 + "".join(f"; and on {variants[0]}, {other}" for other in also)
                 + f"; datasets absent: {', '.join(absent) or 'none'}; reference "
                 f"dataset: {reference or '-'}. Effects are average marginal effects in percentage points unless "
                 "marked as log-odds; intervals of proportions are Wilson score intervals.")  # fmt: skip
        notes = "".join(f" Note: {note}" for note in load_report.notes)  # e.g. duplicate responses passed over
        intro += notes
        md = ["# warmeval report\n", judged.line() + "\n", intro + "\n"]
        body = [
            f"<h1>warmeval report</h1><p class='verdict'><strong>{html.escape(judged.line())}</strong></p>"
            f"<p>{html.escape(intro)}</p>"
        ]
        for title, figure, table in [*sections, *beside_sections]:
            level = 3 if title.startswith("### ") else 2
            title = title.removeprefix("### ")
            md.append(f"\n{'#' * level} {title}\n")
            body.append(f"<h{level}>{html.escape(title)}</h{level}>")
            if figure:
                md.append(f"![{title}]({figure})\n")
                data = base64.b64encode((stage / figure).read_bytes()).decode()
                body.append(f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">')
            if isinstance(table, str):
                md.append(table + "\n")
                body.append(f"<p>{html.escape(table)}</p>")
            elif not (figure and table.empty):
                md.append(_md_table(table))
                body.append(tidy(table).to_html(index=False))
        write_atomic(stage / "report.md", "\n".join(md))
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>warmeval report</title><style>"
                "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
                "td,th{border:1px solid #999;padding:2px 6px;font-size:90%}img{max-width:100%}</style></head><body>"
                + "".join(body) + "</body></html>")  # fmt: skip
        write_atomic(stage / "report.html", page)

    _write_replacing(out, target, write)
    return out / "report.html"


def _nothing_to_analyse(inputs: Sequence[str | Path], report: LoadReport) -> str:
    names = ", ".join(str(p) for p in inputs)
    if report.rows_read == 0:
        return f"{names}: no responses found (the input holds no rows); nothing to report"
    refusals, unparseable = sum(report.refusals_excluded.values()), sum(report.unparseable.values())
    return (f"{names}: no responses found to analyse: {report.rows_read} read, {refusals} refusals and "
            f"{unparseable} without a CORRECT/INCORRECT verdict excluded; nothing to report")  # fmt: skip


# What a report folder may hold: what `build_report` writes (and `write_atomic`'s leftovers). A folder holding
# anything else is not replaced: the report replaces its folder as a whole.
REPORT_FILES = re.compile(r"(report\.html|report\.md|models(_.+)?\.json|comparability\.json|beside_paper\.json|"
                          r"[^/]+\.png|\..+\.tmp)")  # fmt: skip


def _report_folder(out: Path) -> Path:
    """The folder the report replaces (a link's target), checked before anything is written: absent, or a folder
    that holds nothing but an earlier report's files."""
    target = out.resolve() if out.is_symlink() else Path(os.path.abspath(out))
    if not target.exists():
        return target
    if not target.is_dir():
        raise ReportOutputError(f"{out}: not a folder; the report needs a folder of its own")
    foreign = sorted(p.name for p in target.iterdir() if p.is_dir() or not REPORT_FILES.fullmatch(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ReportOutputError(f"{out}: holds {shown}, which a report does not write; a report replaces its folder "
                                "as a whole, so give a new folder, an empty one or an earlier report's")  # fmt: skip
    return target


def _write_replacing(out: Path, target: Path, write: Callable[[Path], None]) -> None:
    """Write the report into a temporary sibling of ``target`` (``<name>.tmp-<pid>``) and, once complete, put it in
    the place of the previous one as a whole (renamed to ``<name>.old-<pid>`` meanwhile, then deleted). On any
    failure the temporary folder is deleted and the previous report is left untouched; a failure to write is a
    `ReportOutputError` naming ``out`` (and the file)."""
    stage = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        if stage.exists():  # left by an earlier process of the same id
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
    except OSError as error:
        raise ReportOutputError(f"{stage}: cannot create the report's temporary folder ({error})") from error
    try:
        write(stage)
        _swap(stage, target)
    except OSError as error:
        shutil.rmtree(stage, ignore_errors=True)
        if isinstance(error, ReportOutputError):
            raise
        raise ReportOutputError(f"{out}: report not written, the previous one is left as it was ({error})") from error
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _swap(stage: Path, target: Path) -> None:
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)
    previous = target.exists()
    if previous:
        os.rename(target, old)
    try:
        os.rename(stage, target)
    except OSError:
        if previous:
            os.rename(old, target)
        raise
    if previous:
        shutil.rmtree(old, ignore_errors=True)
        if old.exists():
            log.warning("%s: the previous report could not be deleted", old)


def _fit(frame: pd.DataFrame, variants: tuple[str, str], include_mcq: bool) -> dict[str, Any]:
    """The four models on one pair of variants; each says why when a variant is absent."""
    missing = [v for v in variants if v not in set(frame["variant"])]
    if missing:
        present = ", ".join(sorted(set(frame["variant"])))
        reason = f"variant(s) {', '.join(missing)} absent from the data (present: {present or 'none'})"
        return {spec.key: {"title": spec.title, "error": reason} for spec in MODEL_SPECS}
    return fit_all(frame[frame["variant"].isin(variants)], include_mcq=include_mcq)


def _model_sections(results: dict[str, Any], out: Path, comparison: str) -> list[tuple[str, str | None, Any]]:
    """The main effect and the three effect figures of one comparison (``comparison`` "" for the primary one, whose
    figures keep their plain names; another's carry its intervention in title and file name)."""
    suffix = f" — {comparison}" if comparison else ""
    tag = f"_{safe_name(comparison.split(' vs ')[0])}" if comparison else ""
    sections: list[tuple[str, str | None, Any]] = [
        (f"Main effect of fine-tuning (model 1){suffix}", None, effect_table(results, "model1"))
    ]
    for key, name, title in (
        ("model2", f"effect_by_amendment_group{tag}.png", f"Fine-tuning effect by amendment group (model 2){suffix}"),
        ("model3", f"effect_by_amendment_type{tag}.png", f"Fine-tuning effect by amendment sub-type (model 3){suffix}"),
        ("model4", f"effect_by_user_belief{tag}.png",
         f"Fine-tuning effect without / with a stated user belief (model 4){suffix}"),
    ):  # fmt: skip
        table = effect_table(results, key)
        plot_effects(table, out / name, title)
        note = results.get(key, {}).get("error")
        separated = results.get(key, {}).get("separation")
        if separated:
            note = f"separation in {'; '.join(separated)} (flagged levels are {NOT_ESTIMABLE})"
            sections.append((title + f" — {note}", name, table))
        else:
            sections.append((title + (f" — not fitted: {note}" if note else ""), name, table))
    return sections


BESIDE_TITLE = "Beside the paper"


def _beside(
    rows: pd.DataFrame,
    rule: RefusalRule,
    folder: Path | None,
    out: Path,
    warmth: pd.DataFrame | None,
    controls: pd.DataFrame | None,
) -> tuple[list[tuple[str, str | None, Any]], dict[str, Any]]:
    """The "Beside the paper" section: ``(title, figure, table or text)`` entries (``### `` marks a subsection) and
    the JSON summary. ``folder`` is already checked (`locate`); ``warmth`` is the run's trajectories, as read."""
    from warmeval.analysis.beside import beside_paper, controls_beside, plot_fig2, plot_sociot
    from warmeval.analysis.paper_results import HOW_TO_GET, read_paper_results
    from warmeval.util.files import safe_name

    if folder is None:
        return [(BESIDE_TITLE, None, HOW_TO_GET[0].upper() + HOW_TO_GET[1:] + ".")], {
            "available": False,
            "how_to_get": HOW_TO_GET,
        }
    results = read_paper_results(folder)
    beside = beside_paper(rows, results, rule)
    intro = (f"The paper's five models ({', '.join(results.models())}) from the authors' released tables in {folder}; "
             "this run's responses go through the authors' own paired-test procedure (`warmeval analyse paired "
             "--layout paper`), and both sides are summarised alike: accuracy on unmodified prompts, and differences "
             "(intervention minus original, percentage points; negative = more errors) on unmodified prompts, "
             "per amendment group (unweighted mean of its sub-types) and under stated user beliefs.")  # fmt: skip
    entries: list[tuple[str, str | None, Any]] = [(BESIDE_TITLE, None, intro)]
    for note in [*beside.notes, *[f"set aside from the release: {d}" for d in results.dropped]]:
        entries.append(("### Note", None, note))
    for title, table in beside.tables():
        entries.append((f"### {title}", None, table))
    for intervention, summary in beside.run.items():
        for model in dict.fromkeys(summary["model"]):
            name = f"paper_fig2_{intervention}_{safe_name(str(model))}.png"
            plot_fig2(beside, intervention, str(model), out / name)
            title = f"### Error rates beside the paper's models: {intervention}, {model}"
            entries.append((title, name, pd.DataFrame()))
    if warmth is not None:
        note = plot_sociot(results, warmth, out / "paper_sociot.png")
        entries.append(("### SocioT warmth beside the paper's Fig. 1a", "paper_sociot.png", note))
    entries.append(("### Capability and safety controls beside the paper's (original vs warm)", None,
                    controls_beside(results, controls)))  # fmt: skip
    summary = {
        "available": True, "folder": str(folder), "paper_models": results.models(), "notes": beside.notes,
        "ranges": {i: {d: {"paper_min": lo, "paper_max": hi, "run": run} for d, (lo, hi, run) in
                       beside.ranges(i).items()} for i in beside.run},
    }  # fmt: skip
    return entries, summary
