"""Beside the paper: a run's results next to the paper's five models, computed the same way on both sides.

For each intervention the run has (warm, cold, warm_sysprompt, each against ``original``), the run's responses go
through the authors' own paired-test procedure (`warmeval.analysis.paired.paper_layout`), and the resulting rows are
summarised exactly as the released rows of the paper's models (`warmeval.analysis.paper_results`):

* ``unmodified``: the ``unmodified / original_combined`` row (no interpersonal context, original template): the
  original and the intervention's accuracy and their difference;
* ``emotion``, ``relation``, ``stake``: the difference of the unweighted means of the group's sub-type rows on the
  original template (the release gives no row counts, so both sides weight sub-types equally);
* ``user belief``: the same over the ``Sycophancy`` rows (correct and incorrect stated beliefs, every amendment type).

Differences are in percentage points (intervention minus original accuracy: negative = more errors). The paper's range
is the lowest and highest of its models for that dataset and intervention.

Figures: per intervention and model of the run, a Fig. 2-style panel per dataset (the error rate of the original
model and of the intervention on unmodified prompts, the five paper models and this run's model as a sixth labelled
row); the SocioT trajectories beside the paper's five (Fig. 1a) on one axis only when the run scored them with the
authors' implementation (``paper`` mode) and GPT-2, else in two panels with the reason in the title; and the
capability and safety controls beside the paper's, with 95% CIs (the run's: Wilson score intervals of its item
counts).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from warmeval.analysis.load import wilson_interval
from warmeval.analysis.paired import PairingError, paper_layout
from warmeval.analysis.paper_results import INTERVENTIONS, PAPER_MODELS, PaperResults, normalise_paired
from warmeval.scorers.judges.refusal import RefusalRule

GROUPS = ("emotion", "relation", "stake")
SUMMARY_COLUMNS = ["model", "dataset", "original", "intervention", "unmodified", *GROUPS, "user belief"]
INTERVENTION_TITLES = {"warm": "warm fine-tune", "cold": "cold fine-tune", "warm_sysprompt": "warm system prompt"}
# The run's control names -> the paper's benchmark names; AdvBench is a refusal rate in both.
CONTROL_NAMES = {"mmlu": "MMLU", "gsm8k": "GSM8K", "advbench": "AdvBench"}


def summarise(paired: pd.DataFrame) -> pd.DataFrame:
    """One row per model and dataset of normalised paired rows (see the module docstring); NaN where absent."""
    rows = []
    for (model, dataset), group in paired.groupby(["model", "dataset"], sort=False):
        normal = group[group["test_type"] == "Normal"]
        unmodified = normal[normal["category"] == "unmodified\noriginal_combined"]
        row: dict[str, Any] = {"model": model, "dataset": dataset, "original": math.nan, "intervention": math.nan,
                               "unmodified": math.nan}  # fmt: skip
        if not unmodified.empty:
            row["original"] = float(unmodified["acc_original"].iloc[0])
            row["intervention"] = float(unmodified["acc_intervention"].iloc[0])
            row["unmodified"] = row["intervention"] - row["original"]
        for name in GROUPS:
            part = normal[normal["amendment_type"].str.startswith(f"{name}:")]
            row[name] = _mean_difference(part)
        row["user belief"] = _mean_difference(group[group["test_type"] == "Sycophancy"])
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _mean_difference(part: pd.DataFrame) -> float:
    if part.empty:
        return math.nan
    return float(part["acc_intervention"].mean() - part["acc_original"].mean())


@dataclass
class Beside:
    """The run beside the paper, per intervention: the run's summary, the paper's, and what could not be compared."""

    run: dict[str, pd.DataFrame] = field(default_factory=dict)  # intervention -> summary of the run's models
    paper: dict[str, pd.DataFrame] = field(default_factory=dict)  # intervention -> summary of the paper's models
    notes: list[str] = field(default_factory=list)

    def tables(self) -> list[tuple[str, pd.DataFrame]]:
        """``(title, table)`` per intervention and dataset: the run's models, the paper's five and the paper's range."""
        out = []
        for intervention, run in self.run.items():
            paper = self.paper[intervention]
            for dataset in dict.fromkeys(run["dataset"]):
                mine = run[run["dataset"] == dataset].assign(model=lambda f: f["model"] + " (this run)")
                theirs = paper[paper["dataset"] == dataset]
                theirs = theirs.set_index("model").reindex([m for m in PAPER_MODELS if m in set(theirs["model"])])
                theirs = theirs.reset_index()
                span = {"model": "paper range", "dataset": dataset}
                for column in ("original", "intervention", "unmodified", *GROUPS, "user belief"):
                    values = theirs[column].dropna()
                    sign = "" if column in ("original", "intervention") else "+"
                    span[column] = "-" if values.empty else f"{values.min():{sign}.1f} to {values.max():{sign}.1f}"
                table = pd.concat([_display(mine), _display(theirs), pd.DataFrame([span])], ignore_index=True)
                title = f"{dataset}: {INTERVENTION_TITLES.get(intervention, intervention)} vs original"
                out.append((title, table.drop(columns="dataset").rename(columns=_HEADERS)))
        return out

    def ranges(self, intervention: str = "warm") -> dict[str, tuple[float, float, dict[str, float | None]]]:
        """Per dataset: the paper's lowest and highest unmodified difference and the run's, by model (None where the
        run has no unmodified row for it)."""
        if intervention not in self.run:
            return {}
        out = {}
        paper, run = self.paper[intervention], self.run[intervention]
        for dataset in dict.fromkeys(run["dataset"]):
            values = paper.loc[paper["dataset"] == dataset, "unmodified"].dropna()
            mine = run[run["dataset"] == dataset].set_index("model")["unmodified"].to_dict()
            if not values.empty:
                run_values = {str(k): (None if pd.isna(v) else round(float(v), 4)) for k, v in mine.items()}
                out[str(dataset)] = (round(float(values.min()), 4), round(float(values.max()), 4), run_values)
        return out


