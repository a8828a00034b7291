"""The paper's logistic models of error (statsmodels GLM, Binomial family, logit link).

* Model 1 (main effect): unmodified prompts in the original prompt group;
  ``is_incorrect ~ is_finetuned + C(dataset, Treatment('disinfo')) + C(model)``.
* Model 2: original prompt group; ``is_finetuned`` x ``amendment_group`` (reference unmodified) + dataset + model.
* Model 3: as model 2 with the detailed sub-type (``amendment_type``, e.g. emotion:sad).
* Model 4: original and user_opinion prompt groups; ``is_finetuned`` x ``prompt_group`` (reference original) +
  dataset + model.

``with_length=True`` adds ``response_length`` (in thousands of characters) as a covariate to each.

For each model: coefficients (log-odds scale) with SE, z, p and 95% CI; average marginal effects of fine-tuning on the
probability scale (counterfactual prediction: set ``is_finetuned`` to 0 and to 1 for every row, average the
difference; delta-method SE), overall and within each level of the interacting factor; and the log-odds effect of
fine-tuning within each level (main + interaction coefficient) with its Wald test. Levels absent from the data (or
without both fine-tuned and original rows) are reported as absent, never as zero effects.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

REFERENCES = {"dataset": "disinfo", "amendment_group": "unmodified", "amendment_type": "unmodified",
              "prompt_group": "original"}  # fmt: skip


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


def formula_for(spec: ModelSpec, frame: pd.DataFrame, with_length: bool) -> str:
    """The patsy formula of a model; factors with one level in the data are left out."""
    terms: list[str] = []
    if spec.factor is None:
        terms.append("is_finetuned")
    else:
        terms.append(f"is_finetuned * {_term(spec.factor, REFERENCES[spec.factor])}")
    terms.append(_term("dataset", REFERENCES["dataset"]) if frame["dataset"].nunique() > 1 else "")
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
    p1 = 1 / (1 + np.exp(-(x1 @ beta)))
    p0 = 1 / (1 + np.exp(-(x0 @ beta)))
    estimate = float(np.mean(p1 - p0))
    gradient = ((p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0).mean(axis=0)
    se = float(math.sqrt(max(gradient @ cov @ gradient, 0.0)))
    return {"estimate": estimate, "se": se, "ci_low": estimate - 1.96 * se, "ci_high": estimate + 1.96 * se,
            "n": int(len(x1))}  # fmt: skip


def _logit_effect(result: Any, factor: str, level: str) -> dict[str, float]:
    names = list(result.params.index)
    contrast = np.zeros(len(names))
    contrast[names.index("is_finetuned")] = 1.0
    if level != REFERENCES[factor]:
        interaction = f"is_finetuned:{_term(factor, REFERENCES[factor])}[T.{level}]"
        contrast[names.index(interaction)] = 1.0
    estimate = float(contrast @ np.asarray(result.params))
    se = float(math.sqrt(contrast @ np.asarray(result.cov_params()) @ contrast))
    z = estimate / se if se > 0 else float("nan")
    return {"estimate": estimate, "se": se, "z": z, "p": float(2 * stats.norm.sf(abs(z))),
            "odds_ratio": float(math.exp(estimate))}  # fmt: skip


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
    }
    if spec.factor is None:
        out["logit_effects"]["overall"] = _logit_effect_main(result)
        return out
    factor = spec.factor
    for level in sorted(rows[factor].unique(), key=lambda v: (v != REFERENCES[factor], v)):
        out["ame"][str(level)] = _ame(result, (rows[factor] == level).to_numpy())
        out["logit_effects"][str(level)] = _logit_effect(result, factor, str(level))
    for level in absent:
        out["ame"][level] = {"absent": True}
        out["logit_effects"][level] = {"absent": True}
    return out


def _logit_effect_main(result: Any) -> dict[str, float]:
    estimate, se = float(result.params["is_finetuned"]), float(result.bse["is_finetuned"])
    z = estimate / se
    return {"estimate": estimate, "se": se, "z": z, "p": float(2 * stats.norm.sf(abs(z))),
            "odds_ratio": float(math.exp(estimate))}  # fmt: skip


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
    return results
