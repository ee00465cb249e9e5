"""Statistics of a study: per-level descriptions, censored epochs-to-threshold, paired
comparisons with effects, CIs and Holm-adjusted p-values, and the seeds a comparison needs.

Libraries, not formulas: t quantiles and tests from ``scipy.stats`` (``t``,
``ttest_rel(...).confidence_interval``, ``wilcoxon``), Holm's step-down adjustment from
``statsmodels.stats.multitest.multipletests(method="holm")``, power from
``statsmodels.stats.power.TTestPower``, Kaplan-Meier medians from
``statsmodels.duration.survfunc.SurvfuncRight``.

``evaluate_comparisons`` is the entry point for callers that decide when to stop adding
seeds: give it the tidy run table of a study and named comparisons, it returns, for each, the
mean paired difference, a multiplicity-adjusted (Bonferroni-level) CI, raw and Holm p,
whether the comparison is decided, and the seeds needed for power 0.8::

    from shallownet.report import runs as rt, stats
    table = rt.tidy_runs(children, factors)   # children: the study's child rows (runs frame)
    rt.add_curve_measures(table, curves)      # needed for epochs_to_threshold only
    res = stats.evaluate_comparisons(
        table, [stats.Comparison("activation.name", "relu", "tanh", "final_test_accuracy",
                                 name="relu vs tanh")],
        factors, alpha=0.05, target_width=0.02)
    res[["name", "mean_diff", "adj_ci_low", "adj_ci_high", "p_holm", "decided",
         "seeds_needed"]]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .runs import BOUNDS, ETT, ETT_R, SUMMARY_METRICS, bounds, level_key, sort_levels, value_column

ALPHA = 0.05
POWER = 0.8
KM_TOL = 1e-9  # S(t) = 0.5 computed as 0.5000000001 still gives the median at t
MAX_PAIRS = 10**6  # beyond this a power search reports "no feasible number"


# --------------------------------------------------------------------------------------
# one sample


def bounded_interval(mean, se, q, bounds=None) -> tuple:
    """The interval mean -/+ q * se of an estimate, computed on a scale that respects the
    metric's ``bounds`` (lo, hi) and mapped back, never clipped: for two finite bounds the
    logit of (mean - lo) / (hi - lo), for a lower bound only the log of mean - lo, with se
    carried over by the delta method (se / (p (1 - p)) resp. se / (mean - lo)); no bounds:
    the plain interval. Monotone maps of an interval centred on the transformed point: the
    result always contains ``mean`` and stays strictly inside the bounds. se = 0 gives the
    point; a mean at a bound with se > 0 has no such interval: (NaN, NaN)."""
    from scipy.special import expit, logit

    if not (np.isfinite(mean) and np.isfinite(se)):
        return math.nan, math.nan
    if se == 0:
        return float(mean), float(mean)
    lo, hi = (-math.inf, math.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if math.isinf(lo) and math.isinf(hi):
        return float(mean - q * se), float(mean + q * se)
    if math.isinf(lo):  # an upper bound only: mirror it
        a, b = bounded_interval(-mean, se, q, (-hi, math.inf))
        return -b, -a
    if not mean > lo or not mean < hi:
        return math.nan, math.nan
    if math.isinf(hi):
        x = mean - lo
        return float(lo + x * math.exp(-q * se / x)), float(lo + x * math.exp(q * se / x))
    w = hi - lo
    p = (mean - lo) / w
    half = q * se / (w * p * (1 - p))
    z = float(logit(p))
    return float(lo + w * expit(z - half)), float(lo + w * expit(z + half))


def describe(values, bounds=None, level: float = 0.95) -> dict:
    """n, mean, std (ddof=1) and the t-based CI of the mean of the finite values: t(n-1)
    quantile (``scipy.stats.t.ppf``) times the standard error std/sqrt(n), on the scale
    ``bounded_interval`` picks for ``bounds`` (lo, hi) when given (logit for an accuracy in
    [0, 1], log for a loss >= 0), so the CI contains the mean and stays inside the bounds;
    without bounds mean +- t * std / sqrt(n)."""
    from scipy import stats

    v = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    out = {"n": n, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if n == 0:
        return out
    mean = float(np.mean(v))
    out["mean"] = mean
    if n >= 2:
        std = float(np.std(v, ddof=1))
        q = float(stats.t.ppf((1 + level) / 2, n - 1))
        lo, hi = bounded_interval(mean, std / math.sqrt(n), q, bounds)
        out.update(std=std, ci_low=lo, ci_high=hi)
    return out


def km_median(times, reached, level: float = 0.95) -> dict:
    """Kaplan-Meier median of a right-censored time (statsmodels SurvfuncRight): ``times``
    the epoch of the event, or of the last observation for a censored run; ``reached`` 1
    for an event, 0 for censored. median/ci_high are inf when the estimate never drops to
    0.5 (more than half never reached), ci bounds NaN when not estimable."""
    from statsmodels.duration.survfunc import SurvfuncRight

    t = np.asarray(times, dtype=np.float64)
    s = np.asarray(reached, dtype=np.float64)
    out = {"median": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if t.size == 0:
        return out
    if not s.any():
        out.update(median=math.inf, ci_high=math.inf)
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf = SurvfuncRight(t, s)
        med = float(sf.quantile(0.5 - KM_TOL))
        try:
            lo, hi = (float(x) for x in sf.quantile_ci(0.5 - KM_TOL, alpha=1 - level))
        except Exception:  # too few events for the interval
            lo, hi = math.nan, math.nan
    out.update(median=math.inf if math.isnan(med) else med, ci_low=lo, ci_high=hi)
    return out


def ett_summary(sub: pd.DataFrame) -> dict:
    """Epochs to threshold of the finished runs in ``sub``: counts, Kaplan-Meier median and
    CI (not reached = censored at the run's last epoch), restricted mean and CI (not reached
    = the horizon), and the mean over the runs that reached it (descriptive only)."""
    fin = sub[sub["state"] == "finished"]
    curve = fin[fin["ett_status"] != "no curve"]
    reached = curve["ett_status"] == "reached"
    times = np.where(reached, curve[ETT], curve["epochs_trained"] - 1)
    km = km_median(times, reached.astype(float))
    r = describe(curve[ETT_R], bounds(sub, ETT))
    return {
        f"{ETT}_n_reached": int(reached.sum()),
        f"{ETT}_n_not_reached": int((~reached).sum()),
        f"{ETT}_n_no_curve": int((fin["ett_status"] == "no curve").sum()),
        f"{ETT}_km_median": km["median"],
        f"{ETT}_km_ci_low": km["ci_low"],
        f"{ETT}_km_ci_high": km["ci_high"],
        f"{ETT}_rmean": r["mean"],
        f"{ETT}_rmean_ci_low": r["ci_low"],
        f"{ETT}_rmean_ci_high": r["ci_high"],
        f"{ETT}_mean_reached": float(curve.loc[reached, ETT].mean()) if reached.any() else math.nan,
    }


def summarize(runs: pd.DataFrame, factors) -> pd.DataFrame:
    """One row per (factor, level): run counts, the pooled description of each summary
    metric over the level's finished runs, epochs to threshold, lr decays per run."""
    rows = []
    for f in factors:
        for level in sort_levels(runs[f]):
            sub = runs[runs[f] == level]
            fin = sub[sub["state"] == "finished"]
            row = {
                "factor": f,
                "level": level,
                "n_runs": len(sub),
                "n_finished": len(fin),
                "n_failed": int(sub["state"].isin(["failed", "diverged"]).sum()),
                "n_diverged": int((sub["state"] == "diverged").sum()),
                "n_unfinished": int((sub["state"] == "unfinished").sum()),
            }
            for m in SUMMARY_METRICS:
                row.update({f"{m}_{k}": v for k, v in describe(fin[m], BOUNDS.get(m)).items()})
            row.update(ett_summary(sub))
            dec = fin["lr_decays"].dropna() if "lr_decays" in fin else pd.Series(dtype=float)
            row["lr_decays_min"] = float(dec.min()) if len(dec) else math.nan
            row["lr_decays_median"] = float(dec.median()) if len(dec) else math.nan
            row["lr_decays_max"] = float(dec.max()) if len(dec) else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# paired comparisons


