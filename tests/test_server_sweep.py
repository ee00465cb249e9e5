"""Sweeps, reports and reproduction through a real MLflow server with a PostgreSQL backend,
and what happens when that server goes away mid-sweep."""

import re
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from conftest import BIN, client_for, run_cli

from shallownet import net, server

pytestmark = pytest.mark.slow

KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr")
FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def family(uri, study_sweep=None):
    client = client_for(uri)
    exp = client.get_experiment_by_name("shallownet")
    runs = client.search_runs([exp.experiment_id], "", max_results=1000)
    parents = [r for r in runs if r.data.tags.get("shallownet.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("shallownet.role") == "child"]
    if study_sweep:
        parents = [p for p in parents if p.data.tags["sweep_id"] == study_sweep]
        children = [c for c in children if c.data.tags.get("sweep_id") == study_sweep]
    return client, parents, children


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    wd = tmp_path_factory.mktemp("srv")
    state, proc = server.start(wd, backend="postgres", port=net.free_port(), durable=False)
    box = {"state": state, "proc": proc, "wd": wd}
    try:
        yield box
    finally:
        server.stop(wd, server=box["proc"], postgres=state["postgres"])


def test_sweep_report_reproduce_through_the_server(pg, tmp_path):
    uri = pg["state"]["tracking_uri"]
    res = run_cli(
        [
            "shallownet-train",
            "-m",
            "dataset=quadrant",
            "activation=tanh",
            "seed=range(8)",
            "model.hidden_sizes=[8]",
            "train.epochs=120",
            "tracking.max_points=120",
            "tracking.log_model=false",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={tmp_path}/a",
        ],
        tmp_path,
        env=FAST,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    sweep_id = re.search(r"sweep (\w+) \(", res.stdout).group(1)
    client, (parent,), children = family(uri, sweep_id)
    assert len(children) == 8 and parent.data.metrics["jobs_finished"] == 8
    assert len({len(c.data.params) for c in children}) == 1
    for c in children:
        assert c.info.status == "FINISHED"
        for key in KEYS:
            assert len(client.get_metric_history(c.info.run_id, key)) == 120
        arts = {a.path for a in client.list_artifacts(c.info.run_id)}
        assert {"curves.parquet", "config.yaml", "plots"} <= arts  # served artifacts

    res = run_cli(
        ["shallownet-report", "--sweep", sweep_id, "--tracking-uri", uri, "--out", str(tmp_path / "report")],
        tmp_path,
        env=FAST,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000
    assert any(a.path == "report" for a in client.list_artifacts(parent.info.run_id))

    res = run_cli(
        ["shallownet-reproduce", children[0].info.run_id, "--tracking-uri", uri], tmp_path, env=FAST
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("identical"), res.stdout + res.stderr


def test_submitit_local_against_the_server(pg, tmp_path):
    uri = pg["state"]["tracking_uri"]
    res = run_cli(
        [
            "shallownet-train",
            "-m",
            "hydra/launcher=local",
            "dataset=xor",
            "activation=sigmoid",
            "train.loss=mse",
            "lr_schedule.lr=1.0",
            "seed=0,1",
            "train.epochs=300",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={tmp_path}/s",
        ],
        tmp_path,
        env=FAST,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    sweep_id = re.search(r"sweep (\w+) \(", res.stdout).group(1)
    client, (parent,), children = family(uri, sweep_id)
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    assert parent.data.metrics["jobs_finished"] == 2
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(f"runs:/{children[0].info.run_id}/model")
    proba = model.predict(pd.DataFrame([[0.0, 1.0], [1.0, 1.0]], columns=["x0", "x1"]))
    assert proba.shape == (2, 2) and np.all((proba > 0) & (proba < 1))


def test_server_outage_fails_fast_and_resume_completes_the_rest(pg, tmp_path):
    uri = pg["state"]["tracking_uri"]
    epochs = 20000  # ~1 s of training per job: the server goes down while the third one runs
    args = [
        str(BIN / "shallownet-train"),
        "-m",
        "dataset=quadrant",
        "activation=relu",
        "model.hidden_sizes=[8]",
        "seed=range(6)",
        f"train.epochs={epochs}",
        "hydra.launcher.n_jobs=1",
        "tracking.log_model=false",
        f"tracking.uri={uri}",
        "tracking.retries=0",
        "tracking.timeout=5",
    ]
    proc = subprocess.Popen(
        [*args, f"hydra.sweep.dir={tmp_path}/b1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 300
        sweep_id = None
        while time.time() < deadline:  # wait for two finished jobs, then pull the plug
            time.sleep(0.25)
            client = client_for(uri)
            exp = client.get_experiment_by_name("shallownet")
            if exp is None:  # the sweep has not created it yet
                continue
            done = client.search_runs(
                [exp.experiment_id],
                "attributes.status = 'FINISHED' and "
                "params.`lr_schedule.lr` = '0.1' and params.`activation.name` = 'relu'"
                f" and params.`train.epochs` = '{epochs}'",
            )
            if len(done) >= 2:
                sweep_id = done[0].data.tags["sweep_id"]
                break
        assert sweep_id, "the sweep never finished two jobs"
        t_stop = time.time()
        server.stop_mlflow_server(pg["proc"])
        out, _ = proc.communicate(timeout=300)
        after = time.time() - t_stop
    finally:
        proc.kill()
    assert proc.returncode == 3, out  # the store failed: the exit code says so
    failed = [line for line in out.splitlines() if re.match(r"\[\d/6\] .*: TRACKING_ERROR", line)]
    assert len(failed) >= 3 and len(re.findall(r"^\[\d/6\] ", out, re.M)) == 6, out
    assert after < 120, f"the remaining jobs took {after:.0f}s to give up"
    assert "could not close parent run" in out and "Traceback" not in out

    # restart the server on the same backend store and run the same sweep again: the runs the
    # outage left RUNNING (their processes are gone) are closed, their configs trained again
    port = pg["state"]["port"]
    pg["proc"] = server.start_mlflow_server(pg["state"]["backend_uri"], pg["state"]["artifacts"], port)
    client, _, children = family(uri, sweep_id)
    finished_before = sum(c.info.status == "FINISHED" for c in children)
    assert 2 <= finished_before <= 6 - len(failed)
    res = subprocess.run(
        [*args, f"hydra.sweep.dir={tmp_path}/b2"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"skipped {finished_before} this session" in res.stdout, res.stdout
    client, (parent,), children = family(uri, sweep_id)
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(int(c.data.params["seed"]) for c in finished) == list(range(6))
    assert not [c for c in children if c.info.status == "RUNNING"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 6
