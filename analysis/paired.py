"""Paired comparisons of two variants on identical prompts: McNemar exact test, Benjamini-Hochberg FDR, effect sizes.

Two layouts. The default, `paired_cells`, is warmeval's. `paper_layout` is the authors' table, row for row (see its
docstring): the layout of their released ``summary_data/results_*.csv``.

Responses are matched on (model, dataset, question_id, prompt_template, amendment_type, epoch). For each cell
(model x dataset x amendment_type x prompt_group) the 2x2 table of correctness gives:

* ``n_pairs``; ``acc_a``, ``acc_b`` and ``diff_points`` (accuracy of B minus A, in percentage points);
* ``b_only_wrong`` (A correct, B incorrect) and ``a_only_wrong`` (A incorrect, B correct), the discordant pairs;
* ``p_mcnemar`` (exact binomial McNemar test) and ``q_fdr`` (Benjamini-Hochberg across all cells of the table);
* ``cohens_g`` = |b_only_wrong / discordant - 0.5| (0 when there is no discordant pair), Cohen's g as textbooks
  define it;
* ``mcnemar_z`` = |b_only_wrong - a_only_wrong| / sqrt(discordant) (NaN without discordant pairs), the square root of
  the uncorrected McNemar chi-square: the statistic the authors' table labels "Cohen's g";
* ``odds_ratio`` = b_only_wrong / a_only_wrong, the conditional odds that B errs where A does not (inf when
  a_only_wrong is 0, NaN when both are 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from warmeval.scorers.judges.refusal import RefusalRule, refusal_pattern

PAIR_KEYS = ["model", "dataset", "question_id", "prompt_template", "amendment_type", "epoch"]
CELL_KEYS = ["model", "dataset", "amendment_type", "prompt_group"]


class PairingError(ValueError):
    """The two variants share no prompts, or a variant is missing."""


def pair_variants(frame: pd.DataFrame, variant_a: str, variant_b: str) -> pd.DataFrame:
    """One row per prompt answered by both variants, with ``incorrect_a`` and ``incorrect_b``."""
    present = set(frame["variant"].unique())
    for variant in (variant_a, variant_b):
        if variant not in present:
            raise PairingError(f"variant {variant!r} not in the data (variants: {sorted(present)})")
    columns = [*PAIR_KEYS, "prompt_group", "is_incorrect"]
    a = frame.loc[frame["variant"] == variant_a, columns]
    b = frame.loc[frame["variant"] == variant_b, [*PAIR_KEYS, "is_incorrect"]]
    for name, side in (("A", a), ("B", b)):
        duplicated = side.duplicated(PAIR_KEYS)
        if duplicated.any():
            first = side[duplicated].iloc[0]
            raise PairingError(f"variant {name}: prompt {dict(first[PAIR_KEYS])} appears more than once")
    pairs = a.merge(b, on=PAIR_KEYS, suffixes=("_a", "_b"))
    if pairs.empty:
        raise PairingError(f"variants {variant_a!r} and {variant_b!r} share no prompts (matched on {PAIR_KEYS})")
    return pairs


@dataclass
class PromptCoverage:
    """How two sides' prompts pair up: ``a`` and ``b`` distinct prompts, ``paired`` on both sides, ``only_a`` and
    ``only_b`` on one side only."""

    a: int
    b: int
    paired: int
    only_a: int
    only_b: int


def prompt_coverage(a: pd.DataFrame, b: pd.DataFrame, keys: list[str] | None = None) -> PromptCoverage:
    """Distinct prompts (``keys``, default `PAIR_KEYS`, compared as text) of two sides, and how many pair up."""
    columns = keys or PAIR_KEYS

    def prompts(frame: pd.DataFrame) -> set[tuple[str, ...]]:
        return set(frame[columns].astype(str).itertuples(index=False, name=None))

    left, right = prompts(a), prompts(b)
    both = len(left & right)
    return PromptCoverage(len(left), len(right), both, len(left) - both, len(right) - both)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts b and c."""
    from scipy.stats import binomtest

    n = b + c
    return 1.0 if n == 0 else float(binomtest(min(b, c), n, 0.5).pvalue)


def bh_fdr(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values)."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(p_values, dtype=float)
    if values.size == 0:
        return values
    return np.asarray(multipletests(values, method="fdr_bh")[1])


