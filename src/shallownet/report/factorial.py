"""Factorial studies: main effects and two-way interactions of a linear model over the
factors, and model-based marginal means with CIs.

The model of a metric y over the finished runs (statsmodels formula API)::

    y ~ C(f1) + ... + C(fk) + C(fi):C(fj) (every pair i < j) + C(seed)

``C(seed)`` is a block term (the runs of one seed share a data split and initial draw),
present when the study has two seeds or more and every cell has the same seeds (otherwise the
block's effects would be extrapolated to cells that lack a seed). Effects are tested with a type-II ANOVA
(``statsmodels.stats.anova.anova_lm(ols, typ=2)``, F tests); partial eta squared is
SS_term / (SS_term + SS_residual). Marginal means (estimated marginal means, as R's
emmeans) average the model's predictions over a balanced grid of every level of the other
factors and every seed: ``GLM(Gaussian).get_prediction(grid, average=True)`` gives the mean
and its standard error, the 95% CI uses t with the model's residual df. On a balanced design
a marginal mean is the plain mean of its runs; its CI uses the model's residual variance
(more df than the runs of one level alone), on the scale stats.bounded_interval picks for a
bounded metric (logit for an accuracy), so it contains the mean and stays in the bounds.
The report fits the model only to a complete crossed design with two runs per cell
(design.py): then a marginal mean is the average of its cells' means, inside the data."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd

from .runs import bounds, sort_levels, value_column
from .stats import bounded_interval


def _frame(runs, factors, metric):
    """Model data: finished runs with a finite value, factors renamed f0.. (formula-safe)."""
    col = value_column(metric)
    fin = runs[(runs["state"] == "finished")]
    fin = fin[np.isfinite(fin[col].astype(float))]
    df = pd.DataFrame({f"f{i}": fin[f].astype(str).to_numpy() for i, f in enumerate(factors)})
    df["seed"] = fin["seed"].astype(str).to_numpy()
    df["y"] = fin[col].astype(float).to_numpy()
    return df


def seeds_crossed(df, n_factors) -> bool:
    """Every cell of the model frame has the same set of seeds."""
    cells = df.groupby([f"f{i}" for i in range(n_factors)])["seed"].agg(frozenset)
    return cells.nunique() <= 1


def formula(factors, n_seeds, crossed=True) -> str:
    terms = [f"C(f{i})" for i in range(len(factors))]
    terms += [f"C(f{i}):C(f{j})" for i, j in itertools.combinations(range(len(factors)), 2)]
    if n_seeds >= 2 and crossed:
        terms.append("C(seed)")
    return "y ~ " + " + ".join(terms)


def term_label(term: str, factors) -> str:
    """'C(f0):C(f2)' -> 'activation.name x model.hidden_sizes'."""
    if term == "Residual":
        return "residual"
    if term == "C(seed)":
        return "seed (block)"
    parts = [factors[int(p[len("C(f") : -1])] for p in term.split(":")]
    return " x ".join(parts)


def fit(runs, factors, metric):
    """(OLS results, GLM results, model frame) or (None, None, frame, note) when there is
    nothing to model (no variance, no residual df)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    df = _frame(runs, factors, metric)
    if len(df) < 3:
        return None, None, df, "fewer than 3 finished runs"
    if float(np.ptp(df["y"])) == 0:
        return None, None, df, "the metric has the same value in every run"
    f = formula(factors, df["seed"].nunique(), seeds_crossed(df, len(factors)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ols = smf.ols(f, df).fit()
        glm = smf.glm(f, df, family=sm.families.Gaussian()).fit()
    if ols.df_resid < 1:
        return None, None, df, "no residual degrees of freedom (one run per cell)"
    if ols.ssr <= 1e-12 * float(np.sum((df["y"] - df["y"].mean()) ** 2)):
        return None, None, df, "the model fits every run exactly (no residual variance)"
    return ols, glm, df, ""


def anova(runs, factors, metric) -> dict:
    """Type-II ANOVA of the model: {"table": rows (term, df, sum_sq, F, p, partial_eta_sq),
    "df_resid", "n", "note"}."""
    from statsmodels.stats.anova import anova_lm

    ols, _, df, note = fit(runs, factors, metric)
    out = {
        "metric": metric,
        "table": pd.DataFrame(columns=["term", "df", "sum_sq", "F", "p", "partial_eta_sq"]),
        "df_resid": math.nan,
        "n": len(df),
        "note": note,
    }
    if ols is None:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = anova_lm(ols, typ=2)
    ss_res = float(a.loc["Residual", "sum_sq"])
    rows = []
    for term, r in a.iterrows():
        if term == "Residual":
            continue
        ss = float(r["sum_sq"])
        rows.append(
            {
                "term": term_label(term, factors),
                "df": float(r["df"]),
                "sum_sq": ss,
                "F": float(r["F"]),
                "p": float(r["PR(>F)"]),
                "partial_eta_sq": ss / (ss + ss_res) if ss + ss_res > 0 else math.nan,
            }
        )
    out["table"] = pd.DataFrame(rows, columns=out["table"].columns)
    out["df_resid"] = float(ols.df_resid)
    return out


def marginal_means(runs, factors, metric, by, level: float = 0.95) -> pd.DataFrame:
    """Model-based marginal means of ``metric`` for every combination of the factors in
    ``by`` (one or two factors): columns = the ``by`` factors, emm, se, ci_low, ci_high, n
    (finished runs in that cell). Empty when the model cannot be fitted."""
    from scipy import stats

    ols, glm, df, _ = fit(runs, factors, metric)
    cols = list(by) + ["emm", "se", "ci_low", "ci_high", "n"]
    if ols is None:
        return pd.DataFrame(columns=cols)
    names = {f: f"f{i}" for i, f in enumerate(factors)}
    levels = {f: sort_levels(df[names[f]]) for f in factors}
    seeds = sort_levels(df["seed"])
    others = [f for f in factors if f not in by]
    t = float(stats.t.ppf((1 + level) / 2, ols.df_resid))
    limits = bounds(runs, metric)
    rows = []
    for combo in itertools.product(*(levels[f] for f in by)):
        grid = pd.DataFrame(
            [
                dict(zip([names[f] for f in others] + ["seed"], g))
                for g in itertools.product(*(levels[f] for f in others), seeds)
            ]
        )
        for f, lv in zip(by, combo):
            grid[names[f]] = lv
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = glm.get_prediction(grid, average=True, which="mean")
        mean = float(np.asarray(pred.predicted).ravel()[0])
        se = float(np.asarray(pred.se).ravel()[0])
        mask = np.ones(len(df), dtype=bool)
        for f, lv in zip(by, combo):
            mask &= (df[names[f]] == lv).to_numpy()
        lo, hi = bounded_interval(mean, se, t, limits)
        rows.append(
            dict(zip(by, combo)) | {"emm": mean, "se": se, "ci_low": lo, "ci_high": hi, "n": int(mask.sum())}
        )
    return pd.DataFrame(rows, columns=cols)
