"""The report knows its design before it estimates: reproductions and repeats of a run_key are
set aside, a factorial model only over a complete crossed design with two runs per cell,
every estimate inside what its data support (a bounded metric's CI on a scale that respects
the bounds), and every figure drawn whatever the set of runs."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli, runs_of
from scipy import stats
from scipy.special import expit, logit
from test_report import SweepWriter, loss_curve, new_store, params

from shallownet import reproduce
from shallownet.report import design, factorial, figures
from shallownet.report import main as report_main
from shallownet.report import stats as st

# tutorial 000's sweep (activation x seeds 0..4 at lr 0.1) as synthetic runs
SWEEP_ACC = {
    "tanh": [0.95, 0.94, 0.96, 0.95, 0.95],
    "relu": [0.95, 0.96, 0.94, 0.95, 0.96],
    "leaky_relu": [0.94, 0.95, 0.95, 0.96, 0.94],
}
ETT = {"tanh": [9, 10, 11, 10, 12], "relu": [6, 7, 8, 6, 7], "leaky_relu": [6, 8, 7, 7, 6]}


def frame(rows):
    """A runs frame (as tracking.search_runs_frame gives) of child rows."""
    df = pd.DataFrame(rows)
    df["start_time"] = pd.to_datetime(df["start_time"], unit="s", utc=True)
    return df


# --------------------------------------------------------------------------------------
# replicates


def test_reproductions_and_repeats_of_a_run_key_are_set_aside():
    rows = [
        {"run_id": "a", "start_time": 1, "status": "FINISHED", "tags.run_key": "k1", "tags.reproduces": None},
        {"run_id": "b", "start_time": 2, "status": "FINISHED", "tags.run_key": "k2", "tags.reproduces": None},
        # a second run of k1 (the README's plain shallownet-train after the sweep ran it)
        {"run_id": "c", "start_time": 3, "status": "FINISHED", "tags.run_key": "k1", "tags.reproduces": None},
        # reproductions of a and of b
        {"run_id": "d", "start_time": 4, "status": "FINISHED", "tags.run_key": "k1", "tags.reproduces": "a"},
        {"run_id": "e", "start_time": 5, "status": "FINISHED", "tags.run_key": "k2", "tags.reproduces": "b"},
        # k3 failed first, then finished: the finished one stands for it
        {"run_id": "f", "start_time": 6, "status": "FAILED", "tags.run_key": "k3", "tags.reproduces": None},
        {"run_id": "g", "start_time": 7, "status": "FINISHED", "tags.run_key": "k3", "tags.reproduces": None},
    ]
    kept, aside = design.set_aside_repeats(frame(rows))
    assert sorted(kept["run_id"]) == ["a", "b", "g"]
    why = dict(zip(aside["run_id"], aside["reason"]))
    assert sorted(why) == ["c", "d", "e", "f"]
    assert why["d"] == "reproduction of a" and why["e"] == "reproduction of b"
    assert why["c"].startswith("same run_key as a") and why["f"].startswith("same run_key as g")


def run_table(cells):
    """A tidy run table: {(A, B): [values per seed]} -> one finished row per value."""
    rows = [
        {
            "A": a,
            "B": b,
            "seed": str(s),
            "state": "finished",
            "final_test_accuracy": v,
            "run_id": f"{a}{b}{s}",
        }
        for (a, b), vals in cells.items()
        for s, v in enumerate(vals)
    ]
    return pd.DataFrame(rows)


def test_design_names_empty_and_single_run_cells_and_the_largest_crossed_part():
    runs = run_table(
        {
            ("tanh", "0.1"): [0.95, 0.94, 0.96],
            ("relu", "0.1"): [0.95, 0.96, 0.94],
            ("leaky", "0.1"): [0.94, 0.95, 0.96],
            ("relu", "0.05"): [0.95],
            ("tanh", "0.5"): [0.9, 0.91],
            ("relu", "0.5"): [0.92, 0.93],
        }
    )
    d = design.work_out(runs, ["A", "B"])
    assert not d.complete
    assert d.empty_cells() == [("leaky", "0.05"), ("leaky", "0.5"), ("tanh", "0.05")]
    assert d.single_cells() == [("relu", "0.05")]
    # A {relu, tanh} x B {0.1, 0.5}: 10 runs, more than A {leaky, relu, tanh} at 0.1 alone (9)
    assert d.crossed == {"A": ("relu", "tanh"), "B": ("0.1", "0.5")}
    assert d.crossed_runs() == 10
    note = d.note()
    assert "no finished run in A=leaky, B=0.05; A=leaky, B=0.5; A=tanh, B=0.05" in note
    assert "a single run in A=relu, B=0.05" in note
    full = design.work_out(run_table({(a, b): [0.9, 0.91] for a in "xy" for b in "pq"}), ["A", "B"])
    assert full.complete and full.note() == ""


# --------------------------------------------------------------------------------------
# estimates inside their bounds, points inside their CIs


def logit_ci(v, level=0.95):
    """An independent computation of the logit-scale (delta method) t CI of a mean in (0, 1)."""
    v = np.asarray(v, dtype=float)
    m, se = v.mean(), v.std(ddof=1) / math.sqrt(len(v))
    half = stats.t.ppf((1 + level) / 2, len(v) - 1) * se / (m * (1 - m))
    return expit(logit(m) - half), expit(logit(m) + half)


def test_an_accuracy_ci_is_computed_on_the_logit_scale_not_clipped():
    v = [0.96, 1.0, 1.0, 0.99, 1.0]  # the plain t CI reaches above 1 (0.9894 + 0.0209)
    d = st.describe(v, (0.0, 1.0))
    assert d["mean"] == pytest.approx(np.mean(v))
    assert (d["ci_low"], d["ci_high"]) == pytest.approx(logit_ci(v), rel=1e-12)
    assert d["ci_low"] < d["mean"] < d["ci_high"] < 1.0  # not clipped: an interval below 1
    loss = st.describe([0.02, 0.5, 0.01], (0.0, math.inf))  # a loss CI on the log scale
    assert 0.0 < loss["ci_low"] < loss["mean"] < loss["ci_high"]
    assert st.describe([0.5, 0.5], (0.0, 1.0))["ci_low"] == 0.5  # zero spread: a point


def test_marginal_means_of_a_complete_design_stay_inside_the_data_and_bounds():
    # a complete 2 x 2 design near accuracy 1, seeds not crossed with the cells: a seed
    # block term would carry seed 5's effect (estimated in x,p) into the other cells
    rows = []
    seeds = {("x", "p"): ["0", "5"], ("x", "q"): ["0", "1"], ("y", "p"): ["1", "5"], ("y", "q"): ["0", "1"]}
    vals = {
        ("x", "p"): [0.90, 1.0],
        ("x", "q"): [0.99, 0.98],
        ("y", "p"): [0.99, 1.0],
        ("y", "q"): [1.0, 0.99],
    }
    for cell, ss in seeds.items():
        for s, v in zip(ss, vals[cell]):
            rows.append(
                {"A": cell[0], "B": cell[1], "seed": s, "state": "finished", "final_test_accuracy": v}
            )
    runs = pd.DataFrame(rows)
    assert design.work_out(runs, ["A", "B"]).complete
    for by in (["A"], ["A", "B"]):
        e = factorial.marginal_means(runs, ["A", "B"], "final_test_accuracy", by)
        for _, r in e.iterrows():
            mask = np.logical_and.reduce([runs[f] == r[f] for f in by])
            cell_means = runs[mask].groupby(["A", "B"])["final_test_accuracy"].mean()
            assert r["emm"] == pytest.approx(cell_means.mean())  # the average of its cells
            assert r["ci_low"] <= r["emm"] <= r["ci_high"]
            assert 0.0 < r["ci_low"] and r["ci_high"] < 1.0


def test_error_bars_are_never_negative_and_a_mean_near_one_draws(tmp_path):
    """The spiral set of issue 19: a model mean 1.018 with its CI clipped at 1 crashed
    fig_interactions ('yerr' must not contain negative values)."""
    emm = pd.DataFrame(
        {
            "activation.name": ["relu", "relu", "tanh", "tanh"],
            "model.hidden_sizes": ["[16]", "[64]", "[16]", "[64]"],
            "emm": [0.97, 1.018, 0.96, 0.99],
            "se": [0.01, 0.01, 0.01, 0.01],
            "ci_low": [0.95, 0.998, 0.94, 0.97],
            "ci_high": [0.99, 1.0, 0.98, 1.0],
            "n": [5, 1, 5, 5],
        }
    )
    pair = ("activation.name", "model.hidden_sizes")
    emms = {(m, *pair): emm for m in ("final_test_accuracy", "final_train_loss")}
    path = figures.fig_interactions(
        list(pair), emms, {}, ["final_test_accuracy", "final_train_loss"], tmp_path / "i.png"
    )
    assert path.stat().st_size > 0
    err = figures.error_bars(emm["emm"], emm["ci_low"], emm["ci_high"])
    assert np.all(np.isnan(err) | (err >= 0))
    assert np.isnan(err[:, 1]).all() and np.isfinite(err[:, [0, 2, 3]]).all()
    runs = pd.DataFrame(
        {
            "activation.name": ["relu"] * 2,
            "state": "finished",
            "final_test_accuracy": [0.99, 1.0],
            "seed": "0",
        }
    )
    means = {
        "activation.name": pd.DataFrame(
            {"level": ["relu"], "mean": [1.018], "ci_low": [0.99], "ci_high": [1.0], "n": [2]}
        )
    }
    figures.fig_level_means(runs, ["activation.name"], means, tmp_path / "m.png", "mean")


# --------------------------------------------------------------------------------------
# a report over a mixed set of runs (synthetic store)


def single(w, p, acc, ett, no, run_key=None, reproduces=None):
    """A run outside any sweep (shallownet-train without -m), or a reproduction."""
    rid = w.child("x", "x", p, acc, 0.2, loss_curve(ett), no=no)
    for tag in ("mlflow.parentRunId", "sweep_id"):
        w.c.delete_tag(rid, tag)
    w.c.set_tag(rid, "shallownet.role", "reproduction" if reproduces else "run")
    if run_key:
        w.c.set_tag(rid, "run_key", run_key)
    if reproduces:
        w.c.set_tag(rid, "reproduces", reproduces)
        w.c.set_tag(rid, "mlflow.parentRunId", reproduces)
    return rid


def readme_set(root):
    """The issue's first case: tutorial 000's sweep, the README's two single runs (the first
    the same config and seed as the sweep's tanh seed 0, the second relu at lr 0.05) and two
    reproductions of sweep runs."""
    uri, client, exp = new_store(root)
    w = SweepWriter(client, exp, root)
    parent = w.parent("sweep-t000", "tutorial000_activations")
    ids, no = {}, 0
    for act, accs in SWEEP_ACC.items():
        for s, acc in enumerate(accs):
            rid = w.child(
                parent, "sweep-t000", params(act, s, run_no=no), acc, 0.2, loss_curve(ETT[act][s]), no=no
            )
            client.set_tag(rid, "run_key", f"k-{act}-{s}")
            ids[(act, s)] = rid
            no += 1
    client.set_terminated(parent, "FINISHED")
    single(w, params("tanh", 0, run_no=no), 0.95, 9, no, run_key="k-tanh-0")
    p = params("relu", 0, run_no=no + 1) | {"lr_schedule.lr": "0.05"}
    single(w, p, 0.95, 8, no + 1, run_key="k-relu-0-lr0.05")
    for k, (act, s) in enumerate([("relu", 1), ("tanh", 2)]):
        single(w, params(act, s), SWEEP_ACC[act][s], ETT[act][s], no + 2 + k, f"k-{act}-{s}", ids[(act, s)])
    return uri


def test_an_unbalanced_set_reports_observed_means_and_no_interaction(tmp_path):
    uri = readme_set(tmp_path)
    out = tmp_path / "out"
    argv = ["--experiment", "shallownet", "--tracking-uri", uri, "--out", str(out)]
    assert report_main(argv) == 0
    md = (out / "report.md").read_text()
    summary = pd.read_csv(out / "summary.csv", dtype={"level": str})
    acts = summary[summary["factor"] == "activation.name"].set_index("level")
    assert acts.loc["tanh", "n_runs"] == 5 and acts.loc["relu", "n_runs"] == 6  # no reproduction counted
    for lv, accs in SWEEP_ACC.items():
        vals = accs + ([0.95] if lv == "relu" else [])
        row = acts.loc[lv]
        assert row["final_test_accuracy_mean"] == pytest.approx(np.mean(vals), abs=1e-6)
        assert min(vals) <= row["final_test_accuracy_mean"] <= max(vals)
        assert 0 < row["final_test_accuracy_ci_low"] <= row["final_test_accuracy_mean"]
        assert row["final_test_accuracy_mean"] <= row["final_test_accuracy_ci_high"] < 1
        assert "final_test_accuracy_emm" not in summary  # no model-based mean
    assert "Set aside 3 run(s) that are no new replicate: 2 reproduction(s)" in md
    assert "a single run in activation=relu, lr=0.05" in md
    assert "no finished run in activation=leaky_relu, lr=0.05; activation=tanh, lr=0.05" in md
    assert "interaction" not in md.split("## Summary")[1].split("\n## ")[0]
    assert "F = " not in md


SPIRAL_ACC = {
    ("relu", "[16]"): [0.99, 1.0, 0.995],
    ("relu", "[64]"): [1.0, 1.0, 0.995],
    ("tanh", "[16]"): [0.97, 0.96, 0.98],
    ("tanh", "[64]"): [0.99, 0.985, 1.0],
}


def test_the_spiral_mixed_set_reports(tmp_path):
    """Issue 19's crash: a spiral sweep (accuracies near 1), two reproductions and two single
    runs (one at a width the sweep lacks, one at another lr): the report is written."""
    uri, client, exp = new_store(tmp_path)
    w = SweepWriter(client, exp, tmp_path)
    parent = w.parent("sweep-spiral", "custom")
    ids, no = [], 0
    for (act, width), accs in SPIRAL_ACC.items():
        for s, acc in enumerate(accs):
            p = params(act, s, run_no=no) | {"dataset.name": "spiral", "model.hidden_sizes": width}
            ids.append((p, acc, w.child(parent, "sweep-spiral", p, acc, 0.05, loss_curve(5 + s), no=no)))
            client.set_tag(ids[-1][2], "run_key", f"k{no}")
            no += 1
    client.set_terminated(parent, "FINISHED")
    for k, (p, acc, rid) in enumerate(ids[:2]):
        single(w, p, acc, 5, no + k, run_key=f"k{k}", reproduces=rid)
    p = params("relu", 0) | {"dataset.name": "spiral", "model.hidden_sizes": "[128]"}
    single(w, p, 1.0, 5, no + 2, run_key="k-wide")
    p = params("tanh", 0) | {"dataset.name": "spiral", "model.hidden_sizes": "[64]", "lr_schedule.lr": "0.5"}
    single(w, p, 1.0, 5, no + 3, run_key="k-lr")
    out = tmp_path / "out"
    argv = ["--experiment", "shallownet", "--filter", "params.`dataset.name` = 'spiral'"]
    assert report_main(argv + ["--tracking-uri", uri, "--out", str(out)]) == 0
    for name in ("interactions.png", "accuracy.png", "report.html"):
        assert (out / name).stat().st_size > 0
    summary = pd.read_csv(out / "summary.csv", dtype={"level": str})
    acc = summary[["final_test_accuracy_mean", "final_test_accuracy_ci_low", "final_test_accuracy_ci_high"]]
    ok = acc.dropna()
    assert (ok["final_test_accuracy_ci_low"] <= ok["final_test_accuracy_mean"]).all()
    assert (ok["final_test_accuracy_mean"] <= ok["final_test_accuracy_ci_high"]).all()
    assert (ok["final_test_accuracy_ci_high"] <= 1.0).all() and (ok["final_test_accuracy_ci_low"] >= 0).all()
    md = (out / "report.md").read_text()
    assert "Set aside 2 run(s) that are no new replicate: 2 reproduction(s)" in md


# --------------------------------------------------------------------------------------
# end to end: the README's runs, tutorial 000's sweep and two reproductions


def train(cwd, uri, *overrides):
    res = run_cli(
        [
            "shallownet-train",
            *overrides,
            "train.epochs=200",
            "tracking.log_model=false",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.slow
def test_readme_runs_sweep_and_reproductions_report(store, monkeypatch, capsys):
    """Issue 19's first case with real runs (200 epochs): tutorial 000's sweep, then the
    README's `shallownet-train` (the sweep's tanh seed 0 again) and `shallownet-train
    activation=relu lr_schedule.lr=0.05`, two reproductions, and the README's --experiment
    report: every level's mean is its kept runs' mean, the reproductions and the repeat are
    set aside and counted, no model rests on the single run at lr 0.05."""
    cwd, uri = store
    train(cwd, uri, "-m", "experiment=tutorial000_activations")
    train(cwd, uri)
    train(cwd, uri, "activation=relu", "lr_schedule.lr=0.05")
    sweep_runs = runs_of(uri, filter_string="tags.sweep_id != ''")
    children = [r for r in sweep_runs if r.data.tags.get("shallownet.role") != "parent"]
    originals = sorted(children, key=lambda r: r.info.start_time)[:2]
    # reproduce and report in-process: their command lines are tested as processes elsewhere
    # (test_reproduce.py, test_newcomer.py); the reproductions themselves are real runs
    monkeypatch.chdir(cwd)
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"):  # as run_cli's environment
        monkeypatch.delenv(var, raising=False)
    for r in originals:
        assert reproduce.main([r.info.run_id, "--tracking-uri", uri]) == 0, capsys.readouterr()
    rc = report_main(
        [
            "--experiment",
            "shallownet",
            "--filter",
            "params.`dataset.name` = 'classification'",
            "--tracking-uri",
            uri,
            "--out",
            "rep",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    md = (cwd / "rep" / "report.md").read_text()
    all_runs = [r for r in runs_of(uri) if r.data.tags.get("shallownet.role") != "parent"]
    assert len(all_runs) == 15 + 2 + 2
    # the plain shallownet-train is the sweep's tanh seed 0 again (same run_key)
    repro = [r for r in all_runs if r.data.tags.get("reproduces")]
    assert len(repro) == 2
    keys = [r.data.tags["run_key"] for r in all_runs if not r.data.tags.get("reproduces")]
    repeats = len(keys) - len(set(keys))
    assert re.search(rf"Set aside {2 + repeats} run\(s\) that are no new replicate: 2 reproduction", md)
    kept = {r.info.run_id: r for r in all_runs if not r.data.tags.get("reproduces")}
    firsts = {}
    for r in sorted(kept.values(), key=lambda r: r.info.start_time):
        firsts.setdefault(r.data.tags["run_key"], r)
    summary = pd.read_csv(cwd / "rep" / "summary.csv", dtype={"level": str})
    for f, param in (("activation.name", "activation.name"), ("lr_schedule.lr", "lr_schedule.lr")):
        for _, row in summary[summary["factor"] == f].iterrows():
            vals = [
                r.data.metrics["final_test_accuracy"]
                for r in firsts.values()
                if r.data.params[param] == row["level"]
            ]
            assert row["n_runs"] == len(vals)
            assert row["final_test_accuracy_mean"] == pytest.approx(np.mean(vals), abs=1e-6)
            assert min(vals) - 1e-9 <= row["final_test_accuracy_mean"] <= max(vals) + 1e-9
            if len(vals) >= 2 and np.std(vals) > 0:
                assert row["final_test_accuracy_ci_low"] <= row["final_test_accuracy_mean"]
                assert row["final_test_accuracy_mean"] <= row["final_test_accuracy_ci_high"] < 1.0
    assert "final_test_accuracy_emm" not in summary
    assert "a single run in activation=relu, lr=0.05" in md
    assert "F = " not in md and "interaction activation" not in md
