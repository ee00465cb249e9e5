"""One tracked run end to end: what lands in the MLflow store, bad inputs, faults."""

import signal
import socket
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from conftest import BIN, client_for, run_cli, runs_of

from shallownet import config, datasets
from shallownet.record.points import recorded_steps, subsample_steps
from shallownet.record.tracking import ensure_experiment
from shallownet.model import MLP, train
from shallownet.job import RunError
from shallownet.sweep import preflight

pytestmark = pytest.mark.slow

QUICK = [
    "dataset=quadrant",
    "activation=relu",
    "initializer=he_normal",
    "lr_schedule.lr=0.5",
    "model.hidden_sizes=[8]",
]


def test_single_run_records_everything(store):
    cwd, uri = store
    res = run_cli(["shallownet-train", *QUICK, "train.epochs=150", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stderr
    assert "finished" in res.stdout
    (run,) = runs_of(uri)
    client = client_for(uri)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "quadrant-relu-he_normal-h8-lr0.5-s0"
    p = run.data.params
    assert p["activation.name"] == "relu" and p["lr_schedule.lr"] == "0.5"
    assert p["model.hidden_sizes"] == "[8]" and p["train.epochs"] == "150" and p["seed"] == "0"
    assert p["dataset.name"] == "quadrant" and p["initializer.name"] == "he_normal"
    assert "tracking.uri" in p and "train.batch_size" in p
    for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr"):
        hist = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in sorted(hist, key=lambda m: m.step)] == list(range(150)), key
    m = run.data.metrics
    for key in (
        "final_train_loss",
        "final_test_loss",
        "final_train_accuracy",
        "final_test_accuracy",
        "test_auc",
        "epochs_completed",
        "train_seconds",
    ):
        assert key in m, key
    assert m["epochs_completed"] == 150 and m["final_test_accuracy"] > 0.8
    t = run.data.tags
    assert len(t["config_hash"]) == 64 and len(t["data_fingerprint"]) == 64
    assert t["git_commit"] and t["git_dirty"] in ("true", "false", "unknown")
    assert t["n_params"] == str(2 * 8 + 8 + 8 + 1) and t["n_train"] == "160" and t["n_test"] == "40"
    assert "activation=relu" in t["overrides"] and "version.numpy" in t
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"curves.parquet", "config.yaml", "environment.txt", "plots"} <= names
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/loss_curve.png", "plots/decision_boundary.png"}
    local = client.download_artifacts(run.info.run_id, "curves.parquet", str(cwd))
    curves = pd.read_parquet(local)
    assert len(curves) == 150 and curves["train_loss"].dtype == np.float64
    # the metric history is the curve itself (exact float64 at every logged step)
    hist = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train_loss")}
    assert all(hist[s] == curves["train_loss"][s] for s in range(150))

    # the pyfunc model predicts what the trained net predicts: retrain it here (deterministic)
    import mlflow.pyfunc

    c = config.validate(
        dict(
            __import__("omegaconf").OmegaConf.to_container(
                __import__("omegaconf").OmegaConf.load(
                    client.download_artifacts(run.info.run_id, "config.yaml", str(cwd))
                )
            )
        )
    )
    split = datasets.load(c["dataset"])
    assert split.fingerprint == t["data_fingerprint"]
    net = MLP([2, 8, 1], "relu", "sigmoid", "he_normal", seed=0)
    hist = train(net, split.X_train, split.y_train, epochs=150, lr=config.schedule_spec(c))
    np.testing.assert_array_equal(hist.loss, curves["train_loss"])
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    proba = loaded.predict(pd.DataFrame(split.X_test, columns=["x0", "x1"]))  # the signature's names
    assert list(proba.columns) == ["0", "1"]  # every class's probability
    np.testing.assert_allclose(proba["1"], net.forward(split.X_test)[:, 0], rtol=0, atol=1e-15)


def test_long_runs_log_at_most_max_points(store):
    cwd, uri = store
    res = run_cli(
        [
            "shallownet-train",
            *QUICK,
            "train.epochs=1000",
            "tracking.max_points=40",
            "tracking.log_model=false",
            "tracking.log_plots=false",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert res.returncode == 0, res.stderr
    (run,) = runs_of(uri)
    client = client_for(uri)
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "test_loss"))
    assert steps == list(subsample_steps(1000, 40)) and len(steps) == 40
    assert steps[0] == 0 and steps[-1] == 999
    curves = pd.read_parquet(client.download_artifacts(run.info.run_id, "curves.parquet", str(cwd)))
    assert len(curves) == 1000  # full resolution in the artifact


BAD = [
    (["activation.alph=0.1"], "alph"),  # typo in a key
    (["train.epochs=many"], "train.epochs"),  # wrong type
    (["activation=swish"], "activation"),  # unknown group option
    (["lr_schedule.lr=0"], "lr_schedule.lr"),
    (["lr_schedule.lr=-0.5"], "lr_schedule.lr"),
    (["train.epochs=0"], "train.epochs"),
    (["dataset.test_size=1.5"], "test_size"),
    (["dataset.test_size=0"], "test_size"),
    (["dataset=csv", "dataset.path=missing.csv", "dataset.target=y"], "missing.csv"),
    (["model.output=softmax"], "train.loss"),
    (["dataset.unknown_key=3"], "unknown_key"),
]


