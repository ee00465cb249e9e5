"""The run table: a search_runs frame -> one tidy row per child run (state, seed, factor
levels, summary metrics), plus what the report measures on each run's curves.parquet
(epochs to the loss threshold, censored; the number of learning-rate decays)."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..record import tracking
from .fmt import is_missing, num

IGNORED_PREFIXES = ("tracking.", "hydra.", "sweep.")
REPLICATE_PARAMS = ("seed",)
UNSET = "(unset)"
ALL_FACTOR = "(all runs)"

ETT = "epochs_to_threshold"  # first epoch at which train_loss <= threshold (NaN: not reached)
ETT_R = "epochs_to_threshold_restricted"  # min(ETT, horizon): not reached counts the horizon
SUMMARY_METRICS = ("final_test_accuracy", "final_test_loss", "final_train_loss")
COMPARE_METRICS = SUMMARY_METRICS + (ETT,)
METRIC_LABELS = {
    "final_test_accuracy": "final test accuracy",
    "final_test_loss": "final test loss",
    "final_train_loss": "final train loss",
    ETT: "epochs to threshold",
}
SHORT_LABELS = {
    "final_test_accuracy": "test acc",
    "final_test_loss": "test loss",
    "final_train_loss": "train loss",
    ETT: "epochs to thr.",
}
BETTER = {
    "final_test_accuracy": "higher",
    "final_test_loss": "lower",
    "final_train_loss": "lower",
    ETT: "lower",
}
CURVE_BETTER = {"train_loss": "lower", "test_loss": "lower", "test_accuracy": "higher"}  # lr: neither
ARROW = {"higher": "↑", "lower": "↓"}
BOUNDS = {
    "final_test_accuracy": (0.0, 1.0),  # a CI stays in the metric's range (stats.bounded_interval)
    "final_test_loss": (0.0, float("inf")),
    "final_train_loss": (0.0, float("inf")),
}
JOB_METRICS = ("jobs_total", "jobs_finished", "jobs_failed", "jobs_diverged", "jobs_skipped")


def horizon(runs) -> float:
    """The restriction tau of epochs to threshold: the fewest epochs a finished run with a
    curve trained (NaN when there is none)."""
    if "epochs_trained" not in runs:
        return math.nan
    ok = (runs["state"] == "finished") & (runs["ett_status"] != "no curve")
    return float(runs.loc[ok, "epochs_trained"].min()) if ok.any() else math.nan


def bounds(runs, metric):
    """The range a CI of ``metric`` stays in (stats.bounded_interval; None: unbounded)."""
    if metric == ETT:
        tau = horizon(runs)
        return None if math.isnan(tau) else (0.0, tau)
    return BOUNDS.get(metric)


def value_column(metric: str) -> str:
    """The run-table column a comparison of ``metric`` uses (ETT: the restricted value)."""
    return ETT_R if metric == ETT else metric


# --------------------------------------------------------------------------------------
# levels


def level_str(v) -> str:
    return UNSET if is_missing(v) else str(v)


def level_key(s: str):
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
    return sorted({str(x) for x in levels}, key=level_key)


def ordered_levels(values, order=None) -> list:
    """The distinct levels of ``values`` (as str): those ``order`` names first, in its order
    (order.study_order's list of a factor), the others after them in sort_levels order."""
    levels = sort_levels(values)
    first = [lv for lv in order or () if lv in levels]
    return first + [lv for lv in levels if lv not in first]


def better(metric: str) -> str | None:
    """'higher' or 'lower': which way ``metric`` (a summary metric or a curve column) is
    better; None for one that has no better direction (the learning rate)."""
    return BETTER.get(metric) or CURVE_BETTER.get(metric)


def marked(label: str, metric: str) -> str:
    """``label`` with the arrow of the direction in which ``metric`` is better, if any."""
    b = better(metric)
    return f"{label} {ARROW[b]}" if b else label


def directed(metric: str, short: bool = True) -> str:
    """'test acc ↑' / 'final test loss ↓': the metric with the direction that is better."""
    return marked((SHORT_LABELS if short else METRIC_LABELS)[metric], metric)


def arrow_key(metrics) -> str:
    """'↑ higher is better, ↓ lower is better': what the arrows of ``metrics`` mean."""
    found = {better(m) for m in metrics}
    ways = [b for b in ("higher", "lower") if b in found]
    return ", ".join(f"{ARROW[b]} {b} is better" for b in ways)


def direction_words(metric: str) -> str:
    """'final test accuracy (higher is better)'."""
    return f"{METRIC_LABELS[metric]} ({BETTER[metric]} is better)"


def short_name(factor: str) -> str:
    """'model.hidden_sizes' -> 'hidden_sizes', 'activation.name' -> 'activation'."""
    parts = factor.split(".")
    return parts[0] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def setting_label(row, factors) -> str:
    """'activation=relu, lr=0.5' for the given factors of a run-table row."""
    return ", ".join(f"{short_name(f)}={row[f]}" for f in factors)


# --------------------------------------------------------------------------------------
# runs -> tidy table


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([np.nan] * len(df), index=df.index, dtype=object)


def split_parent(runs_df: pd.DataFrame):
    """(parent rows, child rows) of a runs frame, by the role tag."""
    role = _col(runs_df, f"tags.{tracking.TAG_ROLE}").map(lambda v: None if is_missing(v) else str(v))
    return runs_df[role == "parent"], runs_df[role != "parent"]


def find_factors(children: pd.DataFrame, ignore=()) -> tuple[list, dict]:
    """Params that vary across the child runs -> (factors, {alias: factor it is aliased to})."""
    cand = {}
    for col in sorted(c for c in children.columns if c.startswith("params.")):
        key = col[len("params.") :]
        if key in REPLICATE_PARAMS or key in ignore or key.startswith(IGNORED_PREFIXES):
            continue
        vals = children[col].map(level_str)
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
    """[(key, value)] of the params with one value over all child runs."""
    out = []
    for col in sorted(c for c in children.columns if c.startswith("params.")):
        key = col[len("params.") :]
        if key in factors or key in aliases or key in REPLICATE_PARAMS:
            continue
        if key.startswith(IGNORED_PREFIXES):
            continue
        vals = children[col].map(level_str).unique()
        if len(vals) == 1:
            out.append((key, vals[0]))
    return out


def constant_value(children: pd.DataFrame, key: str):
    """The one value of param ``key`` over the child runs, or None."""
    col = "params." + key
    if col not in children:
        return None
    vals = children[col].map(level_str).unique()
    return vals[0] if len(vals) == 1 else None


def _state(status, diverged) -> str:
    if status == "FINISHED":
        return "finished"
    if status in ("FAILED", "KILLED"):
        return "diverged" if diverged else "failed"
    return "unfinished"


def tidy_runs(children: pd.DataFrame, factors) -> pd.DataFrame:
    """One row per child run, sorted by factor levels, seed and run id."""

    def tag(name):
        return _col(children, f"tags.{name}").map(lambda v: "" if is_missing(v) else str(v)).to_numpy()

    t = pd.DataFrame({"run_id": children["run_id"].astype(str).to_numpy()})
    t["status"] = _col(children, "status").astype(str).to_numpy()
    t["diverged_at_epoch"] = tag(tracking.TAG_DIVERGED)
    t["failure_reason"] = tag(tracking.TAG_FAILURE)
    t["overrides"] = tag("overrides")
    t["sweep_id"] = tag(tracking.TAG_SWEEP)
    t["state"] = [_state(s, d) for s, d in zip(t["status"], t["diverged_at_epoch"])]
    t["seed"] = _col(children, "params.seed").map(level_str).to_numpy()
    for f in factors:
        t[f] = children["params." + f].map(level_str).to_numpy() if f != ALL_FACTOR else "all"
    for m in SUMMARY_METRICS + ("test_auc", "epochs_completed"):
        v = pd.to_numeric(_col(children, "metrics." + m), errors="coerce").to_numpy(dtype=np.float64)
        # MLflow stores +-inf as +-float max: give the infinities back
        t[m] = np.where(np.abs(v) >= np.finfo(np.float64).max, np.copysign(np.inf, v), v)
    keys = [
        tuple(level_key(r[f]) for f in factors) + (level_key(r["seed"]), r["run_id"]) for _, r in t.iterrows()
    ]
    order = sorted(range(len(t)), key=lambda i: keys[i])
    return t.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# curves


def load_curves(client, run_ids, dst: Path) -> dict:
    """{run_id: curves DataFrame sorted by epoch, or None} from each run's curves.parquet. A
    file that is not a table of numbers with ``epoch`` and ``train_loss`` (damaged, edited)
    sets its run's curves aside (None), with a note on stderr."""
    out = {}
    for rid in run_ids:
        p = tracking.download_artifact(client, rid, "curves.parquet", dst)
        df, why = (None, None) if p is None else _read_curves(p)
        if why:
            print(f"shallownet-report: run {rid}: curves.parquet set aside ({why})", file=sys.stderr)
        out[rid] = df
    return out


def _read_curves(path):
    """(curves sorted by epoch, None) or (None, why they cannot be used)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    try:
        df = pd.read_parquet(path)
    except Exception as err:
        return None, f"unreadable: {type(err).__name__}"
    missing = [c for c in ("epoch", "train_loss") if c not in df]
    if missing:
        return None, f"no column {', '.join(missing)}"
    bad = [str(c) for c in df.columns if not is_numeric_dtype(df[c]) or is_bool_dtype(df[c])]
    if bad:
        return None, f"column {', '.join(bad)} holds values that are not numbers"
    return df.sort_values("epoch", kind="mergesort").reset_index(drop=True), None


def epochs_to_threshold(curve: pd.DataFrame | None, threshold: float):
    """First ``epoch`` with ``train_loss <= threshold`` (None: never; NaN losses never count)."""
    if curve is None or len(curve) == 0 or is_missing(threshold):
        return None
    loss = curve["train_loss"].to_numpy(dtype=np.float64)
    hit = np.flatnonzero(np.isfinite(loss) & (loss <= threshold))
    if hit.size == 0:
        return None
    return float(curve["epoch"].to_numpy()[hit[0]])


def initial_train_loss(curve: pd.DataFrame | None) -> float:
    if curve is None or len(curve) == 0:
        return math.nan
    return float(curve["train_loss"].iloc[0])


def lr_decays(curve: pd.DataFrame | None) -> float:
    """Epochs at which the learning rate is lower than at the epoch before (NaN: no lr)."""
    if curve is None or "lr" not in curve or len(curve) == 0:
        return math.nan
    lr = curve["lr"].to_numpy(dtype=np.float64)
    return float(np.count_nonzero(lr[1:] < lr[:-1]))


def lr_varies(curve: pd.DataFrame | None) -> bool:
    if curve is None or "lr" not in curve or len(curve) < 2:
        return False
    lr = curve["lr"].to_numpy(dtype=np.float64)
    return bool(np.any(lr != lr[0]))


def choose_threshold(runs, loss_threshold=None, loss_fraction=0.5):
    """(threshold, sentence saying how it was chosen): the absolute ``loss_threshold``, else
    ``loss_fraction`` x the median initial train loss of the runs."""
    if loss_threshold is not None:
        t = float(loss_threshold)
        return t, f"`--loss-threshold` = {num(t)} (absolute)"
    init = runs["initial_train_loss"].to_numpy(dtype=np.float64)
    init = init[np.isfinite(init)]
    med = float(np.median(init)) if init.size else math.nan
    t = loss_fraction * med
    return t, (f"{num(loss_fraction)} x the median initial training loss of the runs ({num(med)}) = {num(t)}")


def add_curve_measures(runs: pd.DataFrame, curves: dict, loss_threshold=None, loss_fraction=0.5):
    """Add initial_train_loss, ETT, ett_status (reached | not reached | no curve), the
    epochs trained, ETT_R, ett_reached (1: reached within the horizon) and lr_decays to
    ``runs``; returns (threshold, its sentence,
    horizon). The horizon is the fewest epochs a finished run with a curve trained: every
    such run is observed that long, so min(ETT, horizon) is known for all of them."""
    ids = list(runs["run_id"])
    runs["initial_train_loss"] = [initial_train_loss(curves[r]) for r in ids]
    threshold, text = choose_threshold(runs, loss_threshold, loss_fraction)
    ett, status = [], []
    for r in ids:
        e = epochs_to_threshold(curves[r], threshold)
        ett.append(math.nan if e is None else e)
        status.append("no curve" if curves[r] is None else ("not reached" if e is None else "reached"))
    runs[ETT] = ett
    runs["ett_status"] = status
    runs["epochs_trained"] = [math.nan if curves[r] is None else float(len(curves[r])) for r in ids]
    ok = (runs["state"] == "finished") & (runs["ett_status"] != "no curve")
    tau = horizon(runs)
    runs[ETT_R] = [
        math.nan if not k or math.isnan(tau) else (min(e, tau) if s == "reached" else tau)
        for k, e, s in zip(ok, runs[ETT], runs["ett_status"])
    ]
    runs["ett_reached"] = [math.nan if math.isnan(v) else float(v < tau) for v in runs[ETT_R]]
    runs["lr_decays"] = [lr_decays(curves[r]) for r in ids]
    return threshold, text, tau
