"""shallownet-report on synthetic sweeps written with MlflowClient following the run contract,
and its statistics checked against hand computations and scipy/statsmodels on fixed data."""

import json
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

from shallownet.record import tracking  # noqa: E402
from shallownet.report import build, claims, factorial, figures  # noqa: E402
from shallownet.report import main as report_main  # noqa: E402
from shallownet.report import runs as rt  # noqa: E402
from shallownet.report import stats as st  # noqa: E402
from shallownet.report.fmt import num  # noqa: E402

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


def curves_frame(train_loss, lr=None):
    n = len(train_loss)
    e = np.arange(n, dtype=np.float64)
    return pd.DataFrame(
        {
            "epoch": np.arange(n),
            "train_loss": train_loss,
            "test_loss": train_loss * 1.1,
            "train_accuracy": 1 - train_loss / 2,
            "test_accuracy": 1 - train_loss / 1.8,
            "lr": 0.1 + 0 * e if lr is None else lr,
        }
    )


def params(activation, seed, initializer="he_normal", run_no=0, schedule="constant"):
    return {
        "dataset.name": "quadrant",
        "activation.name": activation,
        "activation.alpha": "0.01",
        "initializer.name": initializer,
        "lr_schedule.name": schedule,
        "lr_schedule.lr": "0.1",
        "model.hidden_sizes": "[16]",
        "model.output": "sigmoid",
        "train.epochs": str(EPOCHS),
        "train.loss": "bce",
        "train.batch_size": "32",
        "train.l2": "0.0",
        "train.dtype": "float64",
        "seed": str(seed),
        "tracking.experiment_name": "t",
        "tracking.run_name": f"job{run_no}",
    }


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
        r = self.c.create_run(
            self.exp,
            start_time=self.tick(),
            tags={"sweep_id": sweep_id, "shallownet.role": "parent", "shallownet.experiment": study},
        )
        return r.info.run_id

    def child(self, parent_id, sweep_id, p, acc, test_loss, train_loss, diverged_at=None, no=0, lr=None):
        from mlflow.entities import Metric, Param, RunTag

        tags = {
            "mlflow.parentRunId": parent_id,
            "sweep_id": sweep_id,
            "shallownet.role": "child",
            "config_hash": f"h{no}",
            "overrides": f"activation={p['activation.name']} seed={p['seed']}",
        }
        if diverged_at is not None:
            tags.update(diverged_at_epoch=str(diverged_at), failure_reason="diverged")
        r = self.c.create_run(self.exp, start_time=self.tick(), tags=tags)
        rid = r.info.run_id
        ts = self.t
        n = len(train_loss)
        metrics = [Metric("train_loss", float(v), ts, i) for i, v in enumerate(train_loss)]
        summary = {
            "final_train_loss": float(train_loss[-1]),
            "epochs_completed": float(n),
            "train_seconds": 1.0,
        }
        if diverged_at is None:
            summary.update(final_test_accuracy=acc, final_test_loss=test_loss)
        metrics += [Metric(k, float(v), ts, 0) for k, v in summary.items()]
        self.c.log_batch(
            rid, metrics=metrics, params=[Param(k, v) for k, v in p.items()], tags=[RunTag("extra", "x")]
        )
        d = self.work / rid
        d.mkdir()
        curves_frame(np.asarray(train_loss), lr).to_parquet(d / "curves.parquet")
        self.c.log_artifact(rid, str(d / "curves.parquet"))
        self.c.log_artifact(rid, str(self.png), artifact_path="plots")
        self.c.set_terminated(rid, "FINISHED" if diverged_at is None else "FAILED", end_time=self.tick())
        return rid


