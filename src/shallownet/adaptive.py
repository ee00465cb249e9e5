"""Decide with as few seeds as needed: a sweep that adds seeds in rounds.

``hparams_search=adaptive`` (conf/hparams_search/adaptive.yaml) runs the study's grid with
seeds 0..min_seeds-1, then ``step`` more seeds per round up to ``max_seeds``. After every
round each named comparison is judged on the sweep's runs so far by an anytime-valid
sequential t-test (``shallownet.sequential``: the Gaussian-mixture e-process on the seeds'
paired differences), with Holm over the named family: a comparison is decided when its
e-value, at this round or an earlier one, reaches k/alpha for its Holm rank k (or when its
confidence sequence at alpha/m is narrower than ``target_width``). Its error rate holds over
all the rounds, however many: re-testing a fixed-alpha CI after each of the default rounds
(5, 8, ..., 29, 30 seeds) decides a difference in 19% of null studies, not 5%
(tests/test_adaptive_rule.py). The sweep stops when every comparison is decided
or ``max_seeds`` is reached. Each round and the stopping rule are recorded in the sweep's
parent run (params ``adaptive.*``, metrics at step = round, tag ``adaptive.stop_reason``), and
the report says why it stopped. Rounds are ordinary jobs of the sweep: running the command
again resumes it (finished seeds are skipped) and reaches the same decision from the same runs.

A comparison is written ``factor:level_a:level_b:metric``, e.g.
``activation.name:relu:tanh:epochs_to_threshold`` (metrics: final_test_accuracy,
final_test_loss, final_train_loss, epochs_to_threshold).
"""

import math
import tempfile
from dataclasses import dataclass

import numpy as np

from .console import emit

TAG_STOP = "adaptive.stop_reason"
METHOD = "anytime-valid sequential t-test (Gaussian-mixture e-process), Holm over the named comparisons"


def stops(diffs, looks, alpha):
    """The index into ``looks`` of the first look whose e-value of "mean difference 0" reaches
    1/alpha (a non-zero difference decided), or None. ``diffs``: the paired differences of one
    comparison in seed order (1-D); ``looks``: increasing counts of differences (seeds), each
    >= 2. P(not None) <= alpha when the mean difference is 0 (normal noise), for any looks."""
    from .sequential import e_values

    hits = np.flatnonzero(e_values(diffs, looks) >= 1 / alpha)
    return int(hits[0]) if len(hits) else None


@dataclass
class Rule:
    compare: list  # ["factor:a:b:metric", ...]
    min_seeds: int = 5
    step: int = 3
    max_seeds: int = 30
    target_width: float | None = None
    alpha: float = 0.05

    def comparisons(self):
        from .report.stats import Comparison

        out = []
        for text in self.compare:
            parts = str(text).split(":")
            if len(parts) != 4:
                raise ValueError(f"adaptive comparison {text!r}: write factor:level_a:level_b:metric")
            out.append(Comparison(*parts, name=str(text)))
        return out

    def rounds(self):
        """The seed counts after each round: min_seeds, + step, ..., max_seeds."""
        seeds = min(self.min_seeds, self.max_seeds)
        while True:
            yield seeds
            if seeds >= self.max_seeds:
                return
            seeds = min(seeds + max(self.step, 1), self.max_seeds)

    def params(self):
        return {
            "adaptive.method": METHOD,
            "adaptive.compare": ", ".join(map(str, self.compare)),
            "adaptive.min_seeds": self.min_seeds,
            "adaptive.step": self.step,
            "adaptive.max_seeds": self.max_seeds,
            "adaptive.target_width": self.target_width,
            "adaptive.alpha": self.alpha,
        }


def study_runs(client, experiment, sweep_id, seeds, tmp):
    """(tidy run table, factors) of the sweep's runs with seed < ``seeds``, as the report
    builds it (a resumed sweep has more: each round is judged on its own seeds)."""
    from .record import tracking
    from .report.runs import (
        ALL_FACTOR,
        add_curve_measures,
        find_factors,
        load_curves,
        split_parent,
        tidy_runs,
    )

    _, frame = tracking.load_sweep_runs(client, experiment, sweep_id)
    _, children = split_parent(frame)
    children = children[children["params.seed"].astype(int) < seeds]
    factors, _ = find_factors(children)
    runs = tidy_runs(children, factors or [ALL_FACTOR])
    add_curve_measures(runs, load_curves(client, list(runs["run_id"]), tmp))
    return runs, factors