_HEADERS = {
    "original": "original acc. (%)", "intervention": "intervention acc. (%)", "unmodified": "Δ unmodified (pp)",
    "emotion": "Δ emotion (pp)", "relation": "Δ relation (pp)", "stake": "Δ stake (pp)",
    "user belief": "Δ user belief (pp)",
}  # fmt: skip


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame.copy().astype(object)
    for column in ("original", "intervention"):
        shown[column] = [("-" if pd.isna(v) else f"{v:.1f}") for v in frame[column]]
    for column in ("unmodified", *GROUPS, "user belief"):
        shown[column] = [("-" if pd.isna(v) else f"{v:+.1f}") for v in frame[column]]
    return shown


def short_name(model: str) -> str:
    """A run's model as the comparison labels it: a local folder by its name, a Hub id or served name as it is."""
    return Path(model).name if Path(model).is_absolute() else model


def beside_paper(rows: pd.DataFrame, results: PaperResults, rule: RefusalRule = "paper") -> Beside:
    """The run's rows (`warmeval.analysis.load.load_rows`) beside the paper, for each intervention present."""
    beside = Beside()
    variants = set(rows["variant"])
    if "original" not in variants:
        beside.notes.append("the run has no original variant: nothing to compare with the paper's paired tests")
        return beside
    for intervention in INTERVENTIONS:
        if intervention not in variants:
            continue
        try:
            table, _ = paper_layout(rows, "original", intervention, rule)
        except PairingError as error:
            beside.notes.append(f"{intervention}: {error}")
            continue
        mine = normalise_paired(table, intervention, f"{intervention} (this run)", name=short_name)
        theirs = results.paired[results.paired["intervention"] == intervention]
        beside.run[intervention] = summarise(mine)
        beside.paper[intervention] = summarise(theirs)
    missing = [v for v in variants - {"original"} if v not in INTERVENTIONS]
    if missing:
        beside.notes.append(f"variants without a counterpart in the paper: {', '.join(sorted(missing))}")
    return beside


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fig2(beside: Beside, intervention: str, model: str, path: Path) -> None:
    """Fig. 2 style: per dataset, the original and the intervention's error rate (unmodified prompts) of the paper's
    five models and of the run's ``model`` (a sixth labelled row)."""
    plt = _plt()
    run, paper = beside.run[intervention], beside.paper[intervention]
    datasets = list(dict.fromkeys(run.loc[run["model"] == model, "dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.1 * len(datasets) + 1.2, 3.2), dpi=150, squeeze=False)
    labels = [*[m for m in PAPER_MODELS if m in set(paper["model"])], f"{model} (this run)"]
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for y, label in enumerate(labels):
            source = run[(run["model"] == model)] if label.endswith("(this run)") else paper[paper["model"] == label]
            row = source[source["dataset"] == dataset]
            if row.empty or pd.isna(row["original"].iloc[0]):
                ax.text(50, y, "absent", ha="center", va="center", fontsize=6, style="italic")
                continue
            before, after = 100 - float(row["original"].iloc[0]), 100 - float(row["intervention"].iloc[0])
            mine = label.endswith("(this run)")
            ax.plot([before, after], [y, y], color="black" if mine else "0.55", linewidth=1.6 if mine else 1)
            ax.scatter([before], [y], facecolors="white", edgecolors="black", zorder=3, s=22)
            ax.scatter([after], [y], color="black", zorder=3, s=22, marker="D" if mine else "o")
        ax.set_yticks(range(len(labels)), labels if ax is axes[0][0] else [""] * len(labels), fontsize=7)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.set_xlim(-2, 102)
        ax.set_title(dataset, fontsize=8)
        ax.set_xlabel("error rate (%)", fontsize=7)
        ax.grid(True, axis="x", color="0.88", linewidth=0.6)
    fig.suptitle(f"Original (open) vs {INTERVENTION_TITLES.get(intervention, intervention)} (filled): unmodified "
                 "prompts, the paper's five models and this run", fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_sociot(results: PaperResults, trajectories: pd.DataFrame | None, path: Path) -> str:
    """The paper's five SocioT trajectories (Fig. 1a), with the run's: on one axis when the run's are on the paper's
    scale, else side by side. Returns a one-line note saying which, and why."""
    plt = _plt()
    same_scale, reason = _sociot_scale(trajectories)
    panels = 1 if trajectories is None or same_scale else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.6), dpi=150, squeeze=False)
    ax = axes[0][0]
    styles = ["o", "s", "^", "D", "v"]
    for i, model in enumerate(m for m in PAPER_MODELS if m in set(results.sociot["model"])):
        part = results.sociot[results.sociot["model"] == model].sort_values("epoch")
        ax.errorbar(part["epoch"], part["mean"], yerr=1.96 * part["sem"], marker=styles[i % 5], markersize=3,
                    color=str(0.15 + 0.14 * i), linewidth=1, capsize=2, label=f"{model} (paper)")  # fmt: skip
    ax.set_title("SocioT warmth: the paper's models (GPT-2, authors' implementation)", fontsize=8)
    target = ax if panels == 1 else axes[0][1]
    if trajectories is not None:
        for i, (series, part) in enumerate(trajectories.groupby("series", sort=True)):
            part = part.sort_values("epoch")
            target.errorbar(part["epoch"], part["mean"], yerr=1.96 * part["se"].fillna(0), marker="*^sD"[i % 4],
                            markersize=6, color=("black", "0.5")[i % 2], linestyle=("-", "--")[i % 2], linewidth=2,
                            capsize=2, label=f"{series} (this run)")  # fmt: skip
        if panels == 2:
            target.set_title(textwrap.fill(f"This run: {reason}", 70), fontsize=7)
    for axis in axes[0]:
        axis.set_xlabel("training epoch", fontsize=7)
        axis.set_ylabel("SocioT warmth", fontsize=7)
        axis.legend(fontsize=6, frameon=False)
        axis.grid(True, color="0.88", linewidth=0.6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    if trajectories is None:
        return "the run has no SocioT trajectory: the paper's five are shown alone"
    return (
        "the run's trajectories are on the paper's scale (authors' implementation, GPT-2) and share its axis"
        if same_scale
        else f"the run's trajectories are shown in their own panel: {reason}"
    )


def _sociot_scale(trajectories: pd.DataFrame | None) -> tuple[bool, str]:
    if trajectories is None:
        return False, ""
    if "mode" not in trajectories.columns or "model_is_gpt2" not in trajectories.columns:
        return False, "its trajectory files do not record SocioT's mode and model, so its scale is unknown"
    modes = set(trajectories["mode"].astype(str))
    if modes != {"paper"}:
        return False, (f"scored in {', '.join(sorted(modes))} mode, not the authors' implementation (paper mode), "
                       "so its scale differs from the paper's")  # fmt: skip
    gpt2 = trajectories["model_is_gpt2"].astype(str).str.lower().eq("true")
    if not bool(gpt2.all()):
        names = ", ".join(sorted(set(trajectories.loc[~gpt2, "model"].astype(str))))
        return False, f"scored with {names}, not GPT-2, so its scale differs from the paper's"
    return True, ""


def controls_beside(results: PaperResults, controls: pd.DataFrame | None) -> pd.DataFrame:
    """The paper's MMLU, GSM8K and AdvBench (original and warm, % with 95% CIs) and the run's, one row each."""
    rows = []
    for record in results.benchmarks.to_dict("records"):
        rows.append({"benchmark": record["benchmark"], "model": f"{record['model']} (paper)",
                     "variant": record["variant"], "value (%)": f"{record['accuracy']:.1f}",
                     "95% CI": f"[{record['ci_low']:.1f}, {record['ci_high']:.1f}]", "n": "-"})  # fmt: skip
    if controls is not None and not controls.empty:
        for record in controls.to_dict("records"):
            name = CONTROL_NAMES.get(str(record["control"]))
            if name is None or record.get("value") is None or pd.isna(record.get("value")):
                continue
            value, se, n = 100 * float(record["value"]), record.get("stderr"), _count(record.get("n"))
            interval = "-"
            if n and 0 <= value <= 100:  # a proportion of n items: the Wilson score interval
                low, high = wilson_interval(value / 100 * n, n)
                interval = f"[{100 * low:.1f}, {100 * high:.1f}]"
            elif se is not None and not pd.isna(se):  # no item count: the normal approximation is all there is
                interval = f"[{max(0.0, value - 196 * float(se)):.1f}, {min(100.0, value + 196 * float(se)):.1f}]"
            rows.append({"benchmark": name, "model": "this run", "variant": record["variant"],
                         "value (%)": f"{value:.1f}", "95% CI": interval, "n": str(record.get("n", "-"))})  # fmt: skip
    table = pd.DataFrame(rows, columns=["benchmark", "model", "variant", "value (%)", "95% CI", "n"])
    order = {name: i for i, name in enumerate(CONTROL_NAMES.values())}
    return table.sort_values("benchmark", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _count(value: Any) -> float:
    """An item count from a controls table (0 when absent or not a positive number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def beside_lines(summary: dict[str, Any], intervention: str = "warm") -> list[str]:
    """Console lines from a report's ``beside_paper.json``: per dataset, the run's unmodified-prompt difference
    (intervention minus original, points) beside the paper's range; or the line saying how to get the tables."""
    if not summary.get("available"):
        return [f"Beside the paper: {summary.get('how_to_get', 'the paper tables are not at hand')}"]
    ranges = summary.get("ranges", {}).get(intervention, {})
    if not ranges:
        return [f"Beside the paper: no {intervention} vs original comparison in this run"]
    title = INTERVENTION_TITLES.get(intervention, intervention)
    lines = [f"Beside the paper ({title} minus original accuracy, unmodified prompts, percentage points; the paper's "
             f"five models from {summary.get('folder')}):"]  # fmt: skip
    for dataset, entry in ranges.items():
        run = ", ".join(f"{model} {'n/a' if v is None else f'{v:+.1f}'}" for model, v in entry["run"].items())
        low, high = entry["paper_min"], entry["paper_max"]
        lines.append(f"  {dataset:<11} this run: {run}; the paper: {low:+.1f} to {high:+.1f}")
    return lines