def new_store(root):
    """A new store as shallownet makes one (record.schema: a copy of the schema MLflow migrated
    once into the template, not dozens of migrations per store), with the experiment 'shallownet'."""
    from mlflow import MlflowClient

    from shallownet.record import schema

    schema.ensure(root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("shallownet", artifact_location=str(root / "artifacts"))
    return uri, client, exp


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from mlflow.entities import Metric

    root = tmp_path_factory.mktemp("mlstore")
    uri, client, exp = new_store(root)
    w = SweepWriter(client, exp, root)

    # sweep 1 (older)
    p1 = w.parent("sweep-act", "tutorial000_activations")
    no = 0
    ids = {}
    for act in ("relu", "tanh"):
        for s in range(4):
            ids[(act, s)] = w.child(
                p1,
                "sweep-act",
                params(act, s, run_no=no),
                ACC[act][s],
                TEST_LOSS[act][s],
                loss_curve(ETT[act][s]),
                no=no,
            )
            no += 1
    failed = w.child(
        p1,
        "sweep-act",
        params("relu", 4, run_no=no),
        None,
        None,
        np.concatenate([loss_curve(4)[:DIVERGED_AT], [np.inf]]),
        diverged_at=DIVERGED_AT,
        no=no,
    )
    jobs = {
        "jobs_total": 9.0,
        "jobs_finished": 8.0,
        "jobs_failed": 1.0,
        "jobs_diverged": 1.0,
        "jobs_skipped": 0.0,
    }
    client.log_batch(p1, metrics=[Metric(k, v, w.t, 0) for k, v in jobs.items()])
    client.set_terminated(p1, "FINISHED", end_time=w.tick())

    # sweep 2 (latest): activation x initializer x 3 seeds, ReLU+He best and fastest
    p2 = w.parent("sweep-init", "init_x_activation")
    acc2 = {}
    for act in ("relu", "tanh"):
        for init in ("he_normal", "xavier_uniform"):
            for s in range(3):
                good = act == "relu" and init == "he_normal"
                acc = (0.95 if good else 0.85) + OFFSET[init][s]
                acc2[(act, init, s)] = acc
                w.child(
                    p2,
                    "sweep-init",
                    params(act, s, init, run_no=no),
                    acc,
                    0.3,
                    loss_curve([4, 6, 5][s] if good else 9 + s),
                    no=no,
                )
                no += 1
    client.set_terminated(p2, "FINISHED", end_time=w.tick())
    return {
        "uri": uri,
        "client": client,
        "root": root,
        "p1": p1,
        "p2": p2,
        "failed": failed,
        "exp": exp,
        "acc2": acc2,
        "ids": ids,
    }


def search(store, sweep_id):
    return tracking.search_runs_frame(store["client"], [store["exp"]], f"tags.sweep_id = '{sweep_id}'")


@pytest.fixture(scope="module")
def report1(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep1")
    return build.build_report(search(store, "sweep-act"), out, store["client"])


def png_dpi_chunk(path: Path) -> bytes:
    """The PNG's pHYs chunk (pixels per metre): the same for figures saved at the same DPI."""
    data = path.read_bytes()
    i = data.index(b"pHYs")
    return data[i + 4 : i + 13]


def check_png(path: Path, min_width=900):
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert png_dpi_chunk(path) == b"\x00\x00\x0f\x61\x00\x00\x0f\x61\x01"  # 100 dpi = 3937 px/m
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 150 and img.shape[1] >= min_width
    return img


def row(frame, **match):
    sel = np.ones(len(frame), dtype=bool)
    for k, v in match.items():
        sel &= (frame[k] == v).to_numpy()
    assert sel.sum() == 1, match
    return frame[sel].iloc[0]


# --------------------------------------------------------------------------------------
# the report of sweep 1


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
            q, m, se = stats.t.ppf(0.975, n - 1), v.mean(), v.std(ddof=1) / math.sqrt(n)
            # the CI of a bounded metric: accuracy on the logit scale, a loss on the log scale
            if metric == "final_test_accuracy":
                half = q * se / (m * (1 - m))
                ci = 1 / (1 + np.exp(-(np.log(m / (1 - m)) + np.array([-half, half]))))
            else:
                ci = m * np.exp(np.array([-q, q]) * se / m)
            assert s.loc[lv, f"{metric}_n"] == 4  # the diverged run is excluded
            assert s.loc[lv, f"{metric}_mean"] == pytest.approx(m, rel=1e-12)
            assert s.loc[lv, f"{metric}_std"] == pytest.approx(v.std(ddof=1), rel=1e-12)
            assert s.loc[lv, f"{metric}_ci_low"] == pytest.approx(ci[0], rel=1e-12)
            assert s.loc[lv, f"{metric}_ci_high"] == pytest.approx(ci[1], rel=1e-12)
    csv = pd.read_csv(report1.out_dir / "summary.csv").set_index("level")
    assert csv.loc["relu", "final_test_accuracy_mean"] == pytest.approx(np.mean(ACC["relu"]), rel=1e-5)
    assert csv.loc["relu", "n_failed"] == 1


def test_epochs_to_threshold_is_censored_not_dropped(report1, store):
    assert report1.threshold == pytest.approx(0.5 * L0)
    runs = report1.runs
    for lv in ("relu", "tanh"):
        fin = runs[(runs["activation.name"] == lv) & (runs["state"] == "finished")]
        fin = fin.assign(s=fin["seed"].astype(int)).sort_values("s")
        for (_, r), want in zip(fin.iterrows(), ETT[lv]):
            if want is None:  # not reached: censored, restricted to the horizon (40 epochs)
                assert r["ett_status"] == "not reached" and math.isnan(r[rt.ETT])
                assert r[rt.ETT_R] == EPOCHS and r["ett_reached"] == 0
            else:
                assert r["ett_status"] == "reached" and r[rt.ETT] == want == r[rt.ETT_R]
    s = report1.summary.set_index("level")
    assert s.loc["tanh", f"{rt.ETT}_n_reached"] == 3
    assert s.loc["tanh", f"{rt.ETT}_n_not_reached"] == 1
    # Kaplan-Meier by hand: tanh S(10) = 3/4, S(12) = 2/4 -> median 12; relu 5,6,7,8 -> 6
    assert s.loc["tanh", f"{rt.ETT}_km_median"] == 12
    assert s.loc["relu", f"{rt.ETT}_km_median"] == 6
    # restricted mean: the censored run counts 40 epochs
    assert s.loc["tanh", f"{rt.ETT}_rmean"] == pytest.approx((10 + 12 + 14 + 40) / 4)
    assert s.loc["tanh", f"{rt.ETT}_mean_reached"] == pytest.approx(12.0)
    # the diverged run reached 0.35 (epoch 4) before diverging: shown, not averaged
    assert runs.set_index("run_id").loc[store["failed"], rt.ETT] == 4
    md = (report1.out_dir / "report.md").read_text()
    assert "not reached" in md and "| tanh | 3 of 4 | 12 [" in md


def test_paired_comparisons_match_scipy(report1):
    c = report1.comparisons
    assert set(c["level_a"]) == {"relu"} and set(c["level_b"]) == {"tanh"}
    for metric, vals in (("final_test_accuracy", ACC), ("final_test_loss", TEST_LOSS)):
        a, b = np.array(vals["relu"]), np.array(vals["tanh"])
        r = row(c, metric=metric)
        t = stats.ttest_rel(a, b)
        ci = t.confidence_interval(0.95)
        assert r["n_pairs"] == 4
        assert r["p"] == pytest.approx(t.pvalue, rel=1e-12)
        assert r["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
        assert r["mean_diff"] == pytest.approx((a - b).mean(), rel=1e-12)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
        assert r["cohen_dz"] == pytest.approx((a - b).mean() / (a - b).std(ddof=1), rel=1e-12)
    # epochs to threshold: every pair counts, the tanh run that never got there counts 40
    a, b = np.array([5.0, 6, 7, 8]), np.array([10.0, 12, 14, 40])
    r = row(c, metric=rt.ETT)
    assert r["n_pairs"] == 4 and r["n_reached_a"] == 4 and r["n_reached_b"] == 3
    assert r["mean_diff"] == pytest.approx((a - b).mean())
    assert r["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert r["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)


def test_holm_over_the_report_family(report1):
    from statsmodels.stats.multitest import multipletests

    c = report1.comparisons
    p = c["p"].to_numpy(dtype=float)
    ok = np.isfinite(p)
    assert c["m"].iloc[0] == ok.sum() == 4
    assert c.loc[ok, "p_holm"].to_numpy() == pytest.approx(multipletests(p[ok], method="holm")[1])
    # the claim's verdict uses the adjusted p: raw p for ETT ~ 0.16 -> undecided
    claim = next(x for x in report1.claims if x["claim"].startswith("ReLU converges faster"))
    r = row(c, metric=rt.ETT)
    assert claim["p_holm"] == r["p_holm"] and claim["p"] == r["p"]
    assert claim["verdict"].startswith("undecided" if r["p_holm"] >= 0.05 else "yes")
    md = (report1.out_dir / "report.md").read_text()
    assert f"Holm p = {num(r['p_holm'])}" in md


def test_regeneration_is_byte_identical(report1, store, tmp_path):
    again = build.build_report(
        search(store, "sweep-act"), tmp_path / "again", store["client"], log_artifacts=False
    )
    names = sorted(p.name for p in report1.out_dir.iterdir())
    assert names == sorted(p.name for p in again.out_dir.iterdir())
    assert {"report.md", "summary.csv", "comparisons.csv", "curves.png"} <= set(names)
    for name in names:
        assert (again.out_dir / name).read_bytes() == (report1.out_dir / name).read_bytes(), name


def test_figures_and_html(report1):
    out = report1.out_dir
    md = (out / "report.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["accuracy.png", "activations.png", "curves.png", "decision_boundaries.png", "effects.png"]
    for name in pngs:
        check_png(out / name)
        assert f"]({name})" in md
    text = (out / "report.html").read_text()
    assert text.count("data:image/png;base64,") == len(pngs)
    assert 'src="http' not in text and "<script" not in text.lower()
    assert "<table>" in text


def test_parent_got_report_and_description(report1, store):
    names = {a.path for a in store["client"].list_artifacts(store["p1"], "report")}
    assert {
        "report/report.md",
        "report/report.html",
        "report/summary.csv",
        "report/comparisons.csv",
        "report/curves.png",
        "report/accuracy.png",
        "report/effects.png",
        "report/decision_boundaries.png",
        "report/activations.png",
    } <= names
    note = store["client"].get_run(store["p1"]).data.tags[tracking.TAG_NOTE]
    assert note == report1.description
    assert (
        f"[report/report.html](#/experiments/{store['exp']}/runs/{store['p1']}"
        "/artifactPath/report/report.html)"
    ) in note
    gap = "&emsp;"  # shallownet.description: MLflow pads no table cell
    assert f"| factor{gap} | level{gap} | runs (finished){gap} |" in note
    assert f"| activation.name{gap} | relu{gap} |" in note
    assert next(c["short"] for c in report1.claims) in note


# --------------------------------------------------------------------------------------
# the command line and sweep 2 (two factors)


def test_cli_latest(store, tmp_path, capsys):
    out = tmp_path / "latest"
    rc = report_main(["--sweep", "latest", "--tracking-uri", store["uri"], "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed
    assert "initializer.name" in printed
    md = (out / "report.md").read_text()
    assert "sweep-init" in md  # latest = the most recent parent
    for name in (
        "accuracy_heatmap.png",
        "interactions.png",
        "curves_by_setting_1.png",
        "curves_by_setting_2.png",
    ):
        check_png(out / name)
    assert not (out / "activations.png").exists() or "activation.name" in md
    # He vs Xavier on the ReLU runs: a claim on a subset, part of the Holm family
    a = np.array([store["acc2"][("relu", "he_normal", s)] for s in range(3)])
    b = np.array([store["acc2"][("relu", "xavier_uniform", s)] for s in range(3)])
    t = stats.ttest_rel(a, b)
    comp = pd.read_csv(out / "comparisons.csv")
    r = row(comp, metric="final_test_accuracy", where="activation.name=relu", factor="initializer.name")
    assert r["p"] == pytest.approx(t.pvalue, rel=1e-6)
    assert r["mean_diff"] == pytest.approx((a - b).mean(), rel=1e-6)
    ci = t.confidence_interval(0.95)
    assert (
        "He initialisation suits ReLU better than small random / Xavier. he_normal vs "
        "xavier_uniform, final test accuracy, runs with activation.name=relu: "
        f"{'yes' if r['p_holm'] < 0.05 else 'undecided'}"
    ) in md
    assert (a - b).mean() > 0  # He is the better: the line gives he_normal - xavier_uniform
    assert f"diff he_normal - xavier_uniform {num((a - b).mean())} [{num(ci.low)}, {num(ci.high)}]" in md
    assert "## Factorial analysis" in md and "activation.name x initializer.name" in md
    names = {x.path for x in store["client"].list_artifacts(store["p2"], "report")}
    assert "report/accuracy_heatmap.png" in names


def test_cli_experiment_filter(store, tmp_path):
    out = tmp_path / "exp"
    rc = report_main(
        [
            "--experiment",
            "shallownet",
            "--tracking-uri",
            store["uri"],
            "--out",
            str(out),
            "--filter",
            "tags.sweep_id = 'sweep-act'",
        ]
    )
    assert rc == 0
    csv = pd.read_csv(out / "summary.csv")
    assert list(csv["level"]) == ["relu", "tanh"] and list(csv["n_runs"]) == [5, 4]


def test_cli_errors(store, tmp_path, capsys, monkeypatch):
    rc = report_main(
        ["--sweep", "no-such-sweep", "--tracking-uri", store["uri"], "--out", str(tmp_path / "x")]
    )
    assert rc != 0
    err = capsys.readouterr().err
    assert "no-such-sweep" in err and "not found" in err and len(err.strip().splitlines()) == 1
    missing = tmp_path / "nope" / "mlflow.db"
    rc = report_main(["--sweep", "latest", "--tracking-uri", f"sqlite:///{missing}"])
    assert rc != 0
    assert "not found" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()
    # MLFLOW_TRACKING_URI is honoured when --tracking-uri is absent
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    assert report_main(["--experiment", "shallownet"]) != 0
    assert str(missing) in capsys.readouterr().err
    rc = report_main(["--experiment", "nope", "--tracking-uri", store["uri"]])
    assert rc != 0 and "'nope' not found" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# sweeps that reuse other sweeps' runs, and degenerate studies


def test_members_artifact_brings_runs_of_other_sweeps(tmp_path):
    uri, client, exp = new_store(tmp_path)
    w = SweepWriter(client, exp, tmp_path)
    old = w.parent("sweep-old", "s")
    kept = w.child(old, "sweep-old", params("relu", 0, run_no=0), 0.9, 0.3, loss_curve(5), no=0)
    w.child(old, "sweep-old", params("relu", 1, run_no=1), 0.9, 0.3, loss_curve(5), no=1)
    new = w.parent("sweep-new", "s")
    mine = w.child(new, "sweep-new", params("tanh", 0, run_no=2), 0.8, 0.4, loss_curve(9), no=2)
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "members.json").write_text(json.dumps({"run_ids": [kept, mine]}))
    client.log_artifact(new, str(tmp_path / "sweep" / "members.json"), artifact_path="sweep")
    sweep, runs = tracking.load_sweep_runs(client, "shallownet", "latest")
    assert sweep == "sweep-new"
    assert sorted(runs["run_id"]) == sorted([new, mine, kept])
    from shallownet.report import load_sweep_runs  # reproduce.py's import keeps working

    assert load_sweep_runs is tracking.load_sweep_runs
    # without the artifact: the sweep's own runs only
    _, runs = tracking.load_sweep_runs(client, "shallownet", "sweep-old")
    assert len(runs) == 3


def test_degenerate_study_is_flagged(tmp_path):
    uri, client, exp = new_store(tmp_path)
    w = SweepWriter(client, exp, tmp_path)
    p = w.parent("sweep-blobs", "tutorial001_blobs")
    for i, sched in enumerate(("plateau", "constant")):
        for s in range(3):
            w.child(
                p,
                "sweep-blobs",
                params("sigmoid", s, run_no=i * 3 + s, schedule=sched),
                1.0,
                0.01,
                loss_curve(3 + s),
                no=i * 3 + s,
            )
    client.set_terminated(p, "FINISHED")
    rep = build.build_report(search({"client": client, "exp": exp}, "sweep-blobs"), tmp_path / "out", client)
    kinds = {f["kind"] for f in rep.flags}
    assert {"identical arms", "saturated", "schedule never acted"} <= kinds
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Study checks" in md and "are the same computation" in md
    assert "No comparison of this study can be tested" in md
    table = md.split("## Paired comparisons")[1].split("\n## ")[0]
    assert "n/a" not in table and table.count("identical arms") == 4
    claim = next(c for c in rep.claims if c["claim"].startswith("plateau decay"))
    assert claim["verdict"].startswith("not testable (the two arms are the same computation")
    assert "## Learning-rate schedule" in md and "| plateau | 3 | 0 | 0 | 0 |" in md
    check_png(tmp_path / "out" / "curves.png")
    assert not (tmp_path / "out" / "activations.png").exists()  # activation is no factor


# --------------------------------------------------------------------------------------
# each statistic against a hand computation or scipy/statsmodels


def test_describe_ci_is_scipy_t_on_the_bounds_scale():
    v = [0.25, 0.75, 0.75]
    half = stats.t.ppf(0.975, 2) * np.std(v, ddof=1) / np.sqrt(3)
    raw = st.describe(v)
    assert raw["ci_low"] == pytest.approx(np.mean(v) - half) and raw["ci_high"] > 1
    bounded = st.describe(v, (0.0, 1.0))  # the same t interval on the logit scale: inside (0, 1)
    assert 0.0 < bounded["ci_low"] < bounded["mean"] < bounded["ci_high"] < 1.0
    assert bounded["mean"] == raw["mean"] and bounded["std"] == raw["std"]
    assert st.describe([0.5, 0.5])["ci_low"] == 0.5  # zero spread: a point


def test_paired_effect_degenerate_cases():
    r = st.paired_effect([0.5, 0.6], [0.5, 0.6])
    assert math.isnan(r["p"]) and math.isnan(r["wilcoxon_p"]) and "zero difference" in r["note"]
    assert (r["ci_low"], r["ci_high"]) == (0.0, 0.0)
    r = st.paired_effect([0.5], [0.4])
    assert r["n_pairs"] == 1 and math.isnan(r["p"]) and "one matched pair" in r["note"]
    assert rt.sort_levels(["[128]", "[16]", "[64]"]) == ["[16]", "[64]", "[128]"]
    assert rt.sort_levels(["10", "2", "0.5"]) == ["0.5", "2", "10"]


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06
    assert st.holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(st.holm(p)[4])


def test_km_median_by_hand():
    # events at 3, 5, 8; one censored at 6: S(3) = 3/4, S(5) = 2/4 -> median 5
    assert st.km_median([3, 5, 6, 8], [1, 1, 0, 1])["median"] == 5
    # censored at 4 before events at 5, 7, 9: S(5) = 2/3, S(7) = 1/3 -> median 7
    assert st.km_median([4, 5, 7, 9], [0, 1, 1, 1])["median"] == 7
    m = st.km_median([2, 9, 9, 9], [1, 0, 0, 0])  # S never falls to 0.5
    assert math.isinf(m["median"])


def test_pairs_needed_matches_statsmodels_and_power_at_large_effects():
    from statsmodels.stats.power import TTestPower

    for dz, alpha in ((0.8, 0.05), (0.5, 0.05 / 6), (1.3, 0.01)):
        want = math.ceil(TTestPower().solve_power(effect_size=dz, alpha=alpha, power=0.8))
        assert st.pairs_needed(dz, alpha) == want
        assert st.paired_t_power(dz, want - 1, alpha) < 0.8 <= st.paired_t_power(dz, want, alpha)
    # dz = 8 at alpha 0.05/28: statsmodels' power is NaN there, the noncentral t tail is not
    crit = stats.t.isf(0.05 / 56, 3)
    assert st.paired_t_power(8, 4, 0.05 / 28) == pytest.approx(stats.nct.sf(crit, 3, 8 * 2), rel=1e-9)
    assert st.pairs_needed(8, 0.05 / 28) == 4
    assert math.isinf(st.pairs_needed(0.0, 0.05))


def tidy(rows):
    t = pd.DataFrame(rows)
    t["state"] = "finished"
    return t


def test_evaluate_comparisons_api():
    # factor A {x, y} x B {p, q} x seeds 0..3; A's effect is +0.1 at p and +0.3 at q
    rng = np.random.default_rng(7)
    rows = []
    for s in range(4):
        noise = rng.normal(0, 0.02, 4)
        for i, (a, b) in enumerate([("x", "p"), ("x", "q"), ("y", "p"), ("y", "q")]):
            eff = {"xp": 0.1, "xq": 0.3}.get(a + b, 0.0)
            rows.append({"A": a, "B": b, "seed": str(s), "acc": 0.5 + eff + noise[i]})
    runs = tidy(rows)
    cmps = [
        st.Comparison("A", "x", "y", "acc", name="x vs y"),
        st.Comparison("B", "p", "q", "acc"),
        st.Comparison("A", "x", "y", "acc", where=(("B", "p"),), name="x vs y at p"),
    ]
    out = st.evaluate_comparisons(runs, cmps, ["A", "B"], alpha=0.05, target_width=10.0)
    assert list(out["name"]) == ["x vs y", "B: p vs q, acc", "x vs y at p"]
    r = out.iloc[0]
    x = runs[runs.A == "x"].sort_values(["B", "seed"])["acc"].to_numpy()
    y = runs[runs.A == "y"].sort_values(["B", "seed"])["acc"].to_numpy()
    assert r["n_pairs"] == 8 and r["n_seeds"] == 4 and r["pairs_per_seed"] == 2
    assert r["mean_diff"] == pytest.approx((x - y).mean())
    t = stats.ttest_rel(x, y)
    assert r["p"] == pytest.approx(t.pvalue)
    m = 3
    adj = t.confidence_interval(1 - 0.05 / m)
    assert (r["adj_ci_low"], r["adj_ci_high"]) == pytest.approx((adj.low, adj.high))
    assert out["m"].iloc[0] == m
    assert r["decided"] and r["decided_by"] == "CI excludes 0" and r["holm_reject"]
    # a CI excluding 0 at the Bonferroni level implies Holm rejects
    assert all(out.loc[out["decided_by"] == "CI excludes 0", "holm_reject"])
    b = out.iloc[1]  # B has no effect: undecided by 0, but decided by the (loose) target width
    assert b["decided_by"] in ("CI narrower than target", "CI excludes 0")
    need = st.pairs_needed(b["cohen_dz"], 0.05 / m)
    assert b["seeds_needed"] == math.ceil(need / b["pairs_per_seed"])
    sub = out.iloc[2]  # subset: only B = p, so one pair per seed
    assert sub["n_pairs"] == 4 and sub["pairs_per_seed"] == 1 and sub["where"] == "B=p"
    strict = st.evaluate_comparisons(runs, cmps[1:2], ["A", "B"])
    assert (
        not strict["decided"].iloc[0] or strict["adj_ci_low"].iloc[0] > 0 or strict["adj_ci_high"].iloc[0] < 0
    )


def test_anova_and_marginal_means_by_hand():
    # balanced 2 x 3 design with 2 seeds (seed as a block)
    rng = np.random.default_rng(3)
    rows = [
        {
            "A": a,
            "B": b,
            "seed": str(s),
            "final_test_accuracy": 0.7 + 0.05 * (a == "y") + 0.02 * int(b) + rng.normal(0, 0.01),
        }
        for a in ("x", "y")
        for b in ("0", "1", "2")
        for s in range(2)
    ]
    runs = tidy(rows)
    y = runs["final_test_accuracy"].to_numpy()
    g = y.mean()

    def ss(cols):
        means = runs.groupby(cols)["final_test_accuracy"].transform("mean").to_numpy()
        return float(((means - g) ** 2).sum())

    ss_a, ss_b, ss_s = ss(["A"]), ss(["B"]), ss(["seed"])
    ss_ab = ss(["A", "B"]) - ss_a - ss_b
    ss_res = float(((y - g) ** 2).sum()) - ss_a - ss_b - ss_ab - ss_s
    df_res = 12 - 1 - 1 - 2 - 2 - 1
    out = factorial.anova(runs, ["A", "B"], "final_test_accuracy")
    t = out["table"].set_index("term")
    assert out["df_resid"] == df_res
    f_a = (ss_a / 1) / (ss_res / df_res)
    assert t.loc["A", "sum_sq"] == pytest.approx(ss_a)
    assert t.loc["A", "F"] == pytest.approx(f_a)
    assert t.loc["A", "p"] == pytest.approx(stats.f.sf(f_a, 1, df_res))
    assert t.loc["A x B", "sum_sq"] == pytest.approx(ss_ab)
    assert t.loc["A", "partial_eta_sq"] == pytest.approx(ss_a / (ss_a + ss_res))
    e = factorial.marginal_means(runs, ["A", "B"], "final_test_accuracy", ["A"]).set_index("A")
    se = math.sqrt(ss_res / df_res / 6)
    q = stats.t.ppf(0.975, df_res)
    for a in ("x", "y"):
        mean = runs.loc[runs.A == a, "final_test_accuracy"].mean()
        assert e.loc[a, "emm"] == pytest.approx(mean)
        assert e.loc[a, "se"] == pytest.approx(se)
        half = q * se / (mean * (1 - mean))  # an accuracy's CI: on the logit scale
        lo, hi = (1 / (1 + np.exp(-(np.log(mean / (1 - mean)) + h))) for h in (-half, half))
        assert (e.loc[a, "ci_low"], e.loc[a, "ci_high"]) == pytest.approx((lo, hi))
    cell = factorial.marginal_means(runs, ["A", "B"], "final_test_accuracy", ["A", "B"])
    assert len(cell) == 6 and cell["n"].tolist() == [2] * 6


def test_lr_decays_and_curve_measures():
    lr = np.array([0.5, 0.5, 0.475, 0.475, 0.45, 0.45])
    assert rt.lr_decays(curves_frame(np.linspace(0.7, 0.1, 6), lr)) == 2
    assert rt.lr_decays(curves_frame(np.linspace(0.7, 0.1, 6))) == 0
    assert rt.lr_varies(curves_frame(np.linspace(0.7, 0.1, 6), lr))


def test_seed_band_is_over_seeds_within_the_mask():
    # two settings (B) per seed: the band is over the seeds of the per-seed averages
    rows, curves = [], {}
    for s, shift in enumerate((0.0, 0.1, 0.2)):
        for b, base in (("p", 1.0), ("q", 3.0)):
            rid = f"r{s}{b}"
            rows.append({"run_id": rid, "A": "x", "B": b, "seed": str(s)})
            curves[rid] = pd.DataFrame({"epoch": [0, 1], "train_loss": [base + shift] * 2})
    runs = tidy(rows)
    band = figures.seed_band(runs, curves, runs["A"] == "x", "train_loss")
    per_seed = np.array([2.0, 2.1, 2.2])  # mean over B of each seed
    half = stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / math.sqrt(3)
    assert band["n_seeds"] == 3 and band["n_runs"] == 6
    assert band["mean"] == pytest.approx([2.1, 2.1])
    assert band["hi"] - band["mean"] == pytest.approx([half, half])
    only_p = figures.seed_band(runs, curves, runs["B"] == "p", "train_loss")
    assert only_p["mean"] == pytest.approx([1.1, 1.1])


def test_median_run_per_level():
    runs = tidy(
        [
            {"run_id": f"r{i}", "A": "x", "seed": str(i), "final_test_accuracy": a}
            for i, a in enumerate([0.9, 0.5, 0.7, 0.8])
        ]
    )
    r, n = figures.median_run(runs, "A", "x")
    assert r["run_id"] == "r2" and n == 4  # sorted 0.5, 0.7, 0.8, 0.9: the lower middle


def _judged(runs, factors, study):
    cl = claims.tutorial_claims(runs, factors, study)
    fam = [c.comparison for c in cl]
    res = st.evaluate_comparisons(runs, fam, factors)
    idx = {c.hypothesis(): i for i, c in enumerate(fam)}
    return {
        c["claim"] + c["metric"]: c
        for c in claims.judge(cl, lambda cmp: st.orient(res.iloc[idx[cmp.hypothesis()]], cmp), 0.05, set())
    }


def test_claims_follow_the_numbers():
    train = {"plateau": [0.10, 0.12, 0.08, 0.11], "constant": [0.20, 0.19, 0.25, 0.18]}
    acc = {"[4]": [0.80, 0.82, 0.79, 0.85], "[64]": [0.95, 0.90, 0.97, 0.93]}
    rows = [
        {
            "lr_schedule.name": sch,
            "model.hidden_sizes": hid,
            "seed": str(s),
            "final_train_loss": train[sch][s] + (0.01 if hid == "[4]" else 0.0),
            "final_test_accuracy": acc[hid][s] - (0.0 if sch == "plateau" else 0.005 * s),
            "final_test_loss": 0.3,
            "epochs_to_threshold": 5.0,
        }
        for sch in ("constant", "plateau")
        for hid in ("[64]", "[4]")
        for s in range(4)
    ]
    runs = pd.DataFrame(rows).assign(state="finished", ett_status="reached")
    factors = ["lr_schedule.name", "model.hidden_sizes"]
    got = _judged(runs, factors, "tutorial001_blobs")
    plateau = got["plateau decay reaches a lower final training lossfinal_train_loss"]
    x = np.array(train["plateau"] * 2) + np.repeat([0.0, 0.01], 4)
    y = np.array(train["constant"] * 2) + np.repeat([0.0, 0.01], 4)
    assert plateau["n_pairs"] == 8 and plateau["verdict"] == "yes"
    assert plateau["p"] == pytest.approx(stats.ttest_rel(x, y).pvalue, rel=1e-9)
    wide = _judged(runs, factors, "tutorial002_quadrant")[
        "wider hidden layers fit the quadrant task betterfinal_test_accuracy"
    ]
    assert (wide["level_a"], wide["level_b"]) == ("[64]", "[4]") and wide["verdict"] == "yes"
    # reverse the data: the same code now answers "no"
    runs["final_train_loss"] = -runs["final_train_loss"]
    got = _judged(runs, factors, "tutorial001_blobs")
    assert got["plateau decay reaches a lower final training lossfinal_train_loss"]["verdict"].startswith(
        "no"
    )


def test_alias_params_are_not_factors():
    children = pd.DataFrame(
        {
            "params.activation.name": ["relu", "leaky_relu", "tanh"] * 2,
            "params.activation.alpha": [None, "0.01", None] * 2,
            "params.seed": ["0"] * 3 + ["1"] * 3,
            "params.tracking.run_name": [f"r{i}" for i in range(6)],
        }
    )
    factors, aliases = rt.find_factors(children)
    assert factors == ["activation.name"]
    assert aliases == {"activation.alpha": "activation.name"}


def test_deciding_runs_picks_the_run_that_stands_for_each_config():
    """Of a config's latest identity (run_key) the FINISHED run, else the latest; an older
    identity (the data or code changed since) does not count; runs without a config (the
    parent) are kept."""
    from types import SimpleNamespace as NS

    def run(rid, t, chash, key, status):
        tags = {"config_hash": chash, "run_key": key} if chash else {}
        return NS(info=NS(run_id=rid, start_time=t, status=status), data=NS(tags=tags))

    runs = [
        run("a", 1, "h1", "k1", "FINISHED"),
        run("b", 3, "h1", "k1", "KILLED"),
        run("c", 2, "h2", "k2", "FINISHED"),
        run("d", 4, "h2", "k2b", "FAILED"),
        run("e", 5, "h3", "k3", "FAILED"),
        run("f", 6, "h3", "k3", "FAILED"),
        run("p", 0, None, None, "FINISHED"),
    ]
    assert sorted(r.info.run_id for r in tracking.deciding_runs(runs)) == ["a", "d", "f", "p"]


def test_report_package_never_imports_mlflow():
    pkg = Path(build.__file__).parent
    for path in sorted(pkg.glob("*.py")):
        text = path.read_text()
        assert "import mlflow" not in text and "from mlflow" not in text, path.name


# --------------------------------------------------------------------------------------
# what the figures show, read off the figures themselves


def test_median_run_ties_broken_by_test_loss():
    # five runs, four at the same accuracy: the middle of (acc, higher loss first) order
    accs = [0.9, 0.9, 0.9, 0.9, 0.5]
    losses = [0.30, 0.10, 0.40, 0.20, 0.90]
    runs = tidy(
        [
            {"run_id": f"r{i}", "A": "x", "seed": str(i), "final_test_accuracy": a, "final_test_loss": lo}
            for i, (a, lo) in enumerate(zip(accs, losses))
        ]
    )
    r, n = figures.median_run(runs, "A", "x")
    # order: r4 (0.5), then acc 0.9 by loss 0.40, 0.30, 0.20, 0.10 -> r2, r0, r3, r1
    assert n == 5 and r["run_id"] == "r0"


def _two_factor_study(lr_decays=False):
    """Runs A {x, y} x B {p, q} x seeds 0..2 with curves: every A x B cell at its own level."""
    rows, curves = [], {}
    for a, da in (("x", 0.0), ("y", 0.2)):
        for b, db in (("p", 0.0), ("q", 0.5)):
            for s in range(3):
                rid = f"{a}{b}{s}"
                loss = (0.7 - 0.3 * np.linspace(0, 1, EPOCHS)) * (1 + da + db) + 0.01 * s
                lr = np.where(np.arange(EPOCHS) < 10 + 5 * s, 0.5, 0.25) if lr_decays else None
                f = curves_frame(loss, lr)
                f["test_accuracy"] = 0.6 + 0.3 * np.linspace(0, 1, EPOCHS) - da / 4 - db / 4 + 0.01 * s
                curves[rid] = f
                rows.append(
                    {
                        "run_id": rid,
                        "A": a,
                        "B": b,
                        "seed": str(s),
                        "final_test_accuracy": float(f["test_accuracy"].iloc[-1]),
                        "final_test_loss": float(f["test_loss"].iloc[-1]),
                    }
                )
    return tidy(rows), curves


def test_heatmap_panels_share_one_colour_scale(tmp_path, drawn):
    runs, _ = _two_factor_study()
    runs["C"] = np.where(runs["seed"] == "0", "u", "v")  # a third factor: three panels
    figures.fig_heatmap(runs, ["A", "B", "C"], tmp_path / "h.png")
    images = [im for ax in drawn[0].axes for im in ax.get_images()]
    assert len(images) == 3
    assert len({im.get_clim() for im in images}) == 1
    cells = np.concatenate([np.ma.compressed(im.get_array()) for im in images])
    assert images[0].get_clim() == (pytest.approx(cells.min()), pytest.approx(cells.max()))


def test_per_setting_panels_hold_the_other_factors_fixed(tmp_path, drawn):
    runs, curves = _two_factor_study()
    path = figures.fig_curves_by_setting(runs, curves, ["A", "B"], "A", 0.35, tmp_path / "s.png")
    check_png(path)
    axes = [ax for ax in drawn[0].axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]
    assert titles == [
        "B=p: train loss ↓",
        "B=p: test accuracy ↑",
        "B=q: train loss ↓",
        "B=q: test accuracy ↑",
    ]
    loss, acc = axes[0::2], axes[1::2]
    assert len({ax.get_ylim() for ax in loss}) == 1 and len({ax.get_ylim() for ax in acc}) == 1
    # the B=q panel's x line is the mean over the seeds of the x-q runs only
    x_line = next(ln for ln in axes[2].get_lines() if ln.get_label().startswith("x "))
    want = np.mean([curves[f"xq{s}"]["train_loss"] for s in range(3)], axis=0)
    assert x_line.get_ydata() == pytest.approx(want)


def test_curves_every_level_visible_and_plain_log_labels(tmp_path, drawn):
    runs, curves = _two_factor_study(lr_decays=True)
    for rid in [r for r in curves if r.startswith("y")]:  # level y drawn exactly under level x
        curves[rid] = curves["x" + rid[1:]].copy()
    figures.fig_curves(runs, curves, ["A", "B"], 0.35, tmp_path / "c.png", show_lr=True)
    fig = drawn[0]
    fig.canvas.draw()
    axes = np.array(fig.axes).reshape(2, 4)
    x, y = (ln for ln in axes[0, 0].get_lines() if ln.get_label()[0] in "xy")
    assert x.get_linestyle() != y.get_linestyle() and x.get_marker() != y.get_marker()
    assert x.get_markevery() != y.get_markevery()  # the markers of coinciding lines interleave
    assert y.get_label().endswith("= x")
    for ax in axes[:, :2].ravel():  # loss panels: log axes labelled 0.5, 0.3, not 5x10^-1
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert ax.get_yscale() == "log" and len(labels) >= 2
        assert not any("$" in t or "times" in t for t in labels), labels
    # learning rate: every seed's own schedule drawn (3 seeds x 2 levels) besides the means
    lr_ax = axes[0, 3]
    steps = [ln for ln in lr_ax.get_lines() if ln.get_linewidth() < 1]
    assert len(steps) == 6
    assert {tuple(ln.get_ydata()[[0, -1]]) for ln in steps} == {(0.5, 0.25)}


def test_decision_boundaries_paste_each_runs_plot_pixel_for_pixel(tmp_path, monkeypatch):
    import PIL.Image

    rng = np.random.default_rng(3)
    child = rng.integers(0, 256, size=(320, 384, 3), dtype=np.uint8)  # a run's plot's size
    PIL.Image.fromarray(child).save(tmp_path / "child.png")
    monkeypatch.setattr(figures.tracking, "download_artifact", lambda *a: tmp_path / "child.png")
    runs, _ = _two_factor_study()
    path = figures.fig_boundaries(runs, ["A", "B"], None, tmp_path, tmp_path / "b.png")
    out = np.asarray(PIL.Image.open(path).convert("RGB"))
    check_png(path)
    # find the first pasted copy by its top-left pixel row and compare the whole block
    hits = [
        (i, j)
        for i in range(out.shape[0] - 320 + 1)
        for j in np.nonzero((out[i, :, :] == child[0, 0]).all(1))[0]
        if j + 384 <= out.shape[1] and (out[i, j : j + 384] == child[0]).all()
    ]
    assert len(hits) == 4  # 2 factors x 2 levels
    for i, j in hits:
        assert (out[i : i + 320, j : j + 384] == child).all()
