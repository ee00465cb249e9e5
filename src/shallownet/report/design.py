"""The design of a study, worked out before anything is estimated: which runs are replicates,
the factors, the cells (combinations of levels) present, the replicates per cell, and the
largest complete crossed part of the design with at least MIN_REPLICATES per cell.

A replicate is one distinct (config, seed). A reproduction (tag ``reproduces``) recomputes
its original bit for bit, and a second run with the same ``run_key`` (config + data + code)
recomputes the first: neither is new evidence, so each group of such runs keeps one run, the
first FINISHED one in start order (else its first run), and the others are set aside.

A model over the factors (factorial.py) extrapolates into empty cells and rests an
interaction on a single run where the design is not complete: the report models only a
complete crossed design with MIN_REPLICATES per cell, and otherwise names the cells that
stop it (``Design.note``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from ..record import tracking
from .fmt import is_missing
from .runs import short_name, sort_levels

MIN_REPLICATES = 2  # a cell's variance needs two runs; one run is no replicate of anything
MAX_SEARCH = 50_000  # level subsets tried exhaustively for the crossed part; beyond: greedy


def _tag(frame: pd.DataFrame, key: str) -> list:
    col = frame.get("tags." + key)
    if col is None:
        return [None] * len(frame)
    return [None if is_missing(v) else str(v) for v in col]


def set_aside_repeats(children: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Child rows of a runs frame -> (the rows that are replicates, the rows set aside with
    columns run_id, kept (the run it repeats), reason). A reproduction joins the group of its
    original (or, when the original is not in the frame, of its own run_key)."""
    if children.empty:
        return children, pd.DataFrame(columns=["run_id", "kept", "reason"])
    order = children.sort_values([c for c in ("start_time", "run_id") if c in children], kind="mergesort")
    ids = [str(r) for r in order["run_id"]]
    key_of = dict(zip(ids, _tag(order, tracking.TAG_RUN_KEY)))
    original = dict(zip(ids, _tag(order, tracking.TAG_REPRODUCES)))
    status = dict(zip(ids, order["status"].astype(str) if "status" in order else ["FINISHED"] * len(ids)))

    def group(rid):
        seen = set()
        while original.get(rid) in key_of and rid not in seen:  # a reproduction of a reproduction
            seen.add(rid)
            rid = original[rid]
        return key_of[rid] or rid

    groups = {}
    for rid in ids:
        groups.setdefault(group(rid), []).append(rid)
    keep, aside = set(), []
    for members in groups.values():
        finished = [r for r in members if status[r] == "FINISHED"]
        kept = (finished or members)[0]
        keep.add(kept)
        for r in members:
            if r != kept:
                why = (
                    f"reproduction of {original[r]}"
                    if original[r]
                    else f"same run_key as {kept} (the same config, seed, data and code)"
                )
                aside.append({"run_id": r, "kept": kept, "reason": why})
    kept_rows = children[children["run_id"].astype(str).isin(keep)]
    return kept_rows, pd.DataFrame(aside, columns=["run_id", "kept", "reason"])