@dataclass(frozen=True)
class Comparison:
    """Level ``a`` against level ``b`` of ``factor`` on ``metric`` (differences a - b), on the
    runs matching ``where`` (((factor, level), ...); empty: all runs)."""

    factor: str
    a: str
    b: str
    metric: str
    where: tuple = ()
    name: str = ""

    def hypothesis(self):
        """The same null hypothesis whatever the order of a and b."""
        return (self.factor, frozenset((self.a, self.b)), self.metric, self.where)

    def flipped(self) -> "Comparison":
        return Comparison(self.factor, self.b, self.a, self.metric, self.where, self.name)


def subset(runs: pd.DataFrame, where) -> pd.DataFrame:
    for f, lv in where:
        runs = runs[runs[f] == lv]
    return runs


def matched_pairs(runs, factor, a, b, metric, factors, where=()):
    """Finished runs of levels a and b matched on every other factor and the seed ->
    (DataFrame indexed by the match key with columns a and b, number of match keys dropped
    because a run of the pair failed, is missing or lacks the value). ETT compares the
    restricted value."""
    col = value_column(metric)
    sub = subset(runs, where)
    sub = sub[sub[factor].isin([a, b])]
    keys = [f for f in factors if f != factor and f not in dict(where)] + ["seed"]
    if sub.empty:
        return pd.DataFrame(columns=[a, b]), 0
    n_keys = len(sub.groupby(keys, sort=False).size())
    fin = sub[(sub["state"] == "finished") & np.isfinite(sub[col].astype(float))]
    if fin.empty:
        return pd.DataFrame(columns=[a, b]), n_keys
    g = fin.groupby(keys + [factor], sort=False)[col].mean().unstack(factor)
    for lv in (a, b):
        if lv not in g.columns:
            g[lv] = np.nan
    g = g[[a, b]].dropna()
    idx = [i if isinstance(i, tuple) else (i,) for i in g.index]
    order = sorted(range(len(idx)), key=lambda i: tuple(level_key(str(x)) for x in idx[i]))
    g = g.iloc[order]
    return g, n_keys - len(g)


