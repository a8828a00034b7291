"""The paper's logistic models of error (statsmodels GLM, Binomial family, logit link).

* Model 1 (main effect): unmodified prompts in the original prompt group;
  ``is_incorrect ~ is_finetuned + C(dataset, Treatment('disinfo')) + C(model)``.
* Model 2: original prompt group; ``is_finetuned`` x ``amendment_group`` (reference unmodified) + dataset + model.
* Model 3: as model 2 with the detailed sub-type (``amendment_type``, e.g. emotion:sad).
* Model 4: original and user_opinion prompt groups; ``is_finetuned`` x ``prompt_group`` (reference original) +
  dataset + model.

Each intervention is fitted against the original model on its own (`fit_comparisons`), as the paper does: the warm
fine-tune, the cold fine-tune and the warm system prompt are never pooled into one "fine-tuned" indicator.

``with_length=True`` adds ``response_length`` (in thousands of characters) as a covariate to each.

For each model: coefficients (log-odds scale) with SE, z, p and 95% CI; average marginal effects of fine-tuning on the
probability scale (counterfactual prediction: set ``is_finetuned`` to 0 and to 1 for every row, average the
difference; delta-method SE), overall and within each level of the interacting factor; and the log-odds effect of
fine-tuning within each level (main + interaction coefficient) with its Wald test. Levels absent from the data (or
without both fine-tuned and original rows) are reported as absent, never as zero effects.

The reference dataset is Disinfo, as in the paper, or the first dataset present in alphabetical order (disinfo,
medqa, trivia, truthfulqa) when Disinfo is absent; each model records it as ``reference_dataset``.

Separation: where the fine-tuned or the original rows of a level are all correct or all incorrect, or an estimate
runs off to a log-odds of more than 10 (odds ratio > 22,000), maximum likelihood has no finite estimate. The GLM is
still fitted as the authors' scripts fit it (the raw numbers stay in the output, equal to theirs), but the level's
``ame`` and ``logit_effects`` entries carry ``separation: true`` and the model a ``separation`` list saying where;
the report shows such levels as "not estimable (separation)". Nothing overflows: odds ratios beyond float range are
``inf``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from patsy import PatsyError
from scipy import stats
from scipy.special import expit

REFERENCES = {"dataset": "disinfo", "amendment_group": "unmodified", "amendment_type": "unmodified",
              "prompt_group": "original"}  # fmt: skip
KNOWN_DATASETS = ("disinfo", "medqa", "trivia", "truthfulqa")
# Beyond this log-odds (odds ratio ~22,000) an estimate from data of this kind is separation, not an effect.
SEPARATION_LOGIT = 10.0


@dataclass(frozen=True)
class ModelSpec:
    """One of the paper's four models."""

    key: str
    title: str
    prompt_groups: tuple[str, ...]
    unmodified_only: bool
    factor: str | None  # the factor interacting with is_finetuned


MODEL_SPECS = (
    ModelSpec("model1", "Main effect of fine-tuning (unmodified, original prompts)", ("original",), True, None),
    ModelSpec("model2", "Fine-tuning x amendment group (original prompts)", ("original",), False, "amendment_group"),
    ModelSpec("model3", "Fine-tuning x amendment sub-type (original prompts)", ("original",), False, "amendment_type"),
    ModelSpec("model4", "Fine-tuning x stated user belief", ("original", "user_opinion"), False, "prompt_group"),
)


class ModelError(ValueError):
    """Data that cannot support a model (named in the message)."""


def _term(name: str, reference: str | None = None) -> str:
    return f"C({name}, Treatment({reference!r}))" if reference is not None else f"C({name})"


def reference_dataset(frame: pd.DataFrame) -> str | None:
    """Disinfo when present (the paper's reference), else the first dataset present in alphabetical order."""
    present = sorted(str(d) for d in frame["dataset"].dropna().unique())
    return REFERENCES["dataset"] if REFERENCES["dataset"] in present else (present[0] if present else None)


