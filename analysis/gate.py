"""A release gate: does a candidate model make more errors than a baseline on the same prompts?

Both sides are loaded with the same refusal rule and paired on (dataset, question_id, prompt_template,
amendment_type, epoch). Per task and overall: both error rates, the increase in percentage points, the exact McNemar
test and Benjamini-Hochberg q-values across the rows of the table. A row where one side is all correct or all
incorrect is flagged (``separation``): the exact test still holds, but no logit effect is estimable there. The gate
fails (exit 1) when some row's error rate rises by more than ``max_increase`` points with q < ``alpha``; it exits 2 on
unusable input (a load error, tasks present on one side only, no shared prompts, ``alpha`` outside (0, 1) or
``max_increase`` outside [0, 100) points), and 0 otherwise.

Prompts present on one side only (counted on the responses as read, before refusals and unreadable verdicts are
excluded) cannot be judged: the gate warns with the counts (paired, in the baseline only, in the candidate only) and
says in its verdict how many of the baseline's prompts it judged; with ``require_full_pairing`` they are unusable
input (exit 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from warmeval.analysis.load import AnalysisInputError, LoadReport, finalize, load_rows
from warmeval.analysis.paired import PAIR_KEYS, PairingError, bh_fdr, pair_variants, prompt_coverage, summarize_pairs
from warmeval.scorers.judges.refusal import RefusalRule

PASS, REGRESSION, UNUSABLE = 0, 1, 2


# The two sides are usually different models: prompts are paired on everything but the model.
GATE_KEYS = [key for key in PAIR_KEYS if key != "model"]


@dataclass
class GateResult:
    """The gate's table, exit code and one-line verdict, with what the caller should print beside them."""

    table: pd.DataFrame
    exit_code: int
    message: str
    warnings: list[str] = field(default_factory=list)  # e.g. prompts present on one side only
    notes: list[str] = field(default_factory=list)  # what loading each side did (duplicate responses passed over)


def option_problems(max_increase: float, alpha: float) -> list[tuple[str, str]]:
    """(option, "VALUE is not ...") for each of the gate's thresholds outside its range: ``alpha`` (a probability)
    strictly between 0 and 1, ``max_increase`` (percentage points) at least 0 and below 100."""
    problems = []
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        problems.append(("alpha", f"{alpha:g} is not between 0 and 1 (exclusive): it is the FDR level of the paired "
                                  "tests, e.g. 0.05"))  # fmt: skip
    if not (math.isfinite(max_increase) and 0 <= max_increase < 100):
        problems.append(("max_increase", f"{max_increase:g} is not at least 0 and below 100: it is the largest "
                                         "tolerated rise in error rate, in percentage points, e.g. 2.0"))  # fmt: skip
    return problems


def _side(rows: pd.DataFrame, rule: RefusalRule, label: str) -> pd.DataFrame:
    # The two sides are usually different models: pair on the prompt, not on the model.
    return finalize(rows, rule, LoadReport()).assign(variant=label, model="-")