def paired_effect(x, y, level: float = 0.95) -> dict:
    """Mean paired difference d = x - y with its t CI at ``level``
    (``scipy.stats.ttest_rel(x, y).confidence_interval``), the paired t-test p, the Wilcoxon
    signed-rank p (``scipy.stats.wilcoxon``, default options) and Cohen's d_z = mean(d) /
    sd(d). Fewer than 2 pairs or all-zero differences leave the tests NaN with a note."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = int(x.size)
    d = x - y
    out = {
        "n_pairs": n,
        "mean_a": math.nan,
        "mean_b": math.nan,
        "mean_diff": math.nan,
        "sd_diff": math.nan,
        "cohen_dz": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "t_stat": math.nan,
        "p": math.nan,
        "wilcoxon_p": math.nan,
        "note": "",
    }
    if n == 0:
        out["note"] = "no matched pairs"
        return out
    out.update(mean_a=float(x.mean()), mean_b=float(y.mean()), mean_diff=float(d.mean()))
    if n < 2:
        out["note"] = "one matched pair: no test"
        return out
    sd = float(np.std(d, ddof=1))
    out["sd_diff"] = sd
    if np.all(d == 0):
        out.update(note="zero difference on every matched pair", ci_low=0.0, ci_high=0.0)
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = stats.ttest_rel(x, y)
        ci = t.confidence_interval(level)
        out.update(t_stat=float(t.statistic), p=float(t.pvalue), ci_low=float(ci.low), ci_high=float(ci.high))
        try:
            out["wilcoxon_p"] = float(stats.wilcoxon(x, y).pvalue)
        except ValueError:
            pass
    if sd > 0:
        out["cohen_dz"] = out["mean_diff"] / sd
    else:
        out["note"] = "the same non-zero difference on every pair (p = 0 formally)"
        out["cohen_dz"] = math.copysign(math.inf, out["mean_diff"])
    return out


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (statsmodels multipletests, method='holm') over the
    non-NaN entries; NaN stays NaN (an untestable comparison is not in the family)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def paired_t_power(dz, n, alpha: float) -> float:
    """Power of the two-sided paired t-test with n pairs at ``alpha`` against the
    standardized effect dz: statsmodels TTestPower().power. Where that is NaN (scipy's
    noncentral t returns NaN for the far lower tail at a large noncentrality), the upper
    tail alone, ``scipy.stats.nct.sf(t_crit, n - 1, |dz| sqrt(n))``: the lower tail is then
    below 1e-10."""
    from scipy import stats
    from statsmodels.stats.power import TTestPower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(TTestPower().power(effect_size=abs(dz), nobs=n, alpha=alpha, alternative="two-sided"))
        if math.isnan(p):
            crit = stats.t.isf(alpha / 2, n - 1)
            p = float(stats.nct.sf(crit, n - 1, abs(dz) * math.sqrt(n)))
    return p


def pairs_needed(dz, alpha: float, power: float = POWER) -> float:
    """Smallest number of pairs n >= 2 at which the two-sided paired t-test at ``alpha`` has
    ``power`` against the standardized effect ``dz`` (paired_t_power; integer search). inf when no n up to MAX_PAIRS suffices or dz is 0; NaN when undefined."""
    if dz is None or not np.isfinite(dz):
        return math.nan
    if dz == 0:
        return math.inf

    def ok(n):
        return paired_t_power(dz, n, alpha) >= power

    lo, hi = 2, 2
    while not ok(hi):
        lo, hi = hi + 1, hi * 2
        if hi > MAX_PAIRS:
            return math.inf
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return float(lo)


RESULT_COLUMNS = [
    "name",
    "factor",
    "level_a",
    "level_b",
    "metric",
    "where",
    "n_pairs",
    "n_dropped",
    "n_seeds",
    "pairs_per_seed",
    "mean_a",
    "mean_b",
    "mean_diff",
    "sd_diff",
    "cohen_dz",
    "ci_low",
    "ci_high",
    "adj_ci_low",
    "adj_ci_high",
    "t_stat",
    "p",
    "p_holm",
    "wilcoxon_p",
    "holm_reject",
    "decided",
    "decided_by",
    "seeds_needed",
    "n_reached_a",
    "n_reached_b",
    "m",
    "note",
]


def evaluate_comparisons(
    runs: pd.DataFrame,
    comparisons,
    factors,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
    target_width: float | None = None,
) -> pd.DataFrame:
    """Evaluate a family of paired comparisons on the tidy run table of one study.

    ``runs``: the run table (one row per run: ``state``, ``seed``, one column per factor,
    the metric columns; see runs.tidy_runs / runs.add_curve_measures). ``comparisons``: a
    list of Comparison(factor, a, b, metric[, where, name]); ``factors``: every factor of
    the study (pairs are matched on all of them but ``factor``, and on the seed).

    For each comparison, in the given order, one row with:

    * ``mean_diff`` (a - b) over the matched pairs, ``ci_low``/``ci_high`` its 95% t CI;
    * ``p`` the paired t-test p, ``p_holm`` the Holm-adjusted p over the family (the
      comparisons whose p is defined: m of them), ``holm_reject`` = p_holm < alpha;
    * ``adj_ci_low``/``adj_ci_high``: the Bonferroni-level CI, i.e. the t CI at confidence
      1 - alpha/m. It is consistent with Holm: when it excludes 0, m * p < alpha, so the
      Holm-adjusted p (never above the Bonferroni one) is below alpha as well;
    * ``decided``: the adjusted CI excludes 0 (``decided_by`` = "CI excludes 0") or, with
      ``target_width``, the adjusted CI is narrower than it ("CI narrower than target");
    * ``seeds_needed``: seeds at which the paired t-test at the Bonferroni level alpha/m
      has ``power`` against the observed d_z (pairs_needed / pairs per seed, rounded up;
      inf for no observed effect, NaN when d_z is undefined). The observed effect of a
      small pilot is itself uncertain: treat the number as a rough guide;
    * ``n_pairs``, ``n_seeds``, ``pairs_per_seed`` (settings of the other factors matched
      per seed), ``n_dropped`` (match keys lost to failed or missing runs), and for epochs
      to threshold ``n_reached_a``/``n_reached_b`` (pairs whose run reached the threshold).
    """
    from scipy import stats

    comparisons = list(comparisons)
    rows, tables = [], []
    for c in comparisons:
        table, dropped = matched_pairs(runs, c.factor, c.a, c.b, c.metric, factors, c.where)
        tables.append(table)
        res = paired_effect(table[c.a].to_numpy(), table[c.b].to_numpy())
        seeds = {k[-1] if isinstance(k, tuple) else k for k in table.index}
        row = {
            "name": c.name or f"{c.factor}: {c.a} vs {c.b}, {c.metric}",
            "factor": c.factor,
            "level_a": c.a,
            "level_b": c.b,
            "metric": c.metric,
            "where": ", ".join(f"{f}={lv}" for f, lv in c.where),
            "n_dropped": dropped,
            "n_seeds": len(seeds),
            "pairs_per_seed": len(table) / len(seeds) if seeds else math.nan,
            **res,
        }
        if dropped:
            extra = f"{dropped} match(es) dropped: a run failed or lacks the value"
            row["note"] = f"{row['note']}; {extra}" if row["note"] else extra
        if c.metric == ETT and len(table):
            hit, _ = matched_pairs(runs, c.factor, c.a, c.b, "ett_reached", factors, c.where)
            hit = hit.reindex(table.index)
            row["n_reached_a"] = int(hit[c.a].sum())
            row["n_reached_b"] = int(hit[c.b].sum())
        rows.append(row)
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    out["p_holm"] = holm(out["p"].to_numpy(dtype=np.float64))
    m = int(np.isfinite(out["p"].to_numpy(dtype=np.float64)).sum())
    out["m"] = m
    level = 1 - alpha / max(m, 1)
    derived = {
        k: [] for k in ("adj_ci_low", "adj_ci_high", "holm_reject", "decided", "decided_by", "seeds_needed")
    }
    for i, r in out.iterrows():
        lo = hi = math.nan
        if r["n_pairs"] >= 2 and r["sd_diff"] == 0:
            lo = hi = r["mean_diff"]
        elif r["n_pairs"] >= 2:
            t, c = tables[i], comparisons[i]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ci = stats.ttest_rel(
                    t[c.a].to_numpy(dtype=np.float64), t[c.b].to_numpy(dtype=np.float64)
                ).confidence_interval(level)
            lo, hi = float(ci.low), float(ci.high)
        excl = bool(np.isfinite(lo) and (lo > 0 or hi < 0))
        narrow = bool(target_width is not None and np.isfinite(lo) and hi - lo < target_width)
        need = pairs_needed(r["cohen_dz"], alpha / max(m, 1), power)
        pps = r["pairs_per_seed"]
        derived["adj_ci_low"].append(lo)
        derived["adj_ci_high"].append(hi)
        derived["holm_reject"].append(bool(np.isfinite(r["p_holm"]) and r["p_holm"] < alpha))
        derived["decided"].append(excl or narrow)
        derived["decided_by"].append("CI excludes 0" if excl else "CI narrower than target" if narrow else "")
        derived["seeds_needed"].append(
            float(math.ceil(need / pps)) if np.isfinite(need) and pps > 0 else need
        )
    for k, v in derived.items():
        out[k] = pd.Series(
            v,
            index=out.index,
            dtype=bool if k in ("holm_reject", "decided") else object if k == "decided_by" else np.float64,
        )
    return out


def pairwise(runs: pd.DataFrame, factors, metrics) -> list:
    """Every pair of levels (in level order) of every factor, for each metric."""
    out = []
    for f in factors:
        levels = sort_levels(runs[f])
        for i, a in enumerate(levels):
            for b in levels[i + 1 :]:
                out += [Comparison(f, a, b, m) for m in metrics]
    return out


def orient(row: pd.Series, cmp: Comparison) -> pd.Series:
    """A result row of the comparison of the same two levels, as cmp.a - cmp.b."""
    if row["level_a"] == cmp.a:
        return row
    r = row.copy()
    r["level_a"], r["level_b"] = row["level_b"], row["level_a"]
    r["mean_a"], r["mean_b"] = row["mean_b"], row["mean_a"]
    r["n_reached_a"], r["n_reached_b"] = row["n_reached_b"], row["n_reached_a"]
    for k in ("mean_diff", "cohen_dz", "t_stat"):
        r[k] = -row[k]
    r["ci_low"], r["ci_high"] = -row["ci_high"], -row["ci_low"]
    r["adj_ci_low"], r["adj_ci_high"] = -row["adj_ci_high"], -row["adj_ci_low"]
    return r