def refused(args):
    """The preflight's one line for a command line ``shallownet-train`` must refuse: the
    RunError(2) its entry point prints as one line and exits with, before Hydra runs."""
    with pytest.raises(RunError) as info:
        preflight.check(args)
    err = info.value
    assert err.code == 2 and err.status == "CONFIG_ERROR"
    assert len(err.message.splitlines()) == 1 and "Traceback" not in err.message, err.message
    return err.message


@pytest.mark.parametrize("overrides,needle", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_config_fails_fast_before_any_run(store, overrides, needle, monkeypatch):
    """In-process: the preflight refuses each value, from the run's working directory (a
    relative CSV path is looked up there), and nothing is created in it."""
    cwd, uri = store
    monkeypatch.chdir(cwd)
    t0 = time.perf_counter()
    line = refused([*overrides, f"tracking.uri={uri}"])
    elapsed = time.perf_counter() - t0
    assert needle in line, line
    assert not (cwd / "mlflow.db").exists()  # no store, let alone a run, was created
    assert sorted(p.name for p in cwd.iterdir()) == []
    print(f"{overrides}: refused in {elapsed:.2f}s")


@pytest.mark.parametrize(
    "overrides,needle",
    [BAD[0], BAD[8]],  # Hydra's own compose error, and shallownet's check of a relative CSV path
    ids=["hydra-compose", "csv-path"],
)
def test_bad_config_exits_2_in_one_line_from_the_command_line(store, overrides, needle, monkeypatch):
    """The process: shallownet-train prints the preflight's line, exits 2 with no traceback, and
    creates no store."""
    cwd, uri = store
    t0 = time.perf_counter()
    res = run_cli(["shallownet-train", *overrides, f"tracking.uri={uri}"], cwd)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert needle in line, res.stderr
    monkeypatch.chdir(cwd)  # the line is the preflight's, word for word
    assert line == f"shallownet: {refused([*overrides, f'tracking.uri={uri}'])}"
    assert "Traceback" not in res.stdout + res.stderr
    assert not (cwd / "mlflow.db").exists()  # no store, let alone a run, was created
    print(f"{overrides}: exit {res.returncode} in {elapsed:.2f}s")


def test_bad_messages_name_the_valid_choices(store):
    _, uri = store
    line = refused(["activation=swish", f"tracking.uri={uri}"])
    assert "relu" in line and "leaky_relu" in line
    line = refused(["activation.alph=0.1", f"tracking.uri={uri}"])
    assert "valid keys: alpha, name" in line
    line = refused(["dataset.nosie=0.1", "dataset=spiral", f"tracking.uri={uri}"])
    assert "nosie" in line and "noise" in line
    line = refused(["train.loss=hinge", f"tracking.uri={uri}"])
    assert "bce" in line and "cross_entropy" in line


@pytest.mark.parametrize(
    "content,needle",
    [
        ("a,b,y\n1,x,0\n2,3,1\n3,4,0\n4,5,1\n", "non-numeric"),
        ("a,b,y\n1,2,1\n2,3,1\n3,4,1\n4,5,1\n", "class"),
    ],
)
def test_bad_csv_data(store, content, needle):
    cwd, uri = store
    (cwd / "data.csv").write_text(content)
    res = run_cli(
        [
            "shallownet-train",
            "dataset=csv",
            "dataset.path=data.csv",
            "dataset.target=y",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert res.returncode == 2 and needle in res.stderr.lower(), res.stderr
    assert not (cwd / "mlflow.db").exists()


def test_csv_dataset_trains(store):
    cwd, uri = store
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    pd.DataFrame(
        {"f1": X[:, 0], "f2": X[:, 1], "f3": X[:, 2], "label": np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")}
    ).to_csv(cwd / "d.csv", index=False)
    res = run_cli(
        [
            "shallownet-train",
            "dataset=csv",
            "dataset.path=d.csv",
            "dataset.target=label",
            "dataset.positive=yes",
            "train.epochs=300",
            "lr_schedule.lr=0.5",
            "tracking.log_model=false",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert res.returncode == 0, res.stderr
    (run,) = runs_of(uri)
    assert run.data.metrics["final_test_accuracy"] > 0.85
    assert run.data.tags["n_train"] == "96"


def test_divergence_fails_the_run_and_keeps_its_metrics(store):
    cwd, uri = store
    res = run_cli(
        [
            "shallownet-train",
            *QUICK,
            "lr_schedule.lr=1000",
            "train.epochs=500",
            "model.hidden_sizes=[16]",
            "initializer=small_random",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert res.returncode == 1
    lines = [l for l in res.stderr.splitlines() if l.startswith("shallownet:")]
    assert len(lines) == 1 and "diverged at epoch" in lines[0], res.stderr
    (run,) = runs_of(uri)
    assert run.info.status == "FAILED"
    epoch = int(run.data.tags["diverged_at_epoch"])
    assert 0 < epoch < 500 and "diverged" in run.data.tags["failure_reason"]
    hist = client_for(uri).get_metric_history(run.info.run_id, "train_loss")
    # the planned grid of a 500-epoch run (200 points) up to the divergence, and its last epoch
    assert sorted(m.step for m in hist) == list(recorded_steps(500, epoch, 200))
    assert sorted(m.step for m in hist)[-1] == epoch - 1
    assert run.data.metrics["epochs_completed"] == epoch


def test_sigterm_ends_the_run_killed_with_metrics_so_far(store):
    cwd, uri = store
    ensure_experiment(uri, "shallownet")  # create the store here: the test polls it below
    proc = subprocess.Popen(
        [str(BIN / "shallownet-train"), *QUICK, "train.epochs=2000000", f"tracking.uri={uri}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(1.0)
            if runs_of(uri, filter_string="attributes.status = 'RUNNING'"):
                break
        time.sleep(2.0)  # let it train a little
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err  # 128 + SIGTERM, as a shell reports it
    (run,) = runs_of(uri)
    assert run.info.status == "KILLED"
    assert "interrupted at epoch" in run.data.tags["failure_reason"]
    n = int(run.data.metrics["epochs_completed"])
    assert n > 0
    steps = sorted(m.step for m in client_for(uri).get_metric_history(run.info.run_id, "train_loss"))
    assert steps == list(recorded_steps(2000000, n, 200)) and steps[-1] == n - 1


def test_unreachable_tracking_server_fails_fast_and_clearly(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t0 = time.perf_counter()
    res = run_cli(
        ["shallownet-train", *QUICK, "train.epochs=5", f"tracking.uri=http://127.0.0.1:{port}"],
        tmp_path,
        timeout=120,
    )
    assert time.perf_counter() - t0 < 60
    assert res.returncode == 3
    assert "unreachable" in res.stderr and "Traceback" not in res.stderr


def test_a_long_run_shows_its_loss_in_the_store_while_it_trains(store):
    """The run's pulse sends the points measured so far every few seconds: the UI (which
    reads the store) shows the curve of a run that is still RUNNING."""
    cwd, uri = store
    ensure_experiment(uri, "shallownet")
    proc = subprocess.Popen(
        [
            str(BIN / "shallownet-train"),
            *QUICK,
            "train.epochs=2000000",
            "tracking.log_model=false",
            f"tracking.uri={uri}",
        ],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client, deadline, live = client_for(uri), time.time() + 120, []
        while not live and time.time() < deadline:
            time.sleep(0.5)
            running = runs_of(uri, filter_string="attributes.status = 'RUNNING'")
            if running:
                live = client.get_metric_history(running[0].info.run_id, "train_loss")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert live and all(m.step < 2000000 for m in live), err
    assert "shallownet: epoch " in err and " ETA " in err  # its progress line on the console
    (run,) = runs_of(uri)
    assert run.info.status == "KILLED" and proc.returncode == 130


def test_help_is_written_for_this_project(tmp_path):
    res = run_cli(["shallownet-train", "--help"], tmp_path)
    assert res.returncode == 0
    assert "Exit codes: 0 finished" in res.stdout and "hparams_search=adaptive" in res.stdout
    assert "activation: identity, leaky_relu, relu, sigmoid, tanh" in res.stdout
    res = run_cli(["shallownet-reproduce", "--help"], tmp_path)
    assert res.returncode == 0 and "exit codes: 0 identical" in res.stdout and "``" not in res.stdout


def test_a_stop_while_the_data_loads_waits_for_the_data_and_ends_the_run_interrupted(monkeypatch):
    """Loading the data may import scikit-learn, and a KeyboardInterrupt raised inside a C
    extension's import surfaces as ImportError ("initialization failed"): a Ctrl-C there made a
    run exit 1, not 130. A stop that comes while the data loads now waits for it, then
    interrupts the run before it exists."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from shallownet import train
    from shallownet.job import Job
    from shallownet.stop import STOP

    with initialize_config_module(config_module=config.CONF_MODULE, version_base="1.3"):
        cfg = OmegaConf.to_container(compose("train", overrides=["dataset=quadrant"]), resolve=True)
    loaded, load = [], datasets.load

    def load_with_a_stop(d):
        STOP._handle(signal.SIGINT, None)  # the signal's handler runs while the data loads
        loaded.append(load(d))
        return loaded[-1]

    monkeypatch.setattr(STOP, "signum", None)  # restored (no stop) when the test ends
    monkeypatch.setattr(datasets, "load", load_with_a_stop)
    with pytest.raises(KeyboardInterrupt):
        train.prepare(cfg, Job())
    assert len(loaded) == 1 and len(loaded[0].y_test) == 40  # the data loaded whole, then the stop
    assert STOP.requested and STOP.exit_code == 130
