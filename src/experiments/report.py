"""Sweep reports: factor-level statistics, paired tests, figures and tutorial claims.

``shallownet-report`` reads one sweep (a parent run plus its child runs) or any set of runs
of an experiment from MLflow -- only through ``mlflow.search_runs`` and the artifact API --
and writes into ``--out``::

    report.md      markdown: tables + figures referenced by relative path
    report.html    self-contained: same content, PNGs embedded as base64 data URIs, no JS
    summary.csv    one row per (factor, level)
    loss_curves.png, accuracy_heatmap.png | accuracy_bars.png,
    decision_boundaries.png, activations.png

With ``--sweep`` the same files are also logged as artifacts of the sweep's parent run
under ``report/``.  ``report.md`` and ``summary.csv`` are byte-identical when regenerated
from the same runs: rows are in a fixed order, numbers have fixed rounding (4 significant
digits in the markdown, 6 in the CSV) and nothing time- or path-dependent is written.

Definitions
-----------
* **Factors**: the params whose value differs between the child runs, except ``seed`` (the
  replicate axis), ``tracking.*`` and ``hydra.*`` (and ``--ignore-param`` keys).  A param
  that is a function of another factor (e.g. ``activation.alpha`` present only for
  leaky_relu) is an alias of it and is not analysed separately.  Levels are sorted
  numerically when they are numbers, by their numbers when they are lists of numbers
  (``[16]`` < ``[64]`` < ``[128]``), otherwise as strings.
* **Run states**: ``finished`` (status FINISHED), ``diverged`` (FAILED with a
  ``diverged_at_epoch`` tag), ``failed`` (FAILED/KILLED otherwise), ``unfinished``
  (RUNNING/SCHEDULED).  Every run is counted and listed; all statistics (means, CIs, paired
  tests) use finished runs only.
* **Statistics**: mean, std (ddof=1) and 95% CI ``mean +- t.ppf(0.975, n-1) * std / sqrt(n)``.
* **Epochs to threshold**: the first value of the ``epoch`` column of the run's full
  resolution ``curves.parquet`` at which ``train_loss <= threshold``.  The threshold is one
  number shared by every run of the report so that levels are compared at the same loss:
  ``--loss-threshold`` if given, else ``--loss-fraction`` (default 0.5) x the median, over
  all runs of the report, of the initial training loss (the train_loss of the first row of
  ``curves.parquet``).  Runs that never reach it are "not reached": counted and shown, never
  averaged as a number; paired tests on this metric use the pairs where both runs reached it.
* **Paired comparisons**: for every pair of levels (A, B) of a factor, runs are matched on
  all other factors and the seed; differences are A - B; paired t-test
  (``scipy.stats.ttest_rel``), Wilcoxon signed-rank (``scipy.stats.wilcoxon``, default
  options), mean difference, Cohen's d_z = mean(diff) / sd(diff).  Fewer than 2 pairs or
  all-zero differences give NaN with a note.
"""

from __future__ import annotations

import argparse
import ast
import base64
import html
import math
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_TRACKING_URI = "sqlite:///outputs/mlflow.db"
DEFAULT_EXPERIMENT = "shallownet"
DEFAULT_LOSS_FRACTION = 0.5
ALPHA = 0.05
IGNORED_PREFIXES = ("tracking.", "hydra.", "sweep.")
REPLICATE_PARAMS = ("seed",)
UNSET = "(unset)"
ALL_FACTOR = "(all runs)"

ETT = "epochs_to_threshold"
SUMMARY_METRICS = ("final_test_accuracy", "final_test_loss", "final_train_loss")
COMPARE_METRICS = ("final_test_accuracy", "final_test_loss", "final_train_loss", ETT)
METRIC_LABELS = {
    "final_test_accuracy": "final test accuracy",
    "final_test_loss": "final test loss",
    "final_train_loss": "final train loss",
    ETT: "epochs to threshold",
}
JOB_METRICS = ("jobs_total", "jobs_finished", "jobs_failed", "jobs_diverged", "jobs_skipped")

