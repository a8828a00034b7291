"""Paired comparisons of two variants on identical prompts: McNemar exact test, Benjamini-Hochberg FDR, effect sizes.

Responses are matched on (model, dataset, question_id, prompt_template, amendment_type, epoch). For each cell
(model x dataset x amendment_type x prompt_group) the 2x2 table of correctness gives:

* ``n_pairs``; ``acc_a``, ``acc_b`` and ``diff_points`` (accuracy of B minus A, in percentage points);
* ``b_only_wrong`` (A correct, B incorrect) and ``a_only_wrong`` (A incorrect, B correct), the discordant pairs;
* ``p_mcnemar`` (exact binomial McNemar test) and ``q_fdr`` (Benjamini-Hochberg across all cells of the table);
* ``cohens_g`` = |b_only_wrong / discordant - 0.5| (0 when there is no discordant pair);
* ``odds_ratio`` = b_only_wrong / a_only_wrong, the conditional odds that B errs where A does not (inf when
  a_only_wrong is 0, NaN when both are 0).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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
