"""Study checks: what makes a study unable to answer its question -- arms that are the same
computation, a metric without variance or at its ceiling, a learning-rate schedule that
never acted or acted in only some runs of its arm, a threshold that half an arm never reaches
(or every run reaches in its first epochs), too few seeds. Each check
gives a flag the report prints (instead of a table of n/a)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import median_abs_deviation

from .fmt import num
from .runs import COMPARE_METRICS, ETT, METRIC_LABELS, SUMMARY_METRICS, horizon, sort_levels, value_column

CURVE_COLUMNS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr")


def _same_curve(c1, c2) -> bool:
    if c1 is None or c2 is None or len(c1) != len(c2):
        return False
    for col in CURVE_COLUMNS:
        if (col in c1) != (col in c2):
            return False
        if col in c1 and not np.array_equal(c1[col].to_numpy(), c2[col].to_numpy(), equal_nan=True):
            return False
    return True


def identical_arms(runs, factors, curves) -> list:
    """[(factor, a, b, n_pairs)] for the level pairs whose matched finished runs (same other
    factors, same seed) have identical curves, every one of them (or, without curves,
    identical summary metrics)."""
    out = []
    fin = runs[runs["state"] == "finished"]
    for f in factors:
        keys = [g for g in factors if g != f] + ["seed"]
        levels = sort_levels(fin[f])
        by_key = {
            lv: {tuple(r[k] for k in keys): r for _, r in fin[fin[f] == lv].iterrows()} for lv in levels
        }
        for i, a in enumerate(levels):
            for b in levels[i + 1 :]:
                common = sorted(set(by_key[a]) & set(by_key[b]))
                if not common:
                    continue
                same = True
                for k in common:
                    ra, rb = by_key[a][k], by_key[b][k]
                    ca, cb = curves.get(ra["run_id"]), curves.get(rb["run_id"])
                    if ca is not None and cb is not None:
                        same = _same_curve(ca, cb)
                    else:
                        same = all(
                            ra[m] == rb[m] or (pd.isna(ra[m]) and pd.isna(rb[m])) for m in SUMMARY_METRICS
                        )
                    if not same:
                        break
                if same:
                    out.append((f, a, b, len(common)))
    return out


def _schedule_factor(factors):
    return next((f for f in factors if f.startswith("lr_schedule.") and f.endswith("name")), None)


EARLY = 0.05  # "within the first epochs": every run reaches the threshold by 5% of tau


def _arms(fin, factors):
    """[(label, runs)] of every level of every factor (the whole set without a factor)."""
    if not factors:
        return [("all runs", fin)]
    return [(f"`{f}` = {lv}", fin[fin[f] == lv]) for f in factors for lv in sort_levels(fin[f])]


def fragile_arms(fin, factors, threshold) -> list:
    """[(factor, level, median, spread)] of the arms whose final train losses straddle the loss
    threshold within their own spread: |threshold - median| < 1.4826 x MAD (the median absolute
    deviation scaled to a normal sd; robust to one run stuck far away). Whether a run of such an
    arm reaches the threshold is its seed's noise, so its reach rate decides nothing."""
    if threshold is None or not np.isfinite(threshold) or "final_train_loss" not in fin:
        return []
    out = []
    for f in factors or [None]:
        for lv in sort_levels(fin[f]) if f else ["all"]:
            final = (fin[fin[f] == lv] if f else fin)["final_train_loss"].astype(float).dropna()
            if len(final) < 2:
                continue
            median, spread = float(final.median()), float(median_abs_deviation(final, scale="normal"))
            if abs(threshold - median) < spread:
                out.append((f, lv, median, spread))
    return out


def threshold_checks(fin, factors, threshold=None) -> list:
    """Flags of a loss threshold that cannot separate the arms: nobody reaches it, an arm
    reaches it in under half of its runs (its epochs to threshold are mostly the censoring
    horizon), an arm's final train loss straddles it within the runs' own spread (fragile), or
    every run reaches it within the first EARLY x tau epochs (or all at once)."""
    st = fin["ett_status"]
    measured = fin[st != "no curve"]
    if not len(measured):
        return []
    reached = measured["ett_status"] == "reached"
    if not reached.any():
        return [
            {
                "kind": "threshold",
                "text": "No finished run reaches the loss threshold: epochs to threshold are all censored.",
            }
        ]
    flags = []
    few = []
    for label, sub in _arms(measured, factors):
        k = int((sub["ett_status"] == "reached").sum())
        if len(sub) and 2 * k < len(sub):
            few.append(f"{label} {k} of {len(sub)}")
    if few:
        flags.append(
            {
                "kind": "uninformative threshold",
                "text": (
                    "The loss threshold is reached by under half of the runs of an arm ("
                    + ", ".join(few)
                    + "): its epochs to threshold are mostly the censoring horizon, so they "
                    "measure where the threshold sits, not the speed (pick another --loss-fraction "
                    "or --loss-threshold)."
                ),
            }
        )
    fragile = fragile_arms(measured, factors, threshold)
    if fragile:
        flags.append(
            {
                "kind": "fragile threshold",
                "arms": [(f, str(lv)) for f, lv, _, _ in fragile],
                "text": (
                    f"The loss threshold ({num(threshold)}) lies within the runs' own spread of the "
                    "final train loss of "
                    + ", ".join(
                        (f"`{f}` = {lv}" if f else "the runs") + f" (median {num(m)}, spread {num(sd)})"
                        for f, lv, m, sd in fragile
                    )
                    + ": whether a run of it reaches the threshold is its seed's noise, so its reach "
                    "rate (marked fragile) decides nothing (pick another --loss-fraction or "
                    "--loss-threshold)."
                ),
            }
        )
    tau = horizon(fin)
    ett = measured[ETT]
    if reached.all() and (ett == ett.min()).all():
        flags.append(
            {
                "kind": "threshold",
                "text": (
                    f"Every finished run reaches the loss threshold at epoch {num(ett.min())}: "
                    "epochs to threshold cannot separate the levels (pick another --loss-fraction)."
                ),
            }
        )
    elif reached.all() and np.isfinite(tau) and ett.max() <= EARLY * tau:
        flags.append(
            {
                "kind": "uninformative threshold",
                "text": (
                    f"Every finished run reaches the loss threshold by epoch {num(ett.max())}, within "
                    f"the first {num(100 * EARLY)}% of the {num(tau)} epochs: epochs to threshold "
                    "measure the first steps only (pick a lower --loss-fraction)."
                ),
            }
        )
    return flags