FIG_DPI = 100
FIGURES = {
    "loss_curves": "loss_curves.png",
    "heatmap": "accuracy_heatmap.png",
    "bars": "accuracy_bars.png",
    "boundaries": "decision_boundaries.png",
    "activations": "activations.png",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ReportError(RuntimeError):
    """A problem shown to the user as one line (sweep not found, store missing, ...)."""


@dataclass
class Report:
    out_dir: Path
    files: dict  # name -> Path of every file written
    summary: pd.DataFrame  # one row per (factor, level), unrounded
    comparisons: pd.DataFrame  # one row per (factor, level_a, level_b, metric), unrounded
    runs: pd.DataFrame  # one row per child run: state, seed, factor levels, metrics, ETT
    factors: list
    threshold: float
    claims: list = field(default_factory=list)  # list of dicts (claim, verdict, text, ...)
    parent_run_id: str | None = None
    logged_artifacts: list = field(default_factory=list)


# --------------------------------------------------------------------------------------
# small helpers


def _is_missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _level_str(v) -> str:
    return UNSET if _is_missing(v) else str(v)


def _level_key(s: str):
    """Deterministic sort key: numbers numerically, lists of numbers by their numbers."""
    if s == UNSET:
        return (3, (), s)
    try:
        f = float(s)
        if not math.isnan(f):
            return (0, (f,), s)
    except ValueError:
        pass
    try:
        v = ast.literal_eval(s)
        if isinstance(v, (list, tuple)) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v
        ):
            return (1, tuple(float(x) for x in v), s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    return (2, (), s)


def sort_levels(levels) -> list:
    return sorted({str(x) for x in levels}, key=_level_key)


def _fmt(x, digits: int = 4) -> str:
    """Fixed rounding for the markdown/HTML/stdout: 4 significant digits, 'n/a' for NaN."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, str):
        return x
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(f):
        return "n/a"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == int(f) and abs(f) < 1e15:
        return str(int(f))
    out = f"{f:.{digits}g}"
    return "0" if out in ("-0", "0") else out


def _fmt_p(p) -> str:
    return _fmt(p)


def _ci_str(lo, hi) -> str:
    if _is_missing(lo) or _is_missing(hi):
        return "n/a"
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def describe(values, bounds=None) -> dict:
    """n, mean, std (ddof=1) and the 95% t-based CI of the finite values, clipped to
    ``bounds`` (lo, hi) when given (an accuracy CI cannot leave [0, 1])."""
    from scipy import stats

    v = np.asarray([x for x in values if not _is_missing(x)], dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    out = {"n": n, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if n == 0:
        return out
    mean = float(np.mean(v))
    out["mean"] = mean
    if n >= 2:
        std = float(np.std(v, ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        lo, hi = mean - half, mean + half
        if bounds is not None:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        out.update(std=std, ci_low=lo, ci_high=hi)
    return out


def epochs_to_threshold(curve: pd.DataFrame | None, threshold: float):
    """First ``epoch`` with ``train_loss <= threshold`` (None: never; NaN losses never count)."""
    if curve is None or len(curve) == 0 or _is_missing(threshold):
        return None
    c = curve.sort_values("epoch", kind="mergesort")
    loss = c["train_loss"].to_numpy(dtype=np.float64)
    hit = np.flatnonzero(np.isfinite(loss) & (loss <= threshold))
    if hit.size == 0:
        return None
    return float(c["epoch"].to_numpy()[hit[0]])


def initial_train_loss(curve: pd.DataFrame | None) -> float:
    if curve is None or len(curve) == 0:
        return math.nan
    c = curve.sort_values("epoch", kind="mergesort")
    return float(c["train_loss"].iloc[0])


# --------------------------------------------------------------------------------------
# runs -> tidy table


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([np.nan] * len(df), index=df.index, dtype=object)


def split_parent(runs_df: pd.DataFrame):
    """(parent rows, child rows) of a search_runs frame (role tag; parentRunId fallback)."""
    role = _col(runs_df, "tags.shallownet.role").map(lambda v: None if _is_missing(v) else str(v))
    parents = runs_df[role == "parent"]
    children = runs_df[role != "parent"]
    return parents, children


def find_factors(children: pd.DataFrame, ignore=()) -> tuple[list, dict]:
    """Params that vary across the child runs -> (factors, {alias: factor it is aliased to})."""
    cand = {}
    for col in sorted(c for c in children.columns if c.startswith("params.")):
        key = col[len("params."):]
        if key in REPLICATE_PARAMS or key in ignore or key.startswith(IGNORED_PREFIXES):
            continue
        vals = children[col].map(_level_str)
        if vals.nunique() > 1:
            cand[key] = vals

    def pref(k):  # finer factors first; then '.name' keys, shorter keys, alphabetical
        return (-cand[k].nunique(), not k.endswith(".name"), len(k), k)

    kept, aliases = [], {}
    for k in sorted(cand, key=pref):
        for a in kept:
            if pd.DataFrame({"a": cand[a], "b": cand[k]}).groupby("a")["b"].nunique().max() == 1:
                aliases[k] = a
                break
        else:
            kept.append(k)
    return sorted(kept), aliases


def constant_params(children: pd.DataFrame, factors, aliases) -> list:
    """[(key, value)] of the params with one value over all child runs (tracking.* included)."""
    out = []
    for col in sorted(c for c in children.columns if c.startswith("params.")):
        key = col[len("params."):]
        if key in factors or key in aliases or key in REPLICATE_PARAMS:
            continue
        vals = children[col].map(_level_str).unique()
        if len(vals) == 1:
            out.append((key, vals[0]))
    return out


def _state(status, diverged) -> str:
    if status == "FINISHED":
        return "finished"
    if status in ("FAILED", "KILLED"):
        return "diverged" if not _is_missing(diverged) else "failed"
    return "unfinished"


def tidy_runs(children: pd.DataFrame, factors) -> pd.DataFrame:
    """One row per child run, sorted by factor levels, seed and run id."""
    t = pd.DataFrame({"run_id": children["run_id"].astype(str).to_numpy()})
    t["status"] = _col(children, "status").astype(str).to_numpy()
    t["diverged_at_epoch"] = _col(children, "tags.diverged_at_epoch").map(
        lambda v: "" if _is_missing(v) else str(v)).to_numpy()
    t["failure_reason"] = _col(children, "tags.failure_reason").map(
        lambda v: "" if _is_missing(v) else str(v)).to_numpy()
    t["overrides"] = _col(children, "tags.overrides").map(
        lambda v: "" if _is_missing(v) else str(v)).to_numpy()
    t["state"] = [_state(s, d or None) for s, d in zip(t["status"], t["diverged_at_epoch"])]
    seeds = _col(children, "params.seed").map(_level_str).to_numpy()
    t["seed"] = seeds
    for f in factors:
        t[f] = children["params." + f].map(_level_str).to_numpy() if f != ALL_FACTOR else "all"
    for m in SUMMARY_METRICS + ("test_auc", "epochs_completed"):
        v = pd.to_numeric(_col(children, "metrics." + m), errors="coerce").to_numpy(
            dtype=np.float64)
        # MLflow stores +-inf as +-float max: give the infinities back
        t[m] = np.where(np.abs(v) >= np.finfo(np.float64).max, np.copysign(np.inf, v), v)
    keys = [tuple(_level_key(r[f]) for f in factors) + (_level_key(r["seed"]), r["run_id"])
            for _, r in t.iterrows()]
    order = sorted(range(len(t)), key=lambda i: keys[i])
    return t.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# artifacts


def _download(client, run_id: str, path: str, dst: Path):
    """Local path of a run's artifact, or None when it does not exist / cannot be read."""
    try:
        d = dst / run_id
        d.mkdir(parents=True, exist_ok=True)
        local = client.download_artifacts(run_id, path, str(d))
    except Exception:  # missing artifact (e.g. a crashed run) -> shown as missing
        return None
    return Path(local) if Path(local).is_file() else None


def load_curves(client, run_ids, dst: Path) -> dict:
    """{run_id: curves DataFrame or None} from each run's curves.parquet artifact."""
    out = {}
    for rid in run_ids:
        p = _download(client, rid, "curves.parquet", dst)
        df = None
        if p is not None:
            try:
                df = pd.read_parquet(p)
                if "epoch" not in df or "train_loss" not in df:
                    df = None
                else:
                    df = df.sort_values("epoch", kind="mergesort").reset_index(drop=True)
            except Exception:
                df = None
        out[rid] = df
    return out


# --------------------------------------------------------------------------------------
# statistics


def summarize(runs: pd.DataFrame, factors) -> pd.DataFrame:
    rows = []
    for f in factors:
        for level in sort_levels(runs[f]):
            sub = runs[runs[f] == level]
            fin = sub[sub["state"] == "finished"]
            row = {
                "factor": f, "level": level, "n_runs": len(sub), "n_finished": len(fin),
                "n_failed": int(sub["state"].isin(["failed", "diverged"]).sum()),
                "n_diverged": int((sub["state"] == "diverged").sum()),
                "n_unfinished": int((sub["state"] == "unfinished").sum()),
            }
            for m in SUMMARY_METRICS:
                d = describe(fin[m], (0.0, 1.0) if m.endswith("accuracy") else None)
                row.update({f"{m}_{k}": v for k, v in d.items()})
            reached = fin[fin["ett_status"] == "reached"]
            d = describe(reached[ETT])
            row[f"{ETT}_n_reached"] = d["n"]
            row[f"{ETT}_n_not_reached"] = int((fin["ett_status"] == "not reached").sum())
            row[f"{ETT}_n_no_curve"] = int((fin["ett_status"] == "no curve").sum())
            row.update({f"{ETT}_{k}": v for k, v in d.items() if k != "n"})
            row[f"{ETT}_median"] = float(np.median(reached[ETT])) if len(reached) else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def _pair_table(runs, factor, a, b, metric, factors):
    """Matched (other factors + seed) values of finished runs -> (DataFrame[a, b], n_dropped)."""
    fin = runs[(runs["state"] == "finished") & runs[factor].isin([a, b])]
    keys = [f for f in factors if f != factor] + ["seed"]
    if fin.empty:
        return pd.DataFrame(columns=[a, b]), 0
    g = fin.groupby(keys + [factor], sort=False)[metric].mean().unstack(factor)
    for lv in (a, b):
        if lv not in g.columns:
            g[lv] = np.nan
    g = g[[a, b]]
    idx = list(g.index)
    idx_t = [i if isinstance(i, tuple) else (i,) for i in idx]
    order = sorted(range(len(idx)), key=lambda i: tuple(_level_key(str(x)) for x in idx_t[i]))
    g = g.iloc[order]
    # matched configs where both runs finished but the metric is missing (e.g. not reached)
    both = fin.groupby(keys + [factor], sort=False).size().unstack(factor)
    n_both = int(both.reindex(columns=[a, b]).notna().all(axis=1).sum())
    complete = g.dropna()
    return complete, n_both - len(complete)


def paired_test(x, y) -> dict:
    """Paired t-test, Wilcoxon signed-rank, mean/sd of x - y and Cohen's d_z."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = int(x.size)
    d = x - y
    out = {"n_pairs": n, "mean_a": math.nan, "mean_b": math.nan, "mean_diff": math.nan,
           "sd_diff": math.nan, "cohen_dz": math.nan, "t_stat": math.nan, "t_p": math.nan,
           "wilcoxon_stat": math.nan, "wilcoxon_p": math.nan, "note": ""}
    if n == 0:
        out["note"] = "no matched pairs"
        return out
    out.update(mean_a=float(x.mean()), mean_b=float(y.mean()), mean_diff=float(d.mean()))
    if n < 2:
        out["note"] = "fewer than 2 matched pairs: tests not computed"
        return out
    sd = float(np.std(d, ddof=1))
    out["sd_diff"] = sd
    if np.all(d == 0):
        out["note"] = "all differences are zero: tests undefined"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = stats.ttest_rel(x, y)
        out.update(t_stat=float(t.statistic), t_p=float(t.pvalue))
        try:
            w = stats.wilcoxon(x, y)
            out.update(wilcoxon_stat=float(w.statistic), wilcoxon_p=float(w.pvalue))
        except ValueError as e:
            out["note"] = f"wilcoxon: {e}"
    if sd > 0:
        out["cohen_dz"] = out["mean_diff"] / sd
    else:
        out["note"] = "constant non-zero differences: d_z infinite"
        out["cohen_dz"] = math.copysign(math.inf, out["mean_diff"])
    return out


def compare(runs, factor, a, b, metric, factors) -> dict:
    table, dropped = _pair_table(runs, factor, a, b, metric, factors)
    res = paired_test(table[a].to_numpy(), table[b].to_numpy()) if len(table) else paired_test(
        [], [])
    if dropped:
        why = "threshold not reached" if metric == ETT else "metric missing"
        extra = f"{dropped} matched pair(s) excluded ({why})"
        res["note"] = f"{res['note']}; {extra}" if res["note"] else extra
    return {"factor": factor, "level_a": a, "level_b": b, "metric": metric, **res}


def all_comparisons(runs, factors) -> pd.DataFrame:
    rows = []
    for f in factors:
        levels = sort_levels(runs[f])
        for i, a in enumerate(levels):
            for b in levels[i + 1:]:
                for m in COMPARE_METRICS:
                    rows.append(compare(runs, f, a, b, m, factors))
    cols = ["factor", "level_a", "level_b", "metric", "n_pairs", "mean_a", "mean_b",
            "mean_diff", "sd_diff", "cohen_dz", "t_stat", "t_p", "wilcoxon_stat",
            "wilcoxon_p", "note"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------------------
# tutorial claims


def _find_factor(factors, names):
    for n in names:
        if n in factors:
            return n
    for f in factors:
        if any(f.endswith("." + n) for n in names):
            return f
    return None


def _constant(runs_children: pd.DataFrame, key: str):
    col = "params." + key
    if col not in runs_children:
        return None
    vals = runs_children[col].map(_level_str).unique()
    return vals[0] if len(vals) == 1 else None


def _verdict(res: dict, better: str, alpha: float) -> str:
    d, p = res["mean_diff"], res["t_p"]
    if res["n_pairs"] == 0 or _is_missing(d):
        return "inconclusive (no matched pairs)"
    if d == 0:
        return "no (no difference on matched pairs)"
    favours = d < 0 if better == "lower" else d > 0
    sig = not _is_missing(p) and p < alpha
    if favours:
        if sig:
            return "yes"
        if _is_missing(p):
            return "not shown (direction agrees; too few pairs to test)"
        return f"not shown (direction agrees, but paired t p >= {alpha:g})"
    return "no (significantly the opposite)" if sig else "no (direction disagrees, not significant)"


def _claim(tutorial, text, runs, factor, a, b, metric, better, factors, alpha, context=""):
    """a is the level the tutorial says is better; differences are a - b."""
    res = compare(runs, factor, a, b, metric, factors)
    verdict = _verdict(res, better, alpha)
    label = METRIC_LABELS[metric]
    detail = (f"{factor}={a} vs {b}, {label}{context}: mean {_fmt(res['mean_a'])} vs "
              f"{_fmt(res['mean_b'])}, diff {_fmt(res['mean_diff'])}, d_z "
              f"{_fmt(res['cohen_dz'])}, n pairs = {res['n_pairs']}")
    if metric == ETT:
        fin = runs[(runs["state"] == "finished")]
        cnt = []
        for lv in (a, b):
            s = fin[fin[factor] == lv]
            cnt.append(f"{lv} {int((s['ett_status'] == 'reached').sum())}/{len(s)}")
        detail += "; reached the threshold: " + ", ".join(cnt) + " finished runs"
    if res["note"]:
        detail += f"; {res['note']}"
    short = (f"{tutorial}: {text}: {verdict}, paired t p = {_fmt_p(res['t_p'])}, "
             f"Wilcoxon p = {_fmt_p(res['wilcoxon_p'])}")
    where = f"{a} vs {b}, {label}{context}"
    return {"short": short, "where": where, "tutorial": tutorial, "claim": text,
            "verdict": verdict, "metric": metric,
            "factor": factor, "level_a": a, "level_b": b, "t_p": res["t_p"],
            "wilcoxon_p": res["wilcoxon_p"], "n_pairs": res["n_pairs"],
            "text": f"{short} ({detail})"}


def _note(tutorial, text, why):
    line = f"{tutorial}: {text}: not testable ({why})"
    return {"tutorial": tutorial, "claim": text, "verdict": "not testable", "metric": "",
            "factor": "", "level_a": "", "level_b": "", "t_p": math.nan,
            "wilcoxon_p": math.nan, "n_pairs": 0, "short": line, "where": "", "text": line}


def _width(level: str):
    try:
        v = ast.literal_eval(level)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v):
        return float(sum(v))
    return None


def tutorial_claims(runs, children, factors, alpha=ALPHA) -> list:
    claims = []
    act = _find_factor(factors, ["activation.name", "activation"])
    act_const = _constant(children, "activation.name")

    # Tutorial 000/001: ReLU converges faster than tanh.
    if act is not None and {"relu", "tanh"} <= set(runs[act]):
        claims.append(_claim("Tutorial 000/001",
                             "ReLU converges faster than tanh (fewer epochs to the loss threshold)",
                             runs, act, "relu", "tanh", ETT, "lower", factors, alpha))

    # He initialisation suits ReLU.
    init = _find_factor(factors, ["initializer.name", "initializer"])
    if init is not None:
        text = "He initialisation suits ReLU better than small random / Xavier"
        levels = sort_levels(runs[init])
        he = [lv for lv in levels if lv.startswith("he")]
        base = [lv for lv in levels if lv.startswith(("small", "xavier", "glorot"))]
        sub, ctx = runs, ""
        if act is not None:
            sub, ctx = runs[runs[act] == "relu"], ", ReLU runs"
        if not he or not base:
            pass
        elif (act is not None and sub.empty) or (act is None and act_const not in (None, "relu")):
            claims.append(_note("Tutorials", text, "no ReLU runs in this study"))
        else:
            for h in he:
                for b in base:
                    for m, better in (("final_test_accuracy", "higher"), (ETT, "lower")):
                        claims.append(_claim("Tutorials", text, sub, init, h, b, m, better,
                                             factors, alpha, ctx))

    # Plateau decay reaches a lower final training loss.
    sched = _find_factor(factors, ["lr_schedule.name", "lr_schedule"])
    if sched is not None and {"plateau", "constant"} <= set(runs[sched]):
        claims.append(_claim("Tutorials", "plateau decay reaches a lower final training loss",
                             runs, sched, "plateau", "constant", "final_train_loss", "lower",
                             factors, alpha))

    # Wider hidden layers fit the quadrant task better.
    hid = _find_factor(factors, ["model.hidden_sizes", "hidden_sizes"])
    if hid is None:
        hid = next((f for f in factors if "hidden" in f), None)
    if hid is not None:
        widths = {lv: _width(lv) for lv in sort_levels(runs[hid])}
        widths = {k: v for k, v in widths.items() if v is not None}
        if len(widths) >= 2:
            sub, ctx = runs, ""
            ds = _find_factor(factors, ["dataset.name"])
            ds_const = _constant(children, "dataset.name")
            if ds is not None:
                sub, ctx = runs[runs[ds] == "quadrant"], ", quadrant runs"
            elif ds_const not in (None, "quadrant"):
                ctx = f", measured on dataset {ds_const}, not quadrant"
            text = "wider hidden layers fit the quadrant task better"
            if sub.empty:
                claims.append(_note("Tutorial 002", text, "no quadrant runs in this study"))
            else:
                order = sorted(widths, key=lambda k: (widths[k], _level_key(k)))
                narrow, wide = order[0], order[-1]
                for m, better in (("final_test_accuracy", "higher"),
                                  ("final_train_loss", "lower")):
                    claims.append(_claim("Tutorial 002", text, sub, hid, wide, narrow, m,
                                         better, factors, alpha, ctx))
    return claims


# --------------------------------------------------------------------------------------
# figures (matplotlib Figure API on Agg; fixed sizes, dpi and no Software metadata)


@contextmanager
def _mpl_style():
    import matplotlib.style

    with matplotlib.style.context("default"):
        yield


def _new_figure(w, h):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=FIG_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=FIG_DPI, format="png", metadata={"Software": None})
    return path


def _grid(n, ncols_max=3):
    ncols = max(1, min(ncols_max, n))
    return ncols, max(1, math.ceil(n / ncols))


def fig_loss_curves(runs, curves, factors, threshold, path: Path) -> Path:
    from scipy import stats

    ncols, nrows = _grid(len(factors))
    with _mpl_style():
        fig = _new_figure(5.0 * ncols, 3.6 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(factors):]:
            ax.set_visible(False)
        for ax, f in zip(axes.flat, factors):
            lows = []
            for i, level in enumerate(sort_levels(runs[f])):
                ids = runs[(runs[f] == level) & (runs["state"] == "finished")]["run_id"]
                series = {r: curves[r].set_index("epoch")["train_loss"] for r in ids
                          if curves.get(r) is not None}
                if not series:
                    continue
                m = pd.concat(series, axis=1).sort_index()
                m = m.where(np.isfinite(m))
                mean = m.mean(axis=1)
                n = m.count(axis=1)
                std = m.std(axis=1, ddof=1)
                half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * std / np.sqrt(n)
                half[n < 2] = np.nan
                color = f"C{i % 10}"
                x = mean.index.to_numpy(dtype=np.float64)
                lo, hi = (mean - half).to_numpy(), (mean + half).to_numpy()
                ax.plot(x, mean.to_numpy(), color=color, lw=1.5,
                        label=f"{level} (n={len(series)})")
                ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
                lows += [mean.to_numpy(), lo]
            low = np.concatenate(lows) if lows else np.array([np.nan])
            positive = bool(np.isfinite(low).any()) and bool(np.nanmin(low) > 0)
            if not _is_missing(threshold):
                ax.axhline(threshold, color="k", ls="--", lw=0.8,
                           label=f"threshold {_fmt(threshold)}")
            if positive and ax.has_data():
                ax.set_yscale("log")
            ax.set_title(f"{f}: mean train loss, 95% CI")
            ax.set_xlabel("epoch")
            ax.set_ylabel("train loss")
            ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        return _save(fig, path)


def fig_accuracy(runs, factors, summary, path_heatmap: Path, path_bars: Path) -> Path:
    fin = runs[runs["state"] == "finished"]
    with _mpl_style():
        if len(factors) >= 2:
            pairs = [(a, b) for i, a in enumerate(factors) for b in factors[i + 1:]][:6]
            ncols, nrows = _grid(len(pairs), 2)
            fig = _new_figure(5.5 * ncols, 4.2 * nrows)
            axes = fig.subplots(nrows, ncols, squeeze=False)
            for ax in axes.flat[len(pairs):]:
                ax.set_visible(False)
            for ax, (fa, fb) in zip(axes.flat, pairs):
                la, lb = sort_levels(runs[fa]), sort_levels(runs[fb])
                mean = np.full((len(la), len(lb)), np.nan)
                cnt = np.zeros((len(la), len(lb)), dtype=int)
                for i, a in enumerate(la):
                    for j, b in enumerate(lb):
                        v = fin[(fin[fa] == a) & (fin[fb] == b)]["final_test_accuracy"]
                        v = v[np.isfinite(v)]
                        cnt[i, j] = len(v)
                        if len(v):
                            mean[i, j] = float(v.mean())
                im = ax.imshow(np.ma.masked_invalid(mean), cmap="viridis", aspect="auto")
                fig.colorbar(im, ax=ax, label="mean final test accuracy")
                lo, hi = im.get_clim()
                for i in range(len(la)):
                    for j in range(len(lb)):
                        bright = np.isfinite(mean[i, j]) and (
                            hi == lo or (mean[i, j] - lo) / (hi - lo) > 0.6)
                        ax.text(j, i, f"{_fmt(mean[i, j], 3)}\n(n={cnt[i, j]})", ha="center",
                                va="center", fontsize=8,
                                color="k" if bright or not np.isfinite(mean[i, j]) else "w")
                ax.set_xticks(range(len(lb)), lb, rotation=30, ha="right", fontsize=8)
                ax.set_yticks(range(len(la)), la, fontsize=8)
                ax.set_xlabel(fb)
                ax.set_ylabel(fa)
                ax.set_title(f"{fa} x {fb}")
            fig.tight_layout()
            return _save(fig, path_heatmap)
        f = factors[0]
        s = summary[summary["factor"] == f]
        fig = _new_figure(max(4.0, 1.1 * len(s) + 2.0), 3.6)
        ax = fig.subplots()
        x = np.arange(len(s))
        mean = s["final_test_accuracy_mean"].to_numpy(dtype=np.float64)
        lo = (s["final_test_accuracy_mean"] - s["final_test_accuracy_ci_low"]).to_numpy(np.float64)
        hi = (s["final_test_accuracy_ci_high"] - s["final_test_accuracy_mean"]).to_numpy(np.float64)
        err = np.where(np.isfinite([lo, hi]), [lo, hi], 0.0)  # (2, levels): clipped CI
        ax.bar(x, np.nan_to_num(mean), yerr=err, capsize=4,
               color=[f"C{i % 10}" for i in range(len(s))])
        ax.set_xticks(x, [f"{lv}\n(n={n})" for lv, n in zip(s["level"],
                                                             s["final_test_accuracy_n"])],
                      fontsize=8)
        ax.set_xlabel(f)
        ax.set_ylabel("mean final test accuracy")
        ax.set_title("final test accuracy, 95% CI")
        fig.tight_layout()
        return _save(fig, path_bars)


def _boundary_pick(runs, f, level):
    sub = runs[runs[f] == level]
    fin = sub[sub["state"] == "finished"]
    pool = fin if len(fin) else sub
    lowest = min(pool["seed"], key=_level_key)
    return pool[pool["seed"] == lowest].iloc[0]


def fig_boundaries(runs, factors, client, dst: Path, path: Path) -> Path:
    import matplotlib.image as mpimg

    ncols = max(len(sort_levels(runs[f])) for f in factors)
    nrows = len(factors)
    with _mpl_style():
        fig = _new_figure(4.4 * ncols, 4.2 * nrows)  # tiles at about their own pixel size
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for r, f in enumerate(factors):
            for c, lv in enumerate(sort_levels(runs[f])):
                ax = axes[r, c]
                run = _boundary_pick(runs, f, lv)
                title = f"{f}={lv}\nseed {run['seed']}"
                if run["state"] != "finished":
                    title += f" ({run['state']})"
                ax.set_title(title, fontsize=8)
                p = _download(client, run["run_id"], "plots/decision_boundary.png", dst)
                img = None
                if p is not None:
                    try:
                        img = mpimg.imread(p)
                    except Exception:
                        img = None
                if img is None:
                    ax.text(0.5, 0.5, "no decision_boundary.png", ha="center", va="center",
                            fontsize=8, transform=ax.transAxes)
                else:
                    ax.imshow(img, interpolation="nearest")
        fig.tight_layout()
        return _save(fig, path)


def fig_activations(path: Path) -> Path:
    from model import ACTIVATIONS, DERIVATIVES

    z = np.linspace(-5.0, 5.0, 1001)  # (1001,)
    names = ["sigmoid", "tanh", "relu", "leaky_relu"]
    with _mpl_style():
        fig = _new_figure(14.0, 3.2)
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names):
            a = ACTIVATIONS[name](z)
            d = DERIVATIVES[name](a, np.ones_like(z))
            ax.plot(z, a, color="C0", lw=1.5, label=f"{name}(z)")
            ax.plot(z, d, color="C1", lw=1.5, ls="--", label=f"{name}'(z)")
            ax.axhline(0, color="0.7", lw=0.5)
            ax.axvline(0, color="0.7", lw=0.5)
            ax.set_title(name + (" (alpha=0.01)" if name == "leaky_relu" else ""))
            ax.set_xlabel("z")
            ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        return _save(fig, path)


# --------------------------------------------------------------------------------------
# document: one list of blocks rendered to markdown and to HTML


def _md_cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _inline_html(s: str) -> str:
    s = html.escape(s, quote=False)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def render_markdown(blocks) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            out.append(b[1])
        elif kind == "ul":
            out.append("\n".join(f"- {x}" for x in b[1]))
        elif kind == "table":
            head, rows = b[1], b[2]
            lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |",
                     "|" + "|".join("---" for _ in head) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})")
    return "\n\n".join(out) + "\n"


def render_html(blocks, out_dir: Path, title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            body.append(f"<h{b[1]}>{_inline_html(b[2])}</h{b[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "ul":
            body.append("<ul>\n" + "\n".join(f"<li>{_inline_html(x)}</li>" for x in b[1])
                        + "\n</ul>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b[1])
            rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r)
                             + "</tr>" for r in b[2])
            body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n"
                        "</tbody>\n</table>")
        elif kind == "img":
            data = base64.b64encode((out_dir / b[1]).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(b[2])}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(b[2])}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
             "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}"
             "th{background:#eee}img{max-width:100%}code{background:#f4f4f4}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# --------------------------------------------------------------------------------------
# the report


@contextmanager
def _no_progress_bars():
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    prev = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if prev is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = prev


def _parent_info(parents: pd.DataFrame):
    if parents.empty:
        return None
    p = parents.sort_values(["start_time", "run_id"], kind="mergesort").iloc[-1]
    return p


def _tag(row, key):
    if row is None:
        return None
    v = row.get("tags." + key)
    return None if _is_missing(v) else str(v)


def build_report(runs_df: pd.DataFrame, out_dir, client=None, *, title: str | None = None,
                 loss_threshold: float | None = None,
                 loss_fraction: float = DEFAULT_LOSS_FRACTION, ignore_params=(),
                 log_artifacts: bool = True, alpha: float = ALPHA) -> Report:
    """Write the report of the runs in ``runs_df`` (a ``mlflow.search_runs`` frame).

    ``runs_df`` may contain the sweep's parent run (tag ``shallownet.role`` = parent); it is
    not analysed but named in the report and, with ``log_artifacts``, receives the files under
    ``report/``.  ``client`` (an ``MlflowClient``) downloads the artifacts; by default one for
    the current tracking URI.
    """
    if client is None:
        from mlflow import MlflowClient

        client = MlflowClient()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parents, children = split_parent(runs_df)
    if children.empty:
        raise ReportError("no child runs to report on")
    parent = _parent_info(parents)
    factors, aliases = find_factors(children, ignore=tuple(ignore_params))
    table_factors = factors if factors else [ALL_FACTOR]
    runs = tidy_runs(children, table_factors)

    with tempfile.TemporaryDirectory(prefix="shallownet-report-") as tmp, _no_progress_bars():
        tmp = Path(tmp)
        curves = load_curves(client, list(runs["run_id"]), tmp / "curves")
        runs["initial_train_loss"] = [initial_train_loss(curves[r]) for r in runs["run_id"]]
        if loss_threshold is not None:
            threshold = float(loss_threshold)
            threshold_text = f"`--loss-threshold` = {_fmt(threshold)} (absolute)"
        else:
            init = runs["initial_train_loss"].to_numpy(dtype=np.float64)
            init = init[np.isfinite(init)]
            med = float(np.median(init)) if init.size else math.nan
            threshold = loss_fraction * med
            threshold_text = (f"{_fmt(loss_fraction)} x the median initial training loss of "
                              f"the runs ({_fmt(med)}) = {_fmt(threshold)}")
        ett, status = [], []
        for r in runs["run_id"]:
            e = epochs_to_threshold(curves[r], threshold)
            ett.append(math.nan if e is None else e)
            status.append("no curve" if curves[r] is None else
                          ("not reached" if e is None else "reached"))
        runs[ETT] = ett
        runs["ett_status"] = status

        summary = summarize(runs, table_factors)
        comparisons = all_comparisons(runs, factors)
        claims = tutorial_claims(runs, children, factors, alpha)

        files = {}
        files["loss_curves"] = fig_loss_curves(runs, curves, table_factors, threshold,
                                               out_dir / FIGURES["loss_curves"])
        files["accuracy"] = fig_accuracy(runs, table_factors, summary,
                                         out_dir / FIGURES["heatmap"], out_dir / FIGURES["bars"])
        files["boundaries"] = fig_boundaries(runs, table_factors, client, tmp / "png",
                                             out_dir / FIGURES["boundaries"])
        files["activations"] = fig_activations(out_dir / FIGURES["activations"])

    sweep_id = _tag(parent, "sweep_id")
    if sweep_id is None:
        ids = children.get("tags.sweep_id")
        ids = sorted({str(v) for v in ids if not _is_missing(v)}) if ids is not None else []
        sweep_id = ids[0] if len(ids) == 1 else None
    study = _tag(parent, "shallownet.experiment")
    if study is None:
        st = children.get("tags.shallownet.experiment")
        st = sorted({str(v) for v in st if not _is_missing(v)}) if st is not None else []
        study = ", ".join(st) if st else None
    title = title or f"shallownet report: {study or sweep_id or 'runs'}"

    blocks = _document(title, runs, children, parent, sweep_id, study, factors, table_factors,
                       aliases, summary, comparisons, claims, threshold_text, threshold, files,
                       alpha)
    md_path = out_dir / "report.md"
    md_path.write_bytes(render_markdown(blocks).encode("utf-8"))
    html_path = out_dir / "report.html"
    html_path.write_bytes(render_html(blocks, out_dir, title).encode("utf-8"))
    csv_path = out_dir / "summary.csv"
    csv_text = summary.to_csv(index=False, lineterminator="\n", float_format="%.6g")
    csv_path.write_bytes(csv_text.encode("utf-8"))
    files.update(report_md=md_path, report_html=html_path, summary_csv=csv_path)

    report = Report(out_dir=out_dir, files=files, summary=summary, comparisons=comparisons,
                    runs=runs, factors=factors, threshold=threshold, claims=claims,
                    parent_run_id=None if parent is None else str(parent["run_id"]))
    if log_artifacts and parent is not None:
        for key in ("report_md", "report_html", "summary_csv", "loss_curves", "accuracy",
                    "boundaries", "activations"):
            client.log_artifact(report.parent_run_id, str(files[key]), artifact_path="report")
            report.logged_artifacts.append(f"report/{files[key].name}")
    return report


def _document(title, runs, children, parent, sweep_id, study, factors, table_factors, aliases,
              summary, comparisons, claims, threshold_text, threshold, files, alpha):
    B = []
    B.append(("h", 1, title))
    info = []
    if sweep_id:
        info.append(f"Sweep: `{sweep_id}`")
    if parent is not None:
        info.append(f"Parent run: `{parent['run_id']}`")
    if study:
        info.append(f"Study: `{study}`")
    n_fin = int((runs["state"] == "finished").sum())
    n_div = int((runs["state"] == "diverged").sum())
    n_fail = int((runs["state"] == "failed").sum())
    n_unf = int((runs["state"] == "unfinished").sum())
    info.append(f"Child runs: {len(runs)} ({n_fin} finished, {n_div} diverged, {n_fail} failed"
                f", {n_unf} unfinished)")
    if parent is not None:
        jobs = [f"{m[len('jobs_'):]} {_fmt(parent.get('metrics.' + m))}" for m in JOB_METRICS
                if ("metrics." + m) in parent.index]
        if jobs:
            info.append("Parent job counters: " + ", ".join(jobs))
    B.append(("ul", info))
    B.append(("p", "Statistics use finished runs only; diverged and failed runs are counted in "
                   "every table and listed below. Means come with std (ddof=1) and the 95% "
                   "t-based CI mean +- t(0.975, n-1) * std / sqrt(n), accuracy CIs clipped to "
                   "[0, 1]."))

    B.append(("h", 2, "Design"))
    if factors:
        B.append(("table", ["factor", "levels", "n levels"],
                  [[f, ", ".join(sort_levels(runs[f])), len(sort_levels(runs[f]))]
                   for f in factors]))
    else:
        B.append(("p", "No parameter varies across the runs except the seed: one group."))
    if aliases:
        B.append(("p", "Aliased params (determined by a factor, not analysed separately): "
                  + ", ".join(f"`{k}` -> `{v}`" for k, v in sorted(aliases.items())) + "."))
    seeds = sort_levels(runs["seed"])
    B.append(("p", f"Replicates (seed): {', '.join(seeds)} ({len(seeds)} seeds)."))
    const = constant_params(children, factors, aliases)
    const = [(k, v) for k, v in const if not k.startswith(IGNORED_PREFIXES)]
    if const:
        B.append(("table", ["constant param", "value"], [[k, v] for k, v in const]))

    B.append(("h", 2, "Epochs to threshold"))
    B.append(("p", "Epochs to threshold = the first `epoch` of the run's full-resolution "
                   "`curves.parquet` at which train_loss <= threshold. Threshold (shared by "
                   f"all runs): {threshold_text}. Runs that never reach it are counted as "
                   "'not reached' and are not averaged; paired tests use matched pairs where "
                   "both runs reached it."))

    B.append(("h", 2, "Tutorial claims"))
    if claims:
        B.append(("ul", [c["text"] for c in claims]))
        B.append(("p", f"yes = the measured difference favours the claim with paired t-test "
                       f"p < {alpha:g}; differences are (claimed-better level) - (other level) "
                       "on runs matched by the other factors and the seed."))
    else:
        B.append(("p", "None of the tutorials' claims concerns the factors of this study."))

    B.append(("h", 2, "Results per factor level"))
    for f in table_factors:
        s = summary[summary["factor"] == f]
        rows = []
        for _, r in s.iterrows():
            rows.append([
                r["level"], r["n_runs"], r["n_finished"], f"{r['n_failed']} ({r['n_diverged']})",
                f"{_fmt(r['final_test_accuracy_mean'])} +- {_fmt(r['final_test_accuracy_std'])}",
                _ci_str(r["final_test_accuracy_ci_low"], r["final_test_accuracy_ci_high"]),
                f"{_fmt(r['final_test_loss_mean'])} +- {_fmt(r['final_test_loss_std'])}",
                _ci_str(r["final_test_loss_ci_low"], r["final_test_loss_ci_high"]),
                _fmt(r["final_train_loss_mean"]),
                f"{r[f'{ETT}_n_reached']}/{r['n_finished']}",
                f"{_fmt(r[f'{ETT}_mean'])} +- {_fmt(r[f'{ETT}_std'])}",
                _ci_str(r[f"{ETT}_ci_low"], r[f"{ETT}_ci_high"]),
            ])
        B.append(("h", 3, f))
        B.append(("table", ["level", "runs", "finished", "failed (diverged)",
                            "test acc mean +- sd", "test acc 95% CI", "test loss mean +- sd",
                            "test loss 95% CI", "train loss mean", "reached threshold",
                            "epochs to thr. mean +- sd", "epochs to thr. 95% CI"], rows))

    B.append(("h", 2, "Paired comparisons"))
    if comparisons.empty:
        B.append(("p", "No factor: nothing to compare."))
    for f in factors:
        c = comparisons[comparisons["factor"] == f]
        rows = [[r["level_a"], r["level_b"], METRIC_LABELS[r["metric"]], r["n_pairs"],
                 _fmt(r["mean_a"]), _fmt(r["mean_b"]), _fmt(r["mean_diff"]), _fmt(r["cohen_dz"]),
                 _fmt_p(r["t_p"]), _fmt_p(r["wilcoxon_p"]), r["note"]] for _, r in c.iterrows()]
        B.append(("h", 3, f))
        B.append(("table", ["A", "B", "metric", "n pairs", "mean A", "mean B", "diff A-B",
                            "d_z", "paired t p", "Wilcoxon p", "note"], rows))

    B.append(("h", 2, "Failed and diverged runs"))
    bad = runs[runs["state"] != "finished"]
    if bad.empty:
        B.append(("p", "None."))
    else:
        B.append(("table", ["run", "state", "status"] + factors + ["seed", "diverged at epoch",
                                                                   "failure reason",
                                                                   "epochs to threshold"],
                  [[r["run_id"], r["state"], r["status"]] + [r[f] for f in factors]
                   + [r["seed"], r["diverged_at_epoch"] or "-", r["failure_reason"] or "-",
                      _ett_cell(r)] for _, r in bad.iterrows()]))

    B.append(("h", 2, "Figures"))
    B.append(("p", "Mean training-loss curves per level (finished runs, 95% CI bands; dashed: "
                   "the loss threshold)."))
    B.append(("img", files["loss_curves"].name, "Training loss curves"))
    if len(table_factors) >= 2:
        B.append(("p", "Mean final test accuracy per pair of factors (finished runs)."))
        B.append(("img", files["accuracy"].name, "Final test accuracy heatmap"))
    else:
        B.append(("p", "Mean final test accuracy per level with 95% CI (finished runs)."))
        B.append(("img", files["accuracy"].name, "Final test accuracy"))
    B.append(("p", "Decision boundaries: the run with the lowest seed of each level."))
    B.append(("img", files["boundaries"].name, "Decision boundaries"))
    B.append(("p", "Activation functions (solid) and their derivatives (dashed)."))
    B.append(("img", files["activations"].name, "Activations and derivatives"))

    B.append(("h", 2, "All runs"))
    B.append(("table", ["run", "state"] + factors + ["seed", "test acc", "test loss",
                                                     "train loss", "epochs to threshold"],
              [[r["run_id"], r["state"]] + [r[f] for f in factors]
               + [r["seed"], _fmt(r["final_test_accuracy"]), _fmt(r["final_test_loss"]),
                  _fmt(r["final_train_loss"]), _ett_cell(r)] for _, r in runs.iterrows()]))
    return B


def _ett_cell(r) -> str:
    return _fmt(r[ETT]) if r["ett_status"] == "reached" else r["ett_status"]


def summary_text(report: Report) -> str:
    """A one-screen table of the summary for stdout."""
    head = ["factor", "level", "runs", "fin", "fail", "test acc mean [95% CI]",
            "epochs to thr (reached)"]
    rows = []
    for _, r in report.summary.iterrows():
        rows.append([r["factor"], r["level"], str(r["n_runs"]), str(r["n_finished"]),
                     str(r["n_failed"]),
                     f"{_fmt(r['final_test_accuracy_mean'])} " + _ci_str(
                         r["final_test_accuracy_ci_low"], r["final_test_accuracy_ci_high"]),
                     f"{_fmt(r[f'{ETT}_mean'])} ({r[f'{ETT}_n_reached']}/{r['n_finished']})"])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa
    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append(f"threshold: train_loss <= {_fmt(report.threshold)}")
    out += ["* " + c["short"] + (f" [{c['where']}]" if c["where"] else "")
            for c in report.claims]
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# MLflow access and the CLI


def resolve_tracking_uri(flag: str | None) -> str:
    if flag:
        return flag
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_store(uri: str) -> None:
    """Refuse a missing sqlite store (never create one); other URIs are checked on use."""
    if uri.startswith("sqlite:"):
        if not uri.startswith("sqlite:///"):
            raise ReportError(f"unsupported sqlite tracking URI {uri!r}: use sqlite:///PATH")
        path = uri[len("sqlite:///"):].split("?", 1)[0]
        if not path or path == ":memory:":
            raise ReportError(f"tracking store {uri!r} has no file")
        if not Path(path).is_file():
            raise ReportError(f"tracking store not found: no sqlite file at {path} "
                              "(pass --tracking-uri or set MLFLOW_TRACKING_URI)")
    elif uri.startswith("file:") or "://" not in uri:
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        if not Path(path).exists():
            raise ReportError(f"tracking store not found: {path}")


@contextmanager
def _tracking(uri: str):
    """Point mlflow's global tracking URI at ``uri`` and restore the previous one afterwards."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    prev = getattr(tracking_utils, "_tracking_uri", None)
    prev_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(prev)
        if prev_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = prev_env


def _one_line(e: Exception) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_sweep_runs(client, experiment_name: str, sweep: str):
    """(sweep_id, runs DataFrame of the parent and child runs) via mlflow.search_runs."""
    import mlflow

    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        raise ReportError(f"experiment {experiment_name!r} not found in the tracking store")
    ids = [exp.experiment_id]
    if sweep == "latest":
        parents = mlflow.search_runs(experiment_ids=ids,
                                     filter_string="tags.`shallownet.role` = 'parent'")
        if parents.empty or "tags.sweep_id" not in parents:
            raise ReportError(f"no sweep (parent run) found in experiment {experiment_name!r}")
        parents = parents[parents["tags.sweep_id"].notna()]
        if parents.empty:
            raise ReportError(f"no sweep (parent run) found in experiment {experiment_name!r}")
        parents = parents.sort_values(["start_time", "run_id"], kind="mergesort")
        sweep = str(parents.iloc[-1]["tags.sweep_id"])
    runs = mlflow.search_runs(experiment_ids=ids, filter_string=f"tags.sweep_id = {_quote(sweep)}")
    if runs.empty:
        raise ReportError(f"sweep {sweep!r} not found in experiment {experiment_name!r}")
    return sweep, latest_per_config(runs)


def latest_per_config(runs):
    """A resumed sweep can hold the same config twice (a failed job run again): keep the
    most recent child run of each config_hash."""
    if "tags.config_hash" not in runs:
        return runs
    runs = runs.sort_values(["start_time", "run_id"], kind="mergesort")
    dup = runs["tags.config_hash"].notna() & runs.duplicated("tags.config_hash", keep="last")
    return runs[~dup].reset_index(drop=True)


def load_experiment_runs(client, experiment_name: str, filter_string: str = ""):
    import mlflow

    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        raise ReportError(f"experiment {experiment_name!r} not found in the tracking store")
    runs = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string=filter_string or "")
    _, children = split_parent(runs)
    if children.empty:
        raise ReportError(f"no runs in experiment {experiment_name!r} match "
                          f"{filter_string!r}" if filter_string else
                          f"no runs in experiment {experiment_name!r}")
    return runs


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", s).strip("._") or "report"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="shallownet-report",
        description="Report of a shallownet sweep (or any runs of an experiment) from MLflow: "
                    "per-level statistics, paired tests, figures and the tutorials' claims.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sweep", metavar="SWEEP_ID|latest",
                     help="sweep id (tag sweep_id) or 'latest' (most recent parent run)")
    src.add_argument("--experiment", metavar="NAME",
                     help="report on all child runs of this experiment (no parent logging)")
    p.add_argument("--filter", default="", metavar="FILTER",
                   help="mlflow search filter for --experiment, e.g. "
                        "\"params.dataset.name = 'quadrant'\"")
    p.add_argument("--experiment-name", default=DEFAULT_EXPERIMENT,
                   help="experiment holding the sweep (with --sweep; default %(default)s)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                        f"{DEFAULT_TRACKING_URI})")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default outputs/reports/<sweep id or experiment>)")
    thr = p.add_mutually_exclusive_group()
    thr.add_argument("--loss-threshold", type=float, default=None, metavar="LOSS",
                     help="absolute train-loss threshold for epochs-to-threshold")
    thr.add_argument("--loss-fraction", type=float, default=DEFAULT_LOSS_FRACTION, metavar="F",
                     help="threshold = F x median initial train loss of the runs "
                          "(default %(default)s)")
    p.add_argument("--alpha", type=float, default=ALPHA,
                   help="significance level for the claims' yes/no (default %(default)s)")
    p.add_argument("--ignore-param", action="append", default=[], metavar="KEY",
                   help="param never treated as a factor (repeatable)")
    p.add_argument("--no-log", action="store_true",
                   help="do not log the report as artifacts of the parent run")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri)
    try:
        check_store(uri)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        with _tracking(uri):
            client = MlflowClient(tracking_uri=uri)
            try:
                if args.sweep is not None:
                    name, runs = load_sweep_runs(client, args.experiment_name, args.sweep)
                else:
                    name = args.experiment
                    runs = load_experiment_runs(client, args.experiment, args.filter)
            except MlflowException as e:
                raise ReportError(f"cannot read runs from {uri}: {_one_line(e)}") from e
            except ReportError:
                raise
            except Exception as e:  # connection errors, broken store, ...
                raise ReportError(f"tracking store unreachable ({uri}): {_one_line(e)}") from e
            out = Path(args.out) if args.out else Path("outputs") / "reports" / _safe_name(name)
            report = build_report(runs, out, client, loss_threshold=args.loss_threshold,
                                  loss_fraction=args.loss_fraction,
                                  ignore_params=args.ignore_param,
                                  log_artifacts=args.sweep is not None and not args.no_log,
                                  alpha=args.alpha)
    except ReportError as e:
        print(f"shallownet-report: error: {e}", file=sys.stderr)
        return 2
    print(summary_text(report))
    if report.logged_artifacts:
        print(f"logged {len(report.logged_artifacts)} files to run {report.parent_run_id} "
              "under report/")
    print(f"report: {report.files['report_md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