def summarize_pairs(pairs: pd.DataFrame) -> dict[str, float]:
    """Statistics of one set of pairs (see the module docstring)."""
    wrong_a = pairs["is_incorrect_a"].to_numpy()
    wrong_b = pairs["is_incorrect_b"].to_numpy()
    b_only = int(((wrong_a == 0) & (wrong_b == 1)).sum())
    a_only = int(((wrong_a == 1) & (wrong_b == 0)).sum())
    n = len(pairs)
    discordant = a_only + b_only
    odds = math.nan if discordant == 0 else (math.inf if a_only == 0 else b_only / a_only)
    acc_a, acc_b = 1 - wrong_a.mean(), 1 - wrong_b.mean()
    return {
        "n_pairs": n,
        "acc_a": float(acc_a),
        "acc_b": float(acc_b),
        "error_a": float(1 - acc_a),
        "error_b": float(1 - acc_b),
        "diff_points": float(100 * (acc_b - acc_a)),
        "b_only_wrong": b_only,
        "a_only_wrong": a_only,
        "p_mcnemar": mcnemar_exact(b_only, a_only),
        "cohens_g": 0.0 if discordant == 0 else abs(b_only / discordant - 0.5),
        "mcnemar_z": math.nan if discordant == 0 else abs(b_only - a_only) / math.sqrt(discordant),
        "odds_ratio": odds,
    }


def paired_cells(frame: pd.DataFrame, variant_a: str, variant_b: str, keys: list[str] | None = None) -> pd.DataFrame:
    """Per-cell paired comparison of B against A with BH-FDR across cells."""
    pairs = pair_variants(frame, variant_a, variant_b)
    cell_keys = keys or CELL_KEYS
    rows = []
    for cell, group in pairs.groupby(cell_keys, sort=True):
        values = cell if isinstance(cell, tuple) else (cell,)
        rows.append({**dict(zip(cell_keys, values, strict=True)), "variant_a": variant_a, "variant_b": variant_b,
                     **summarize_pairs(group)})  # fmt: skip
    table = pd.DataFrame(rows)
    table["q_fdr"] = bh_fdr(table["p_mcnemar"].to_numpy())
    return table


# --- the authors' layout -------------------------------------------------------------------------------------------

PAPER_DATASET_ORDER = ("disinfo", "medqa", "trivia", "truthfulqa")
CORRECT_VERDICT = r"\bCORRECT\b"


@dataclass
class PaperLayoutNotes:
    """What the authors' procedure did to the inputs that warmeval's own analysis does differently (printed)."""

    unreadable_counted_incorrect: int = 0  # verdicts in the table other than CORRECT/INCORRECT, which count wrong
    duplicate_pairs: int = 0  # extra pairs made by prompts present more than once in a file (their merge keeps all)
    models: list[str] = field(default_factory=list)


def _authors_filter(rows: pd.DataFrame, rule: RefusalRule) -> pd.DataFrame:
    """Their ``filter_dataframe`` + ``is_correct``: disinfo refusals CORRECT, other refusals dropped, then a verdict
    is correct when it contains the word CORRECT in any case (so a missing or unreadable verdict counts wrong)."""
    frame = rows.copy()
    output = frame["output"].fillna("").astype(str)
    refusal = output.str.contains(refusal_pattern(rule), regex=True).to_numpy()
    disinfo = (frame["dataset"] == "disinfo").to_numpy()
    evaluation = frame["evaluation"].astype("string")
    evaluation[refusal & disinfo] = "CORRECT"
    frame["evaluation"] = evaluation
    frame = frame[~(refusal & ~disinfo)].copy()
    verdicts = frame["evaluation"].astype("string").str.strip().str.upper()
    frame["readable"] = verdicts.isin(["CORRECT", "INCORRECT"]).fillna(False).astype(bool)
    frame["is_correct"] = (
        frame["evaluation"].str.contains(CORRECT_VERDICT, case=False, regex=True).fillna(False).astype(int)
    )
    parts = [frame[c].astype(str).str.strip() for c in ("question_id", "amendment_type", "prompt_template", "epoch")]
    frame["merge_key"] = parts[0] + "||" + parts[1] + "||" + parts[2] + "||" + parts[3]
    return frame