def formula_for(spec: ModelSpec, frame: pd.DataFrame, with_length: bool) -> str:
    """The patsy formula of a model; factors with one level in the data are left out."""
    terms: list[str] = []
    if spec.factor is None:
        terms.append("is_finetuned")
    else:
        terms.append(f"is_finetuned * {_term(spec.factor, REFERENCES[spec.factor])}")
    terms.append(_term("dataset", reference_dataset(frame)) if frame["dataset"].nunique() > 1 else "")
    terms.append(_term("model") if frame["model"].nunique() > 1 else "")
    if with_length:
        terms.append("length_k")
    return "is_incorrect ~ " + " + ".join(t for t in terms if t)


def subset_for(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[frame["prompt_group"].isin(spec.prompt_groups)]
    if spec.unmodified_only:
        rows = rows[rows["amendment_type"] == "unmodified"]
    return rows


def _usable_levels(rows: pd.DataFrame, factor: str) -> tuple[list[str], list[str]]:
    """Levels with both fine-tuned and original rows (usable), and the others (reported as absent)."""
    counts = rows.groupby([factor, "is_finetuned"]).size().unstack(fill_value=0)
    usable = [
        str(level) for level in counts.index if counts.loc[level].get(0, 0) > 0 and counts.loc[level].get(1, 0) > 0
    ]
    absent = [str(level) for level in counts.index if str(level) not in usable]
    return usable, absent


def _coef_table(result: Any) -> dict[str, dict[str, float]]:
    conf = result.conf_int()
    return {
        name: {
            "estimate": float(result.params[name]),
            "se": float(result.bse[name]),
            "z": float(result.tvalues[name]),
            "p": float(result.pvalues[name]),
            "ci_low": float(conf.loc[name, 0]),
            "ci_high": float(conf.loc[name, 1]),
        }
        for name in result.params.index
    }


def _counterfactual(result: Any, treated: int) -> np.ndarray:
    """The model's design matrix with is_finetuned set to ``treated`` for every row (interactions follow)."""
    names = list(result.model.exog_names)
    x = np.array(result.model.exog, dtype=float, copy=True)
    for column, name in enumerate(names):
        if name == "is_finetuned":
            x[:, column] = treated
        elif name.startswith("is_finetuned:"):
            main = name.split(":", 1)[1]
            x[:, column] = x[:, names.index(main)] * treated if treated else 0.0
    return x


def _ame(result: Any, mask: np.ndarray | None = None) -> dict[str, float]:
    """Average marginal effect of is_finetuned (probability scale) over the rows in ``mask``, delta-method SE."""
    beta = np.asarray(result.params)
    cov = np.asarray(result.cov_params())
    x1, x0 = _counterfactual(result, 1), _counterfactual(result, 0)
    if mask is not None:
        x1, x0 = x1[mask], x0[mask]
    p1, p0 = expit(x1 @ beta), expit(x0 @ beta)
    estimate = float(np.mean(p1 - p0))
    gradient = ((p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0).mean(axis=0)
    se = _sqrt(float(gradient @ cov @ gradient))
    return {"estimate": estimate, "se": se, "ci_low": estimate - 1.96 * se, "ci_high": estimate + 1.96 * se,
            "n": int(len(x1))}  # fmt: skip


def _sqrt(value: float) -> float:
    return math.sqrt(value) if math.isfinite(value) and value > 0 else (math.inf if value == math.inf else 0.0)


def _odds_ratio(estimate: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.exp(estimate))


def _wald(estimate: float, se: float) -> dict[str, float]:
    z = estimate / se if se > 0 and math.isfinite(se) else float("nan")
    p = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else float("nan")
    return {"estimate": estimate, "se": se, "z": z, "p": p, "odds_ratio": _odds_ratio(estimate)}


def _logit_effect(result: Any, factor: str, level: str) -> dict[str, float]:
    names = list(result.params.index)
    contrast = np.zeros(len(names))
    contrast[names.index("is_finetuned")] = 1.0
    if level != REFERENCES[factor]:
        interaction = f"is_finetuned:{_term(factor, REFERENCES[factor])}[T.{level}]"
        contrast[names.index(interaction)] = 1.0
    estimate = float(contrast @ np.asarray(result.params))
    return _wald(estimate, _sqrt(float(contrast @ np.asarray(result.cov_params()) @ contrast)))


def _constant_cells(rows: pd.DataFrame, factor: str | None) -> dict[str, str]:
    """Cells (level x fine-tuned or original) whose outcomes are all equal, by level ("overall" without a factor)."""
    keys = [factor, "is_finetuned"] if factor else ["is_finetuned"]
    found: dict[str, str] = {}
    for key, cell in rows.groupby(keys)["is_incorrect"]:
        if cell.nunique() == 1:
            values = key if isinstance(key, tuple) else (key,)
            level = str(values[0]) if factor else "overall"
            side = "fine-tuned" if int(values[-1]) == 1 else "original"
            outcome = "incorrect" if int(cell.iloc[0]) == 1 else "correct"
            found.setdefault(level, f"{factor + '=' + level + ', ' if factor else ''}{side} rows all {outcome} "
                                    f"({len(cell)})")  # fmt: skip
    return found


def _separation(spec: ModelSpec, rows: pd.DataFrame, out: dict[str, Any]) -> None:
    """Flag the levels whose fine-tuning effect has no finite maximum-likelihood estimate (see module docstring)."""
    factor = spec.factor
    cells = _constant_cells(rows, factor)
    reference = REFERENCES[factor] if factor else "overall"
    notes: list[str] = list(cells.values())
    for level, effect in out["logit_effects"].items():
        if effect.get("absent"):
            continue
        reasons = [cells[name] for name in dict.fromkeys((level, reference)) if name in cells]
        if abs(effect["estimate"]) > SEPARATION_LOGIT or not math.isfinite(effect["se"]):
            reasons.append(f"{level}: log-odds effect {effect['estimate']:+.3g} (SE {effect['se']:.3g})")
            notes.append(reasons[-1])
        if reasons:
            effect["separation"] = True
            out["ame"][level]["separation"] = True
    for dataset, cell in rows.groupby("dataset")["is_incorrect"]:
        if cell.nunique() == 1 and rows["dataset"].nunique() > 1:
            outcome = "incorrect" if int(cell.iloc[0]) == 1 else "correct"
            notes.append(f"dataset={dataset}: all rows {outcome} ({len(cell)}); its coefficient is not estimable")
    if notes:
        out["separation"] = list(dict.fromkeys(notes))


def fit_model(spec: ModelSpec, frame: pd.DataFrame, *, with_length: bool = False) -> dict[str, Any]:
    """Fit one model; returns its JSON-ready estimates (stable keys, see module docstring)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    rows = subset_for(spec, frame)
    absent: list[str] = []
    if spec.factor is not None:
        usable, absent = _usable_levels(rows, spec.factor)
        reference = REFERENCES[spec.factor]
        if reference not in usable:
            raise ModelError(f"{spec.key}: no {spec.factor}={reference!r} rows with both fine-tuned and original data")
        rows = rows[rows[spec.factor].isin(usable)]
    if rows.empty or rows["is_finetuned"].nunique() < 2:
        raise ModelError(f"{spec.key}: needs rows of both fine-tuned and original variants ({len(rows)} rows)")
    rows = rows.assign(length_k=rows["response_length"] / 1000.0)
    if rows["is_incorrect"].nunique() < 2:
        outcome = "incorrect" if int(rows["is_incorrect"].iloc[0]) == 1 else "correct"
        raise ModelError(f"{spec.key}: every one of the {len(rows)} rows is {outcome}: nothing to estimate")
    formula = formula_for(spec, rows, with_length)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = smf.glm(formula, data=rows, family=sm.families.Binomial()).fit()
    out: dict[str, Any] = {
        "title": spec.title,
        "n": int(result.nobs),
        "formula": formula,
        "scale_note": "coefficients and logit_effects are log-odds; ame is a difference in probability",
        "coefficients": _coef_table(result),
        "ame": {"overall": _ame(result)},
        "logit_effects": {},
        "absent_levels": absent,
        "reference_dataset": reference_dataset(rows),
        "datasets": sorted(str(d) for d in rows["dataset"].unique()),
        "absent_datasets": [d for d in KNOWN_DATASETS if d not in set(rows["dataset"].astype(str))],
    }
    if spec.factor is None:
        out["logit_effects"]["overall"] = _logit_effect_main(result)
        _separation(spec, rows, out)
        return out
    factor = spec.factor
    for level in sorted(rows[factor].unique(), key=lambda v: (v != REFERENCES[factor], v)):
        out["ame"][str(level)] = _ame(result, (rows[factor] == level).to_numpy())
        out["logit_effects"][str(level)] = _logit_effect(result, factor, str(level))
    for level in absent:
        out["ame"][level] = {"absent": True}
        out["logit_effects"][level] = {"absent": True}
    _separation(spec, rows, out)
    return out


def _logit_effect_main(result: Any) -> dict[str, float]:
    return _wald(float(result.params["is_finetuned"]), float(result.bse["is_finetuned"]))


def fit_all(frame: pd.DataFrame, *, with_length: bool = False, include_mcq: bool = False) -> dict[str, Any]:
    """All four models; a model the data cannot support is reported with its reason instead of estimates.

    Rows of the released ``mcq`` template are not among the paper's 28 conditions and are left out unless
    ``include_mcq`` (they then count with the ``original`` prompts).
    """
    if "prompt_template" in frame.columns:
        mcq = frame["prompt_template"] == "mcq"
        if include_mcq and "prompt_group" in frame.columns:
            frame = frame.assign(prompt_group=frame["prompt_group"].where(~mcq, "original"))
        elif not include_mcq:
            frame = frame[~mcq]
    results: dict[str, Any] = {}
    for spec in MODEL_SPECS:
        try:
            results[spec.key] = fit_model(spec, frame, with_length=with_length)
        except ModelError as error:
            results[spec.key] = {"title": spec.title, "error": str(error)}
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, PatsyError) as error:
            # Data a GLM cannot be fitted on (e.g. a singular design); reported for this model, the others go on.
            results[spec.key] = {"title": spec.title, "error": f"{spec.key}: {type(error).__name__}: {error}"}
    return results


REFERENCE_VARIANT = "original"


def comparison_rows(frame: pd.DataFrame, variants: list[str] | None = None) -> tuple[str, dict[str, pd.DataFrame]]:
    """The rows of each comparison the paper makes: every intervention against the original model, on its own.

    The paper fits the warm fine-tune, the cold fine-tune and the warm system prompt each against the original model;
    pooling them would code cold as warm (both fine-tuned) and the system prompt as the original. Here each
    comparison keeps the reference's and one intervention's rows, with ``is_finetuned`` 1 for the intervention.

    Args:
        frame: The long table (`warmeval.analysis.load`).
        variants: ``[reference, intervention, ...]`` to compare (default: ``original`` against every other variant).

    Returns:
        The reference's name and ``{intervention: rows}`` in the order given (default: warm, cold, warm_sysprompt,
        then the others alphabetically).

    Raises:
        ModelError: No reference rows, no intervention, or a named variant absent from the data.
    """
    present = [str(v) for v in frame["variant"].dropna().unique()]
    if variants:
        missing = [v for v in variants if v not in present]
        if missing:
            listing = ", ".join(sorted(present))
            raise ModelError(f"variant(s) {', '.join(missing)} absent from the data (present: {listing})")
        reference, others = variants[0], [v for v in dict.fromkeys(variants[1:]) if v != variants[0]]
    else:
        reference = REFERENCE_VARIANT
        if reference not in present:
            raise ModelError(
                f"no '{reference}' variant in the data (present: {', '.join(sorted(present)) or 'none'}): the paper "
                "fits each intervention against the original model; name a pair with --variants REFERENCE,OTHER"
            )
        order = ["warm", "cold", "warm_sysprompt"]
        others = [v for v in order if v in present] + sorted(v for v in present if v not in order and v != reference)
    if not others:
        raise ModelError(f"only the '{reference}' variant is in the data: nothing to compare it with")
    rows = {}
    for other in others:
        pair = frame[frame["variant"].isin([reference, other])]
        rows[other] = pair.assign(is_finetuned=(pair["variant"] == other).astype(int))
    return reference, rows


def fit_comparisons(
    frame: pd.DataFrame, variants: list[str] | None = None, *, with_length: bool = False, include_mcq: bool = False
) -> dict[str, Any]:
    """The paper's four models for each comparison of `comparison_rows`, never pooled.

    Returns:
        ``{"reference": name, "comparisons": {intervention: fit_all(...)}}``.
    """
    reference, rows = comparison_rows(frame, variants)
    return {
        "reference": reference,
        "comparisons": {name: fit_all(pair, with_length=with_length, include_mcq=include_mcq)
                        for name, pair in rows.items()},
    }  # fmt: skip
