"""Decide with as few seeds as needed: a sweep that adds seeds in rounds.

``hparams_search=adaptive`` (conf/hparams_search/adaptive.yaml) runs the study's grid with
seeds 0..min_seeds-1, then, after every round, evaluates the named comparisons on every run
of the sweep so far with the report's statistics (``report.stats.evaluate_comparisons``:
mean paired difference, Bonferroni-level CI consistent with Holm over the named family). It
stops when every comparison is decided (its adjusted CI excludes 0, or is narrower than
``target_width``) or ``max_seeds`` is reached; otherwise it adds ``step`` seeds and goes on.
Each round and the stopping rule are recorded in the sweep's parent run (params
``adaptive.*``, metrics at step = round, tag ``adaptive.stop_reason``), and the report says
why it stopped. Rounds are ordinary jobs of the sweep: running the command again resumes it
(finished seeds are skipped) and reaches the same decision from the same runs.

A comparison is written ``factor:level_a:level_b:metric``, e.g.
``activation.name:relu:tanh:epochs_to_threshold`` (metrics: final_test_accuracy,
final_test_loss, final_train_loss, epochs_to_threshold).
"""

import tempfile
from dataclasses import dataclass

TAG_STOP = "adaptive.stop_reason"


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

    def params(self):
        return {
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
    from . import tracking
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


def judge(rule, runs, factors):
    """The named comparisons evaluated on ``runs`` (a DataFrame row each) and whether all are
    decided."""
    from .report.stats import evaluate_comparisons

    res = evaluate_comparisons(
        runs, rule.comparisons(), factors, alpha=rule.alpha, target_width=rule.target_width
    )
    return res, bool(len(res)) and bool(res["decided"].all())


def after_round(session, rule, round_no, seeds):
    """Evaluate the sweep after a round, record the round in its parent; True to stop."""
    from . import tracking

    with tempfile.TemporaryDirectory() as tmp:
        runs, factors = study_runs(session.client, session.experiment, session.sweep_id, seeds, tmp)
    res, decided = judge(rule, runs, factors)
    metrics = {"adaptive.round": round_no, "adaptive.seeds": seeds}
    for _, r in res.iterrows():
        key = f"adaptive.{r['name'].replace(':', '.')}"
        metrics.update(
            {
                f"{key}.mean_diff": r["mean_diff"],
                f"{key}.adj_ci_low": r["adj_ci_low"],
                f"{key}.adj_ci_high": r["adj_ci_high"],
                f"{key}.decided": float(r["decided"]),
            }
        )
    tracking.log_round(session.client, session.parent, metrics, step=round_no)
    stop = decided or seeds >= rule.max_seeds
    if stop:
        reason = (
            f"decided after round {round_no} ({seeds} seeds): "
            + "; ".join(f"{r['name']}: {r['decided_by']}" for _, r in res.iterrows())
            if decided
            else f"max_seeds={rule.max_seeds} reached after round {round_no}, undecided: "
            + "; ".join(r["name"] for _, r in res.iterrows() if not r["decided"])
        )
        tracking.set_tags(session.client, session.parent, {TAG_STOP: reason})
        from .train import emit

        emit(f"shallownet: adaptive seeds: {reason}")
    return stop