def run_gate(
    baseline: list[str | Path],
    candidate: list[str | Path],
    *,
    max_increase: float = 2.0,
    alpha: float = 0.05,
    rule: RefusalRule | None = None,
    require_full_pairing: bool = False,
) -> GateResult:
    """Compare candidate against baseline; see the module docstring for the decision rule."""
    problems = option_problems(max_increase, alpha)
    if problems:
        name, reason = problems[0]
        return GateResult(pd.DataFrame(), UNUSABLE, f"unusable input: {name} {reason}")
    notes: list[str] = []
    try:
        base_report, cand_report = LoadReport(), LoadReport()
        base_rows, base_rule = load_rows(list(baseline), rule, base_report)
        cand_rows, cand_rule = load_rows(list(candidate), rule, cand_report)
        notes = [f"baseline: {n}" for n in base_report.notes] + [f"candidate: {n}" for n in cand_report.notes]
        if base_rule != cand_rule:
            # One rule for both sides: a side that records none takes the other side's.
            if cand_report.rule_logged and not base_report.rule_logged:
                base_rule = cand_rule
            elif base_report.rule_logged and not cand_report.rule_logged:
                cand_rule = base_rule
            else:
                raise AnalysisInputError(
                    f"baseline scored with refusal rule {base_rule!r}, candidate with {cand_rule!r}; "
                    "rescore one side so both use the same rule"
                )
        base = _side(base_rows, base_rule, "baseline")
        cand = _side(cand_rows, cand_rule, "candidate")
    except Exception as error:  # any input it cannot use is "unusable" (2), never a regression (1)
        reason = str(error) if isinstance(error, AnalysisInputError) else f"{type(error).__name__}: {error}"
        return GateResult(pd.DataFrame(), UNUSABLE, f"unusable input: {reason}".split("\n")[0], notes=notes)
    only_base = sorted(set(base["dataset"]) - set(cand["dataset"]))
    only_cand = sorted(set(cand["dataset"]) - set(base["dataset"]))
    if only_base or only_cand:
        return GateResult(
            pd.DataFrame(), UNUSABLE,
            f"mismatched tasks: baseline only {only_base or '-'}, candidate only {only_cand or '-'}", notes=notes,
        )  # fmt: skip
    if base.empty or cand.empty:
        side = "baseline" if base.empty else "candidate"
        return GateResult(pd.DataFrame(), UNUSABLE, f"unusable input: the {side} has no graded responses", notes=notes)
    coverage = prompt_coverage(base_rows, cand_rows, GATE_KEYS)
    warnings: list[str] = []
    scope = ""
    if coverage.only_a or coverage.only_b:
        counts = (f"{coverage.paired} paired, {coverage.only_a} in the baseline only, {coverage.only_b} in the "
                  f"candidate only")  # fmt: skip
        if require_full_pairing:
            return GateResult(
                pd.DataFrame(), UNUSABLE,
                f"unusable input: --require-full-pairing: unpaired prompts: {counts} (the baseline has "
                f"{coverage.a} prompts, the candidate {coverage.b})", notes=notes,
            )  # fmt: skip
        warnings.append(f"unpaired prompts: {counts}; the gate judges the {coverage.paired} paired prompts only, "
                        "and says nothing about the others (--require-full-pairing makes this an error)")  # fmt: skip
        scope = f" (judged on {coverage.paired} of the baseline's {coverage.a} prompts; unpaired prompts: {counts})"
    try:
        pairs = pair_variants(pd.concat([base, cand], ignore_index=True), "baseline", "candidate")
    except PairingError as error:
        return GateResult(pd.DataFrame(), UNUSABLE, f"unusable input: {error}", warnings, notes)
    rows = [{"task": task, **summarize_pairs(group)} for task, group in pairs.groupby("dataset", sort=True)]
    rows.append({"task": "overall", **summarize_pairs(pairs)})
    table = pd.DataFrame(rows)
    table["error_increase_points"] = 100 * (table["error_b"] - table["error_a"])
    table["q_fdr"] = bh_fdr(table["p_mcnemar"].to_numpy())
    table["regression"] = (table["error_increase_points"] > max_increase) & (table["q_fdr"] < alpha)
    table["separation"] = [_separation(r.error_a, r.error_b) for r in table.itertuples()]
    failing = table[table["regression"]]
    if not failing.empty:
        names = ", ".join(
            f"{r.task} (+{r.error_increase_points:.1f} pts, q={r.q_fdr:.3g})" for r in failing.itertuples()
        )
        message = f"REGRESSION: error rate up more than {max_increase} points in {names}{scope}"
        return GateResult(table, REGRESSION, message, warnings, notes)
    message = f"PASS: no task's error rate rose more than {max_increase} points with q < {alpha}{scope}"
    return GateResult(table, PASS, message, warnings, notes)


def _separation(error_a: float, error_b: float) -> str:
    """Which side is all correct or all incorrect (a logit model of this row would not be estimable), or ''."""
    sides = [f"{name} all {'incorrect' if error == 1 else 'correct'}"
             for name, error in (("baseline", error_a), ("candidate", error_b)) if error in (0.0, 1.0)]  # fmt: skip
    return "; ".join(sides)


def format_table(table: pd.DataFrame) -> str:
    """The gate's table as fixed-width text."""
    if table.empty:
        return ""
    header = f"{'task':<12} {'pairs':>6} {'err base':>9} {'err cand':>9} {'+points':>8} {'p':>9} {'q':>9}  verdict"
    lines = [header, "-" * len(header)]
    for r in table.itertuples():
        verdict = ("REGRESSION" if r.regression else "ok") + (f" (separation: {r.separation})" if r.separation else "")
        lines.append(
            f"{r.task:<12} {r.n_pairs:>6} {100 * r.error_a:>8.1f}% {100 * r.error_b:>8.1f}% "
            f"{r.error_increase_points:>+8.1f} {r.p_mcnemar:>9.3g} {r.q_fdr:>9.3g}  {verdict}"
        )
    return "\n".join(lines)