def study_checks(runs, factors, curves, children_schedule=None, threshold=None) -> list:
    """Flags [{"kind", "text"}] for the study in ``runs`` (finished runs judged).
    ``children_schedule`` is the constant lr_schedule.name of the runs, if any; ``threshold``
    the loss threshold of epochs to threshold."""
    flags = []
    fin = runs[runs["state"] == "finished"]
    if not factors:
        flags.append(
            {
                "kind": "no factor",
                "text": "No parameter varies across the runs but "
                "the seed: there is nothing to compare, only one group to describe.",
            }
        )
    sched = _schedule_factor(factors)
    for f, a, b, k in identical_arms(runs, factors, curves):
        text = (
            f"`{f}` = {a} and {b} are the same computation: in each of the {k} matched "
            "pairs (same other factors and seed) the two runs have identical curves "
            "(train and test loss and accuracy, lr at every epoch). Comparing them tests "
            "nothing."
        )
        flags.append({"kind": "identical arms", "text": text, "factor": f, "a": a, "b": b})
    if "lr_decays" in fin:
        levels = (
            [(sched, lv) for lv in sort_levels(fin[sched])]
            if sched
            else [(None, children_schedule)]
            if children_schedule
            else []
        )
        for f, lv in levels:
            if lv in (None, "constant"):
                continue
            sub = fin if f is None else fin[fin[f] == lv]
            dec = sub["lr_decays"].dropna()
            if len(dec) and (dec == 0).any() and not (dec == 0).all():
                flags.append(
                    {
                        "kind": "schedule acted in some runs only",
                        "text": (
                            f"The {lv} schedule lowered the learning rate in {int((dec > 0).sum())} of "
                            f"its {len(dec)} finished runs only ({int((dec == 0).sum())} ran at a "
                            "constant rate): its arm mixes two treatments."
                        ),
                    }
                )
            if len(dec) and (dec == 0).all():
                flags.append(
                    {
                        "kind": "schedule never acted",
                        "text": (
                            f"The {lv} schedule never lowered the learning rate: 0 decays in each of "
                            f"its {len(dec)} finished runs, so it ran as a constant rate."
                        ),
                    }
                )
    for m in COMPARE_METRICS:
        v = fin[value_column(m)].astype(float)
        v = v[np.isfinite(v)]
        if m == ETT:
            continue
        if len(v) >= 2 and v.nunique() == 1 and not (m == "final_test_accuracy" and v.iloc[0] >= 1.0):
            flags.append(
                {
                    "kind": "zero variance",
                    "text": (
                        f"{METRIC_LABELS[m]} is {num(v.iloc[0])} in every one of the {len(v)} "
                        "finished runs: no comparison on it can show a difference."
                    ),
                }
            )
    acc = fin["final_test_accuracy"].astype(float)
    top = int((acc >= 1.0).sum())
    if 0 < top < len(acc) and top * 2 >= len(acc):
        flags.append(
            {
                "kind": "saturated",
                "text": (
                    f"{top} of {len(acc)} finished runs reach test accuracy 1 (the ceiling): "
                    "accuracy differences are cut off at the top; compare losses instead."
                ),
            }
        )
    elif top and top == len(acc):
        flags.append(
            {
                "kind": "saturated",
                "text": (
                    "Every finished run reaches test accuracy 1 (the ceiling): accuracy cannot "
                    "separate the levels."
                ),
            }
        )
    flags += threshold_checks(fin, factors, threshold)
    seeds = fin["seed"].nunique()
    if factors and 0 < seeds < 3:
        flags.append(
            {
                "kind": "few seeds",
                "text": (
                    f"{seeds} seed(s): a CI over the seeds of one setting has {max(seeds - 1, 0)} "
                    "df (t(0.975, 1) = 12.71), so per-setting bands are wide; paired comparisons "
                    "pool the matched settings of the other factors and have more pairs."
                ),
            }
        )
    return flags


def flagged_levels(flags, factor):
    """{(a, b)} of the identical-arms flags of ``factor``."""
    return {(fl["a"], fl["b"]) for fl in flags if fl["kind"] == "identical arms" and fl["factor"] == factor}
