"""A release gate: does a candidate model make more errors than a baseline on the same prompts?

Both sides are loaded with the same refusal rule and paired on (dataset, question_id, prompt_template,
amendment_type, epoch). Per task and overall: both error rates, the increase in percentage points, the exact McNemar
test and Benjamini-Hochberg q-values across the rows of the table. A row where one side is all correct or all
incorrect is flagged (``separation``): the exact test still holds, but no logit effect is estimable there. The gate
fails (exit 1) when some row's error rate rises by more than ``max_increase`` points with q < ``alpha``; it exits 2 on
unusable input (a load error, tasks present on one side only, no shared prompts), and 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from warmeval.analysis.load import AnalysisInputError, LoadReport, load_table
from warmeval.analysis.paired import PairingError, bh_fdr, pair_variants, summarize_pairs
from warmeval.scorers.judges.refusal import RefusalRule

PASS, REGRESSION, UNUSABLE = 0, 1, 2


@dataclass
class GateResult:
    """The gate's table, exit code and one-line verdict."""

    table: pd.DataFrame
    exit_code: int
    message: str


def _side(inputs: list[str | Path], label: str, rule: RefusalRule | None, report: LoadReport) -> pd.DataFrame:
    frame = load_table(inputs, rule, report)
    # The two sides are usually different models: pair on the prompt, not on the model.
    return frame.assign(variant=label, model="-")


def run_gate(
    baseline: list[str | Path],
    candidate: list[str | Path],
    *,
    max_increase: float = 2.0,
    alpha: float = 0.05,
    rule: RefusalRule | None = None,
) -> GateResult:
    """Compare candidate against baseline; see the module docstring for the decision rule."""
    try:
        base_report, cand_report = LoadReport(), LoadReport()
        base = _side(baseline, "baseline", rule, base_report)
        cand = _side(candidate, "candidate", rule, cand_report)
        if base_report.rule != cand_report.rule:
            # One rule for both sides: a side that records none takes the other side's.
            if cand_report.rule_logged and not base_report.rule_logged:
                base = _side(baseline, "baseline", cand_report.rule, LoadReport())  # type: ignore[arg-type]
            elif base_report.rule_logged and not cand_report.rule_logged:
                cand = _side(candidate, "candidate", base_report.rule, LoadReport())  # type: ignore[arg-type]
            else:
                raise AnalysisInputError(
                    f"baseline scored with refusal rule {base_report.rule!r}, candidate with {cand_report.rule!r}; "
                    "rescore one side so both use the same rule"
                )
    except Exception as error:  # any input it cannot use is "unusable" (2), never a regression (1)
        reason = str(error) if isinstance(error, AnalysisInputError) else f"{type(error).__name__}: {error}"
        return GateResult(pd.DataFrame(), UNUSABLE, f"unusable input: {reason}".split("\n")[0])
    only_base = sorted(set(base["dataset"]) - set(cand["dataset"]))
    only_cand = sorted(set(cand["dataset"]) - set(base["dataset"]))
    if only_base or only_cand:
        return GateResult(
            pd.DataFrame(), UNUSABLE,
            f"mismatched tasks: baseline only {only_base or '-'}, candidate only {only_cand or '-'}",
        )  # fmt: skip
    if base.empty or cand.empty:
        side = "baseline" if base.empty else "candidate"
        return GateResult(pd.DataFrame(), UNUSABLE, f"unusable input: the {side} has no graded responses")
    try:
        pairs = pair_variants(pd.concat([base, cand], ignore_index=True), "baseline", "candidate")
    except PairingError as error:
        return GateResult(pd.DataFrame(), UNUSABLE, f"unusable input: {error}")
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
        return GateResult(table, REGRESSION, f"REGRESSION: error rate up more than {max_increase} points in {names}")
    return GateResult(table, PASS, f"PASS: no task's error rate rose more than {max_increase} points with q < {alpha}")


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