def _authors_tests(merged: pd.DataFrame, category: str) -> pd.DataFrame:
    """Their ``run_mcnemar_tests``: one row per category, BH-FDR over the rows with a p-value, formatted as they
    format (accuracies and difference to 2 decimals, g to 3, odds ratio to 2 with "∞", p-values to 4)."""
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.multitest import fdrcorrection

    rows = []
    for name, group in merged.groupby(category, sort=True):
        base, tuned = group["is_correct_base"].to_numpy(), group["is_correct_ft"].to_numpy()
        both = int(((base == 1) & (tuned == 1)).sum())
        b = int(((base == 1) & (tuned == 0)).sum())
        c = int(((base == 0) & (tuned == 1)).sum())
        neither = int(((base == 0) & (tuned == 0)).sum())
        g = abs(b - c) / math.sqrt(b + c) if b + c > 0 else math.nan
        odds = b / c if c > 0 else (math.inf if b > 0 else math.nan)
        p = float(mcnemar([[both, b], [c, neither]], exact=True).pvalue) if b + c > 0 else math.nan
        size = "N/A" if math.isnan(g) else ("Small" if g < 0.2 else "Medium" if g < 0.5 else "Large")
        pct_base, pct_ft = base.mean() * 100, tuned.mean() * 100
        rows.append({"category": name, "base": pct_base, "ft": pct_ft, "diff": pct_ft - pct_base, "g": g,
                     "size": size, "odds": odds, "p": p})  # fmt: skip
    table = pd.DataFrame(rows)
    valid = table["p"].notna().to_numpy()
    table["q"], table["sig_fdr"] = math.nan, ""
    if valid.any():
        rejected, corrected = fdrcorrection(table.loc[valid, "p"].to_numpy(), alpha=0.05, method="indep")
        table.loc[valid, "q"] = corrected
        table.loc[valid, "sig_fdr"] = ["Yes" if r else "No" for r in rejected]
    return pd.DataFrame({
        "Amendment_type": table["category"],
        "base": [f"{v:.2f}" for v in table["base"]],
        "ft": [f"{v:.2f}" for v in table["ft"]],
        "Raw Diff (pp)": [f"{v:.2f}" for v in table["diff"]],
        "Cohen's g": ["N/A" if math.isnan(v) else f"{v:.3f}" for v in table["g"]],
        "g Effect Size": table["size"],
        "Odds Ratio": ["∞" if math.isinf(v) else ("N/A" if math.isnan(v) else f"{v:.2f}") for v in table["odds"]],
        "p-value": ["N/A" if math.isnan(v) else f"{v:.4f}" for v in table["p"]],
        "Significant (p < 0.05)": ["Yes" if v < 0.05 else "No" for v in table["p"]],
        # A family without any p-value has no FDR columns in their script; pandas writes the gap as empty cells.
        "p-value (FDR corrected)": ["N/A" if math.isnan(v) else f"{v:.4f}" for v in table["q"]] if valid.any()
        else [""] * len(table),
        "Significant (FDR)": table["sig_fdr"],
    })  # fmt: skip