@dataclass(frozen=True)
class Design:
    """What a study was given. ``replicates``: {cell (tuple of levels in factor order): the
    distinct seeds of its finished runs}; ``crossed``: {factor: levels} of the largest
    complete crossed part (empty when no cell has MIN_REPLICATES); ``set_aside``: the frame
    of set_aside_repeats."""

    factors: tuple
    levels: dict
    replicates: dict
    crossed: dict
    seeds_crossed: bool  # every cell has the same seeds (a seed block term is estimable)
    set_aside: pd.DataFrame

    @property
    def cells(self) -> list:
        """Every combination of the factors' levels, in level order."""
        return list(itertools.product(*(self.levels[f] for f in self.factors)))

    def empty_cells(self) -> list:
        return [c for c in self.cells if self.replicates.get(c, 0) == 0]

    def single_cells(self) -> list:
        return [c for c in self.cells if 0 < self.replicates.get(c, 0) < MIN_REPLICATES]

    @property
    def complete(self) -> bool:
        """A complete crossed design with MIN_REPLICATES per cell: the factorial model and
        its marginal means are supported by the data."""
        return not self.empty_cells() and not self.single_cells()

    def cell_label(self, cell) -> str:
        return ", ".join(f"{short_name(f)}={lv}" for f, lv in zip(self.factors, cell))

    def crossed_label(self) -> str:
        return " x ".join(f"{short_name(f)} in {{{', '.join(self.crossed[f])}}}" for f in self.factors)

    def crossed_runs(self) -> int:
        cells = itertools.product(*(self.crossed[f] for f in self.factors)) if self.crossed else []
        return sum(self.replicates.get(c, 0) for c in cells)

    def note(self) -> str:
        """Why the study is not modelled ('' when it is)."""
        if self.complete:
            return ""
        parts = []
        if self.empty_cells():
            parts.append("no finished run in " + "; ".join(map(self.cell_label, self.empty_cells())))
        if self.single_cells():
            parts.append("a single run in " + "; ".join(map(self.cell_label, self.single_cells())))
        text = (
            f"the design is not complete with {MIN_REPLICATES} runs per cell ("
            + "; ".join(parts)
            + "), so a model would extrapolate into those cells: the levels get the observed "
            "means of their runs"
        )
        if self.crossed:
            text += (
                f"; the largest complete crossed part is {self.crossed_label()} ({self.crossed_runs()} runs)"
            )
            if sum(len(v) > 1 for v in self.crossed.values()) >= 2:
                text += ": report those runs alone (--filter) to model them"

        return text

    def flags(self) -> list:
        """Study-check flags [{"kind", "text"}]: a design the factorial model cannot use."""
        if len(self.factors) < 2 or self.complete:
            return []
        n_empty, n_single = len(self.empty_cells()), len(self.single_cells())
        return [
            {
                "kind": "incomplete design",
                "text": f"{n_empty} empty and {n_single} single-run cell(s): no factorial model, "
                "no marginal means, no interaction; the levels get observed means (see Design).",
            }
        ]

    def lines(self) -> list:
        """The report's sentences on the design: cells, replicates, what was set aside."""
        reps = [self.replicates.get(c, 0) for c in self.cells]
        out = [
            f"{len(self.cells)} cells ({' x '.join(str(len(self.levels[f])) for f in self.factors)} levels), "
            f"{sum(r > 0 for r in reps)} with a finished run; replicates (distinct seeds) per cell: "
            f"{min(reps, default=0)} to {max(reps, default=0)}."
        ]
        if len(self.factors) >= 2:
            out.append(
                "Complete crossed design with at least "
                f"{MIN_REPLICATES} runs per cell: the factorial model applies."
                if self.complete
                else "Not modelled: " + self.note() + "."
            )
        elif self.single_cells():
            out.append(
                "A single run (no CI) in " + "; ".join(map(self.cell_label, self.single_cells())) + "."
            )
        n = len(self.set_aside)
        if n:
            n_rep = int(self.set_aside["reason"].str.startswith("reproduction").sum())
            out.append(
                f"Set aside {n} run(s) that are no new replicate: {n_rep} reproduction(s) "
                f"(tag `reproduces`) and {n - n_rep} repeat(s) of a run with the same `run_key`; "
                "each group keeps its first finished run."
            )
        return out


def work_out(runs: pd.DataFrame, factors, set_aside: pd.DataFrame | None = None) -> Design:
    """The Design of a run table (runs.tidy_runs; one row per replicate candidate)."""
    factors = tuple(factors)
    levels = {f: tuple(sort_levels(runs[f])) for f in factors}
    fin = runs[runs["state"] == "finished"]
    seeds = {}
    for _, r in fin.iterrows():
        seeds.setdefault(tuple(r[f] for f in factors), set()).add(r["seed"])
    replicates = {c: len(s) for c, s in seeds.items()}
    seed_sets = {frozenset(s) for s in seeds.values()}
    return Design(
        factors,
        levels,
        replicates,
        largest_crossed_part(factors, levels, replicates),
        len(seed_sets) <= 1,
        set_aside if set_aside is not None else pd.DataFrame(columns=["run_id", "kept", "reason"]),
    )


def _subsets(levels):
    """Non-empty subsets of ``levels``, larger first."""
    for k in range(len(levels), 0, -1):
        yield from itertools.combinations(levels, k)


def _score(part, replicates):
    """(runs covered, factors varying, cells) of a complete part, None when incomplete."""
    cells = list(itertools.product(*part))
    reps = [replicates.get(c, 0) for c in cells]
    if min(reps) < MIN_REPLICATES:
        return None
    return (sum(reps), sum(len(p) > 1 for p in part), len(cells))


def largest_crossed_part(factors, levels, replicates) -> dict:
    """{factor: levels} of the complete crossed part (every combination of the kept levels
    with MIN_REPLICATES) covering the most runs (ties: more factors varying, more cells,
    then level order); exhaustive over level subsets up to MAX_SEARCH, else greedy."""
    if not factors:
        return {}
    n = 1
    for f in factors:
        n *= 2 ** len(levels[f]) - 1
    if n <= MAX_SEARCH:
        best, best_score = None, None
        for part in itertools.product(*(list(_subsets(levels[f])) for f in factors)):
            sc = _score(part, replicates)
            if sc is not None and (best_score is None or sc > best_score):
                best, best_score = part, sc
        return {} if best is None else dict(zip(factors, best))
    return _greedy_part(factors, levels, replicates)


def _greedy_part(factors, levels, replicates) -> dict:
    """Drop, one at a time, the level whose removal covers the most under-replicated cells."""
    part = {f: list(levels[f]) for f in factors}
    while True:
        cells = list(itertools.product(*(part[f] for f in factors)))
        weak = [c for c in cells if replicates.get(c, 0) < MIN_REPLICATES]
        if not weak:
            return {f: tuple(v) for f, v in part.items()}
        options = [(f, lv) for i, f in enumerate(factors) if len(part[f]) > 1 for lv in part[f]]
        if not options:
            return {}
        f, lv = max(
            options,
            key=lambda o: sum(c[factors.index(o[0])] == o[1] for c in weak),
        )
        part[f].remove(lv)