def seed_diffs(runs, comparison, factors):
    """(seeds, diffs) of one comparison: the mean paired difference a - b of each seed (over
    the settings of the other factors matched within it), in seed order. 1-D arrays."""
    from .report.stats import matched_pairs

    c = comparison
    table, _ = matched_pairs(runs, c.factor, c.a, c.b, c.metric, factors, c.where)
    if table.empty:
        return np.array([], dtype=int), np.array([], dtype=np.float64)
    seeds = [int(k[-1] if isinstance(k, tuple) else k) for k in table.index]
    diff = (table[c.a].astype(float) - table[c.b].astype(float)).to_numpy()
    per_seed = {}
    for seed, d in zip(seeds, diff):
        per_seed.setdefault(seed, []).append(d)
    order = sorted(per_seed)
    return np.array(order, dtype=int), np.array([np.mean(per_seed[k]) for k in order])


def _looks(seeds, rounds):
    """Differences available after each round (seed < its seed count), at least 2, increasing."""
    return sorted({n for n in (int((seeds < r).sum()) for r in rounds) if n >= 2})


def judge(rule, runs, factors, rounds):
    """Each named comparison judged on ``runs`` after the rounds so far (``rounds``: their
    seed counts) -> (DataFrame, one row per comparison, and whether all are decided)."""
    import pandas as pd

    from .report.stats import holm
    from .sequential import confidence_sequence, e_values

    rows = []
    for c in rule.comparisons():
        seeds, diffs = seed_diffs(runs, c, factors)
        looks = _looks(seeds, rounds)
        e = float(e_values(diffs, looks).max()) if looks else math.nan
        rows.append(
            {
                "name": c.name,
                "n_seeds": looks[-1] if looks else len(diffs),
                "mean_diff": float(diffs.mean()) if len(diffs) else math.nan,
                "e_value": e,
                "p_anytime": min(1.0, 1 / e) if looks else math.nan,
                "_diffs": diffs,
                "_looks": looks,
            }
        )
    res = pd.DataFrame(rows)
    if res.empty:
        return res, False
    res["p_holm"] = holm(res["p_anytime"].to_numpy(dtype=np.float64))
    m = max(int(np.isfinite(res["p_anytime"]).sum()), 1)
    bounds = [
        confidence_sequence(r["_diffs"], r["_looks"], rule.alpha / m) if r["_looks"] else (math.nan,) * 2
        for _, r in res.iterrows()
    ]
    res["adj_ci_low"], res["adj_ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    res["decided_by"] = [_decided_by(r, rule) for _, r in res.iterrows()]
    res["decided"] = res["decided_by"] != ""
    res = res.drop(columns=["_diffs", "_looks"])
    return res, bool(res["decided"].all())


def _decided_by(r, rule):
    if np.isfinite(r["p_holm"]) and r["p_holm"] <= rule.alpha:
        return f"e-value {r['e_value']:.3g} after {r['n_seeds']} seeds, Holm p {r['p_holm']:.3g} <= {rule.alpha:g}"
    width = r["adj_ci_high"] - r["adj_ci_low"]
    if rule.target_width is not None and np.isfinite(width) and width < rule.target_width:
        return f"confidence sequence narrower than {rule.target_width:g}"
    return ""


def after_round(session, rule, round_no, seeds):
    """Evaluate the sweep after a round, record the round in its parent; True to stop."""
    from .record import tracking

    with tempfile.TemporaryDirectory() as tmp:
        runs, factors = study_runs(session.client, session.experiment, session.sweep_id, seeds, tmp)
    rounds = list(rule.rounds())[:round_no]
    res, decided = judge(rule, runs, factors, rounds)
    metrics = {"adaptive.round": round_no, "adaptive.seeds": seeds}
    for _, r in res.iterrows():
        key = f"adaptive.{r['name'].replace(':', '.')}"
        metrics.update(
            {
                f"{key}.mean_diff": r["mean_diff"],
                f"{key}.adj_ci_low": r["adj_ci_low"],
                f"{key}.adj_ci_high": r["adj_ci_high"],
                f"{key}.decided": float(r["decided"]),
                f"{key}.e_value": r["e_value"],
            }
        )
    tracking.log_round(session.client, session.parent, metrics, step=round_no)
    stop = decided or seeds >= rule.max_seeds
    if stop:
        reason = (
            f"decided after round {round_no} ({seeds} seeds) by the {METHOD}: "
            + "; ".join(f"{r['name']}: {r['decided_by']}" for _, r in res.iterrows())
            if decided
            else f"max_seeds={rule.max_seeds} reached after round {round_no}, undecided by the {METHOD}: "
            + "; ".join(r["name"] for _, r in res.iterrows() if not r["decided"])
        )
        tracking.set_tags(session.client, session.parent, {TAG_STOP: reason})
        emit(f"shallownet: adaptive seeds: {reason}")
    return stop