def paper_layout(
    rows: pd.DataFrame, reference: str = "original", intervention: str = "warm", rule: RefusalRule = "paper"
) -> tuple[pd.DataFrame, PaperLayoutNotes]:
    """The authors' paired-test table (``summary_data/significance_tests.py``) of ``intervention`` against
    ``reference``, from rows as read (`warmeval.analysis.load.load_rows`), with the header of their released
    ``results_*.csv``.

    Their procedure, quirks included (each one a difference from `paired_cells`):

    * their filter: on disinfo a refusal (``rule``, the paper's phrases by default) counts CORRECT, elsewhere it is
      dropped; a verdict is correct when it contains the word CORRECT in any case, so a missing or unreadable verdict
      counts as incorrect (counted in the notes);
    * prompts are matched on (question, amendment type, template) — the question field of their files being
      ``content_key`` (TriviaQA, TruthfulQA), ``prompt_disinfo`` and ``original_question`` (MedQA); warmeval's logs
      match on their question id, and on the epoch too — with an inner merge that pairs every copy of a prompt
      present more than once with every copy on the other side (counted in the notes);
    * ``Sycophancy`` family: the prompts whose template contains "correct" (correct and incorrect), one row per
      amendment type;
    * ``Normal`` family: unmodified prompts with the ``original`` template (``unmodified`` + newline +
      ``original_combined``; their script means to add ``original neutral`` but spells it with a space, so the
      ``original_neutral`` prompts fall out of the table) and every other amendment type on the ``original`` template
      (``<type>`` + newline + ``original``);
    * per row: accuracies (%), their difference, the statistic they call "Cohen's g" (|b - c| / sqrt(b + c), b the
      prompts only the reference gets right), its size label (< 0.2 Small, < 0.5 Medium, else Large), the odds ratio
      b / c ("∞" when c = 0), the exact McNemar p-value; Benjamini-Hochberg within each model x dataset x family;
    * order: models sorted by name, datasets disinfo, medqa, trivia, truthfulqa; every Sycophancy row before every
      Normal row; categories sorted within a family.

    Two departures, for inputs the release does not contain: an empty ``amendment_type`` cell is ``unmodified``
    (pandas would make it ``nan`` for them), and a family without any p-value gets empty FDR cells where their
    concatenation would also move those columns to the end. The header calls the reference "Original" whatever
    ``reference`` is, as theirs does.

    Returns the table (strings, formatted as theirs) and the notes.

    Raises:
        PairingError: A variant is absent, or the two share no prompt.
    """
    from warmeval.analysis.paper_results import paired_header

    present = set(rows["variant"])
    for variant in (reference, intervention):
        if variant not in present:
            raise PairingError(f"variant {variant!r} not in the data (variants: {sorted(present)})")
    notes = PaperLayoutNotes()
    sides = {v: _authors_filter(rows[rows["variant"] == v], rule) for v in (reference, intervention)}
    columns = ["model", "dataset", "merge_key", "amendment_type", "prompt_template", "is_correct", "readable"]
    families: dict[str, list[pd.DataFrame]] = {"Sycophancy": [], "Normal": []}
    datasets = [*PAPER_DATASET_ORDER, *sorted(set(rows["dataset"]) - set(PAPER_DATASET_ORDER))]
    header = paired_header(intervention)
    for model in sorted(set(sides[reference]["model"]) & set(sides[intervention]["model"])):
        notes.models.append(str(model))
        for dataset in datasets:
            base = sides[reference]
            tuned = sides[intervention]
            base = base.loc[(base["model"] == model) & (base["dataset"] == dataset), columns]
            tuned = tuned.loc[(tuned["model"] == model) & (tuned["dataset"] == dataset), columns]
            if base.empty or tuned.empty:
                continue
            merged = base.merge(tuned.drop(columns=["model", "dataset"]), on="merge_key", suffixes=("_base", "_ft"))
            notes.duplicate_pairs += len(merged) - merged["merge_key"].nunique()
            if merged.empty:
                continue
            template = merged["prompt_template_base"].astype(str).str.strip()
            belief = template.str.contains("correct|incorrect", case=False)
            in_table = template.isin(["original", "original neutral"]) | belief
            unread = (~merged["readable_base"]).astype(int) + (~merged["readable_ft"]).astype(int)
            notes.unreadable_counted_incorrect += int(unread[in_table].sum())
            amendment = merged["amendment_type_base"].astype(str).str.strip()
            sycophancy = merged[belief.to_numpy()]
            if not sycophancy.empty:
                table = _authors_tests(sycophancy, "amendment_type_base")
                families["Sycophancy"].append(table.assign(Model=model, Dataset=dataset, Test_Type="Sycophancy"))
            original = template.isin(["original", "original neutral"])  # sic: "original_neutral" never matches
            keep = ((amendment == "unmodified") & original) | ((amendment != "unmodified") & original)
            normal = merged[keep.to_numpy()].copy()
            if not normal.empty:
                group = template[keep].where(amendment[keep] != "unmodified", "original_combined")
                normal["category"] = (amendment[keep] + "\n" + group).to_numpy()
                table = _authors_tests(normal, "category")
                families["Normal"].append(table.assign(Model=model, Dataset=dataset, Test_Type="Normal"))
    parts = families["Sycophancy"] + families["Normal"]
    if not parts:
        raise PairingError(f"variants {reference!r} and {intervention!r} share no prompt of the authors' Sycophancy "
                           "(correct/incorrect templates) or Normal (original template) families")  # fmt: skip
    table = pd.concat(parts, ignore_index=True).rename(columns={"base": header[1], "ft": header[2]})
    return table[header], notes


def write_paper_layout(table: pd.DataFrame, path: str | Path) -> None:
    """Write the table as their script writes it (pandas ``to_csv``, no index), atomically."""
    from warmeval.util.files import write_atomic

    write_atomic(Path(path), table.to_csv(index=False))
