"""shallownet-report on synthetic sweeps written with MlflowClient following the run contract."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from experiments import report as rep  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPOCHS = 40
L0 = 0.7  # every synthetic run starts at this train loss -> default threshold 0.35

# sweep 1: activation {relu, tanh} x seeds 0..3, plus one diverged relu run (seed 4)
ACC = {"relu": [0.90, 0.92, 0.88, 0.95], "tanh": [0.85, 0.86, 0.87, 0.84]}
TEST_LOSS = {"relu": [0.30, 0.25, 0.35, 0.20], "tanh": [0.40, 0.38, 0.36, 0.45]}
# first epoch at which train_loss <= 0.35; None = never reached (flat at 0.6)
ETT = {"relu": [5, 6, 7, 8], "tanh": [10, 12, 14, None]}
DIVERGED_AT = 10
# sweep 2: accuracy offsets per initializer and seed (ReLU+He is 0.1 better on top)
OFFSET = {"he_normal": [0.0, 0.02, 0.01], "xavier_uniform": [0.005, 0.0, 0.03]}


def loss_curve(cross):
    """train_loss per epoch 0..EPOCHS-1 crossing L0/2 exactly between epochs cross-1 and cross."""
    e = np.arange(EPOCHS, dtype=np.float64)
    if cross is None:
        return np.where(e == 0, L0, 0.6)
    return L0 * 2.0 ** (-e / (cross - 0.5))


def curves_frame(train_loss):
    n = len(train_loss)
    e = np.arange(n, dtype=np.float64)
    return pd.DataFrame({"epoch": np.arange(n), "train_loss": train_loss,
                         "test_loss": train_loss * 1.1, "train_accuracy": 1 - train_loss / 2,
                         "test_accuracy": 1 - train_loss / 1.8, "lr": 0.1 + 0 * e})


def params(activation, seed, initializer="he_normal", run_no=0):
    return {"dataset.name": "quadrant", "activation.name": activation, "activation.alpha": "0.01",
            "initializer.name": initializer, "lr_schedule.name": "constant",
            "lr_schedule.lr": "0.1", "model.hidden_sizes": "[16]", "model.output": "sigmoid",
            "train.epochs": str(EPOCHS), "train.loss": "bce", "train.batch_size": "32",
            "train.l2": "0.0", "train.dtype": "float64", "seed": str(seed),
            "tracking.experiment_name": "t", "tracking.run_name": f"job{run_no}"}


class SweepWriter:
    def __init__(self, client, exp_id, work: Path):
        self.c, self.exp, self.work = client, exp_id, work
        self.t = 1_700_000_000_000
        self.png = work / "decision_boundary.png"  # any small valid PNG
        fig, ax = plt.subplots(figsize=(1.5, 1.5), dpi=40)
        ax.contourf(np.arange(9).reshape(3, 3))
        fig.savefig(self.png)
        plt.close(fig)

    def tick(self):
        self.t += 1000
        return self.t

    def parent(self, sweep_id, study):
        r = self.c.create_run(self.exp, start_time=self.tick(), tags={
            "sweep_id": sweep_id, "shallownet.role": "parent", "shallownet.experiment": study})
        return r.info.run_id

    def child(self, parent_id, sweep_id, p, acc, test_loss, train_loss, diverged_at=None, no=0):
        from mlflow.entities import Metric, Param, RunTag

        tags = {"mlflow.parentRunId": parent_id, "sweep_id": sweep_id,
                "shallownet.role": "child", "config_hash": f"h{no}",
                "overrides": f"activation={p['activation.name']} seed={p['seed']}"}
        if diverged_at is not None:
            tags.update(diverged_at_epoch=str(diverged_at), failure_reason="diverged")
        r = self.c.create_run(self.exp, start_time=self.tick(), tags=tags)
        rid = r.info.run_id
        ts = self.t
        n = len(train_loss)
        metrics = [Metric("train_loss", float(v), ts, i) for i, v in enumerate(train_loss)]
        summary = {"final_train_loss": float(train_loss[-1]), "epochs_completed": float(n),
                   "train_seconds": 1.0}
        if diverged_at is None:
            summary.update(final_test_accuracy=acc, final_test_loss=test_loss)
        metrics += [Metric(k, float(v), ts, 0) for k, v in summary.items()]
        self.c.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in p.items()],
                         tags=[RunTag("extra", "x")])
        d = self.work / rid
        d.mkdir()
        curves_frame(np.asarray(train_loss)).to_parquet(d / "curves.parquet")
        self.c.log_artifact(rid, str(d / "curves.parquet"))
        self.c.log_artifact(rid, str(self.png), artifact_path="plots")
        self.c.set_terminated(rid, "FINISHED" if diverged_at is None else "FAILED",
                              end_time=self.tick())
        return rid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    root = tmp_path_factory.mktemp("mlstore")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("shallownet", artifact_location=str(root / "artifacts"))
    w = SweepWriter(client, exp, root)

    # sweep 1 (older)
    p1 = w.parent("sweep-act", "tutorial000_activations")
    no = 0
    for act in ("relu", "tanh"):
        for s in range(4):
            w.child(p1, "sweep-act", params(act, s, run_no=no), ACC[act][s], TEST_LOSS[act][s],
                    loss_curve(ETT[act][s]), no=no)
            no += 1
    failed = w.child(p1, "sweep-act", params("relu", 4, run_no=no), None, None,
                     np.concatenate([loss_curve(4)[:DIVERGED_AT], [np.inf]]),
                     diverged_at=DIVERGED_AT, no=no)
    jobs = {"jobs_total": 9.0, "jobs_finished": 8.0, "jobs_failed": 1.0, "jobs_diverged": 1.0,
            "jobs_skipped": 0.0}
    client.log_batch(p1, metrics=[Metric(k, v, w.t, 0) for k, v in jobs.items()])
    client.set_terminated(p1, "FINISHED", end_time=w.tick())

    # sweep 2 (latest): activation x initializer x 2 seeds, ReLU+He best and fastest
    p2 = w.parent("sweep-init", "tutorial_initializers")
    acc2 = {}
    for act in ("relu", "tanh"):
        for init in ("he_normal", "xavier_uniform"):
            for s in range(3):
                good = act == "relu" and init == "he_normal"
                acc = (0.95 if good else 0.85) + OFFSET[init][s]
                acc2[(act, init, s)] = acc
                w.child(p2, "sweep-init", params(act, s, init, run_no=no), acc, 0.3,
                        loss_curve([4, 6, 5][s] if good else 9 + s), no=no)
                no += 1
    client.set_terminated(p2, "FINISHED", end_time=w.tick())
    return {"uri": uri, "client": client, "root": root, "p1": p1, "p2": p2, "failed": failed,
            "exp": exp, "acc2": acc2}


def search(store, sweep_id):
    import mlflow

    with rep._tracking(store["uri"]):
        return mlflow.search_runs(experiment_ids=[store["exp"]],
                                  filter_string=f"tags.sweep_id = '{sweep_id}'")


@pytest.fixture(scope="module")
def report1(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep1")
    r = rep.build_report(search(store, "sweep-act"), out, store["client"])
    return r


def check_png(path: Path):
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_factors_and_counts(report1, store):
    assert report1.factors == ["activation.name"]  # seed, tracking.*, constants excluded
    s = report1.summary.set_index("level")
    assert list(report1.summary["level"]) == ["relu", "tanh"]
    assert s.loc["relu", "n_runs"] == 5 and s.loc["relu", "n_finished"] == 4
    assert s.loc["relu", "n_failed"] == 1 and s.loc["relu", "n_diverged"] == 1
    assert s.loc["tanh", "n_runs"] == 4 and s.loc["tanh", "n_failed"] == 0
    failed = report1.runs.set_index("run_id").loc[store["failed"]]
    assert failed["state"] == "diverged" and failed["diverged_at_epoch"] == str(DIVERGED_AT)
    md = (report1.out_dir / "report.md").read_text()
    assert store["failed"] in md  # listed, not dropped
    assert report1.parent_run_id == store["p1"]


def test_means_and_cis_match_scipy(report1):
    s = report1.summary.set_index("level")
    for lv in ("relu", "tanh"):
        for metric, vals in (("final_test_accuracy", ACC[lv]), ("final_test_loss", TEST_LOSS[lv])):
            v = np.array(vals)
            n = len(v)
            half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)
            assert s.loc[lv, f"{metric}_n"] == 4  # the diverged run is excluded
            assert s.loc[lv, f"{metric}_mean"] == pytest.approx(v.mean(), rel=1e-12)
            assert s.loc[lv, f"{metric}_std"] == pytest.approx(v.std(ddof=1), rel=1e-12)
            assert s.loc[lv, f"{metric}_ci_low"] == pytest.approx(v.mean() - half, rel=1e-12)
            assert s.loc[lv, f"{metric}_ci_high"] == pytest.approx(v.mean() + half, rel=1e-12)
    csv = pd.read_csv(report1.out_dir / "summary.csv").set_index("level")
    assert csv.loc["relu", "final_test_accuracy_mean"] == pytest.approx(np.mean(ACC["relu"]),
                                                                         rel=1e-5)
    assert csv.loc["relu", "n_failed"] == 1


def test_epochs_to_threshold(report1, store):
    assert report1.threshold == pytest.approx(0.5 * L0)
    runs = report1.runs
    for lv in ("relu", "tanh"):
        fin = runs[(runs["activation.name"] == lv) & (runs["state"] == "finished")]
        fin = fin.assign(s=fin["seed"].astype(int)).sort_values("s")
        for (_, r), want in zip(fin.iterrows(), ETT[lv]):
            if want is None:
                assert r["ett_status"] == "not reached" and math.isnan(r["epochs_to_threshold"])
            else:
                assert r["ett_status"] == "reached" and r["epochs_to_threshold"] == want
    s = report1.summary.set_index("level")
    assert s.loc["tanh", "epochs_to_threshold_n_reached"] == 3
    assert s.loc["tanh", "epochs_to_threshold_n_not_reached"] == 1
    assert s.loc["tanh", "epochs_to_threshold_mean"] == pytest.approx(12.0)
    assert s.loc["relu", "epochs_to_threshold_mean"] == pytest.approx(6.5)
    # the diverged run reached 0.35 (epoch 4) before diverging: shown, not averaged
    assert runs.set_index("run_id").loc[store["failed"], "epochs_to_threshold"] == 4
    assert "not reached" in (report1.out_dir / "report.md").read_text()


def test_paired_tests_match_scipy(report1):
    c = report1.comparisons.set_index("metric")
    assert set(c["level_a"]) == {"relu"} and set(c["level_b"]) == {"tanh"}
    for metric, vals in (("final_test_accuracy", ACC), ("final_test_loss", TEST_LOSS)):
        a, b = np.array(vals["relu"]), np.array(vals["tanh"])
        d = a - b
        row = c.loc[metric]
        assert row["n_pairs"] == 4
        assert row["t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
        assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
        assert row["mean_diff"] == pytest.approx(d.mean(), rel=1e-12)
        assert row["cohen_dz"] == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)
    # epochs to threshold: the pair where tanh never reached it is excluded
    a, b = np.array([5.0, 6, 7]), np.array([10.0, 12, 14])
    row = c.loc["epochs_to_threshold"]
    assert row["n_pairs"] == 3 and "1 matched pair(s) excluded" in row["note"]
    assert row["t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
    # the ReLU-vs-tanh claim is answered from these numbers
    claim = next(cl for cl in report1.claims if cl["claim"].startswith("ReLU converges faster"))
    assert claim["verdict"] == "yes"  # p ~ 0.009 < 0.05
    md = (report1.out_dir / "report.md").read_text()
    assert ("Tutorial 000/001: ReLU converges faster than tanh (fewer epochs to the loss "
            f"threshold): yes, paired t p = {rep._fmt(stats.ttest_rel(a, b).pvalue)}") in md


def test_paired_test_degenerate_cases():
    r = rep.paired_test([0.5, 0.6], [0.5, 0.6])
    assert math.isnan(r["t_p"]) and math.isnan(r["wilcoxon_p"]) and "zero" in r["note"]
    r = rep.paired_test([0.5], [0.4])
    assert r["n_pairs"] == 1 and math.isnan(r["t_p"]) and "fewer than 2" in r["note"]
    assert rep.sort_levels(["[128]", "[16]", "[64]"]) == ["[16]", "[64]", "[128]"]
    assert rep.sort_levels(["10", "2", "0.5"]) == ["0.5", "2", "10"]


def test_figures_and_html(report1):
    out = report1.out_dir
    for name in ("loss_curves.png", "accuracy_bars.png", "decision_boundaries.png",
                 "activations.png"):
        check_png(out / name)
    text = (out / "report.html").read_text()
    for name in ("loss_curves", "accuracy", "boundaries", "activations"):
        assert report1.files[name].name in (out / "report.md").read_text()
    assert text.count("data:image/png;base64,") == 4
    assert 'src="http' not in text and "<script" not in text.lower()
    assert "<table>" in text


def test_regeneration_is_byte_identical(report1, store, tmp_path):
    md, csv = ((report1.out_dir / f).read_bytes() for f in ("report.md", "summary.csv"))
    again = rep.build_report(search(store, "sweep-act"), tmp_path / "again", store["client"],
                             log_artifacts=False)
    assert (again.out_dir / "report.md").read_bytes() == md
    assert (again.out_dir / "summary.csv").read_bytes() == csv


def test_parent_got_report_artifacts(report1, store):
    names = {a.path for a in store["client"].list_artifacts(store["p1"], "report")}
    assert {"report/report.md", "report/report.html", "report/summary.csv",
            "report/loss_curves.png", "report/accuracy_bars.png",
            "report/decision_boundaries.png", "report/activations.png"} <= names


def test_cli_latest(store, tmp_path, capsys):
    out = tmp_path / "latest"
    rc = rep.main(["--sweep", "latest", "--tracking-uri", store["uri"], "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed
    assert "initializer.name" in printed
    md = (out / "report.md").read_text()
    assert "sweep-init" in md  # latest = the most recent parent
    check_png(out / "accuracy_heatmap.png")  # two factors -> heatmap
    # He vs Xavier, matched on ReLU runs and seed: the claim's p-values are scipy's
    a = np.array([store["acc2"][("relu", "he_normal", s)] for s in range(3)])
    b = np.array([store["acc2"][("relu", "xavier_uniform", s)] for s in range(3)])
    p_t, p_w = stats.ttest_rel(a, b).pvalue, stats.wilcoxon(a, b).pvalue
    assert p_t < 0.05
    assert ("He initialisation suits ReLU better than small random / Xavier: yes, paired t p = "
            f"{rep._fmt(p_t)}, Wilcoxon p = {rep._fmt(p_w)} (initializer.name=he_normal vs "
            "xavier_uniform, final test accuracy, ReLU runs") in md
    names = {x.path for x in store["client"].list_artifacts(store["p2"], "report")}
    assert "report/accuracy_heatmap.png" in names


def test_cli_experiment_filter(store, tmp_path, capsys):
    out = tmp_path / "exp"
    rc = rep.main(["--experiment", "shallownet", "--tracking-uri", store["uri"], "--out",
                   str(out), "--filter", "tags.sweep_id = 'sweep-act'"])
    assert rc == 0
    csv = pd.read_csv(out / "summary.csv")
    assert list(csv["level"]) == ["relu", "tanh"] and list(csv["n_runs"]) == [5, 4]


def test_cli_errors(store, tmp_path, capsys, monkeypatch):
    rc = rep.main(["--sweep", "no-such-sweep", "--tracking-uri", store["uri"],
                   "--out", str(tmp_path / "x")])
    assert rc != 0
    err = capsys.readouterr().err
    assert "no-such-sweep" in err and "not found" in err and len(err.strip().splitlines()) == 1
    missing = tmp_path / "nope" / "mlflow.db"
    rc = rep.main(["--sweep", "latest", "--tracking-uri", f"sqlite:///{missing}"])
    assert rc != 0
    assert "not found" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()
    # MLFLOW_TRACKING_URI is honoured when --tracking-uri is absent
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    assert rep.main(["--experiment", "shallownet"]) != 0
    assert str(missing) in capsys.readouterr().err
    rc = rep.main(["--experiment", "nope", "--tracking-uri", store["uri"]])
    assert rc != 0 and "'nope' not found" in capsys.readouterr().err


def _frames(rows):
    """(tidy runs, children) frames for tutorial_claims without MLflow."""
    runs = pd.DataFrame(rows)
    runs["state"] = "finished"
    runs["ett_status"] = "reached"
    children = pd.DataFrame({f"params.{k}": runs[k] for k in runs.columns
                             if k in ("lr_schedule.name", "model.hidden_sizes", "seed")})
    children["params.dataset.name"] = "quadrant"
    children["params.activation.name"] = "relu"
    return runs, children


def test_claims_follow_the_numbers():
    train = {"plateau": [0.10, 0.12, 0.08, 0.11], "constant": [0.20, 0.19, 0.25, 0.18]}
    acc = {"[4]": [0.80, 0.82, 0.79, 0.85], "[64]": [0.95, 0.90, 0.97, 0.93]}
    rows = [{"lr_schedule.name": sch, "model.hidden_sizes": hid, "seed": str(s),
             "final_train_loss": train[sch][s] + (0.01 if hid == "[4]" else 0.0),
             "final_test_accuracy": acc[hid][s] - (0.0 if sch == "plateau" else 0.005 * s),
             "final_test_loss": 0.3, "epochs_to_threshold": 5.0}
            for sch in ("constant", "plateau") for hid in ("[64]", "[4]") for s in range(4)]
    runs, children = _frames(rows)
    factors = ["lr_schedule.name", "model.hidden_sizes"]
    assert rep.find_factors(children.assign(**{"params.activation.alpha": "0.01"}))[0] == factors
    claims = {c["claim"] + c["metric"]: c for c in rep.tutorial_claims(runs, children, factors)}
    plateau = claims["plateau decay reaches a lower final training lossfinal_train_loss"]
    x = np.array(train["plateau"] * 2) + np.repeat([0.0, 0.01], 4)
    y = np.array(train["constant"] * 2) + np.repeat([0.0, 0.01], 4)
    assert plateau["n_pairs"] == 8 and plateau["verdict"] == "yes"
    assert plateau["t_p"] == pytest.approx(stats.ttest_rel(x, y).pvalue, rel=1e-9)
    wide = claims["wider hidden layers fit the quadrant task betterfinal_test_accuracy"]
    assert (wide["level_a"], wide["level_b"]) == ("[64]", "[4]") and wide["verdict"] == "yes"
    # reverse the data: the same code now answers "no"
    runs["final_train_loss"] = -runs["final_train_loss"]
    claims = {c["claim"] + c["metric"]: c for c in rep.tutorial_claims(runs, children, factors)}
    assert claims["plateau decay reaches a lower final training lossfinal_train_loss"][
        "verdict"].startswith("no")


def test_alias_params_are_not_factors():
    children = pd.DataFrame({
        "params.activation.name": ["relu", "leaky_relu", "tanh"] * 2,
        "params.activation.alpha": [None, "0.01", None] * 2,
        "params.seed": ["0"] * 3 + ["1"] * 3,
        "params.tracking.run_name": [f"r{i}" for i in range(6)]})
    factors, aliases = rep.find_factors(children)
    assert factors == ["activation.name"]
    assert aliases == {"activation.alpha": "activation.name"}


def test_latest_per_config_keeps_the_newest_run_of_each_config():
    from experiments.report import latest_per_config

    df = pd.DataFrame({"run_id": ["a", "b", "c", "p"],
                       "start_time": pd.to_datetime([1, 3, 2, 0], unit="s"),
                       "tags.config_hash": ["h1", "h1", "h2", None]})
    out = latest_per_config(df)
    assert sorted(out["run_id"]) == ["b", "c", "p"]


def test_accuracy_ci_is_clipped_to_the_unit_interval():
    from scipy import stats

    from experiments.report import describe

    v = [0.25, 0.75, 0.75]
    half = stats.t.ppf(0.975, 2) * np.std(v, ddof=1) / np.sqrt(3)
    raw = describe(v)
    assert raw["ci_low"] == pytest.approx(np.mean(v) - half) and raw["ci_high"] > 1
    clipped = describe(v, (0.0, 1.0))
    assert clipped["ci_low"] == 0.0 and clipped["ci_high"] == 1.0
    assert clipped["mean"] == raw["mean"] and clipped["std"] == raw["std"]
