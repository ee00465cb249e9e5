"""The study's order of each factor's levels: the order its experiment file sweeps them
(``shallownet.sweep.study``), else the order the
runs started in; levels neither names come last, in runs.sort_levels order."""

from __future__ import annotations

import pandas as pd

from ..sweep.study import swept_values
from .runs import ordered_levels, sort_levels


def _start_order(runs: pd.DataFrame, factor: str) -> list:
    if "start_time" not in runs:
        return []
    first = runs.groupby(factor)["start_time"].min()
    return [str(lv) for lv, _ in sorted(first.items(), key=lambda kv: (kv[1], str(kv[0])))]


def study_order(runs: pd.DataFrame, factors, study: str | None, children: pd.DataFrame | None = None) -> dict:
    """{factor: [level, ...]} in the study's order. A factor ``g.name`` is swept as ``g``."""
    swept = swept_values(study)
    starts = children if children is not None else runs
    out = {}
    for f in factors:
        levels = sort_levels(runs[f])
        key = f if f in swept else f.removesuffix(".name") if f.removesuffix(".name") in swept else None
        known = swept[key] if key else []
        if not any(lv in levels for lv in known):
            known = _start_order(_with_levels(starts, runs, f), f)
        out[f] = ordered_levels(levels, known)
    return out


def rows_in_order(frame: pd.DataFrame, order: dict) -> pd.DataFrame:
    """The rows of a summary frame (columns factor, level), factor by factor in ``order``'s
    order, each factor's levels in its order (order.study_order's dict); rows it does not
    name last, as they come."""
    pos = {(f, lv): (i, j) for i, f in enumerate(order) for j, lv in enumerate(order[f])}
    keys = [pos.get((f, lv), (len(pos), 0)) for f, lv in zip(frame["factor"], frame["level"])]
    return frame.iloc[sorted(range(len(frame)), key=lambda i: keys[i])]


def _with_levels(children, runs, factor):
    """A frame of (factor level, start_time) per run, from the run table's levels."""
    if "start_time" in runs:
        return runs
    if children is None or "start_time" not in children or "run_id" not in children:
        return runs
    starts = children.set_index("run_id")["start_time"]
    return pd.DataFrame(
        {factor: runs[factor].to_numpy(), "start_time": runs["run_id"].map(starts).to_numpy()}
    )
