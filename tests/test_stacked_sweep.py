"""Seeds as a batch axis: a sweep's jobs that differ only in ``seed`` train stacked in one job
(``stack_seeds``), each seed still its own MLflow run, recorded exactly as a job of its own
would record it; the record's guarantees (SIGTERM, kill -9 and resume, divergence) hold for
every run of a stacked job."""

import os
import re
import signal
import time

import numpy as np
import pytest
from conftest import client_for, run_cli
from test_faults import (
    finished_per_config,
    gone,
    group,
    killed_jobs_of_a_stopped_sweep,
    read_until,
    ready,
    running,
    start,
    store_runs,
    sweep_args,
    wait_for,
)

from shallownet.stacking import runs_in, stack_seeds


def test_jobs_that_differ_only_in_seed_are_merged_evenly_in_grid_order():
    grid = [[f"activation={a}", f"seed={s}", "train.epochs=9"] for a in ("tanh", "relu") for s in range(6)]
    jobs = stack_seeds(grid, 4)
    assert jobs == [
        ["activation=tanh", "seeds=[0,1,2]", "train.epochs=9"],
        ["activation=tanh", "seeds=[3,4,5]", "train.epochs=9"],
        ["activation=relu", "seeds=[0,1,2]", "train.epochs=9"],
        ["activation=relu", "seeds=[3,4,5]", "train.epochs=9"],
    ]
    assert [runs_in(j) for j in jobs] == [3, 3, 3, 3]
    assert stack_seeds(grid, 1) == grid
    assert stack_seeds([["activation=tanh"], ["activation=relu"]], 5) == [
        ["activation=tanh"],
        ["activation=relu"],
    ]
    assert stack_seeds([[f"seed={s}"] for s in range(7)], 5) == [["seeds=[0,1,2,3]"], ["seeds=[4,5,6]"]]


def _children(uri):
    """{config_hash: run} of the store's child runs."""
    return {r.data.tags["config_hash"]: r for r in store_runs(uri, "child")}


@pytest.mark.slow
def test_a_stacked_sweep_records_what_a_job_per_seed_records(tmp_path):
    """The same sweep, a job per seed and 3 seeds per job: the same runs, names, params,
    overrides, every point of every curve, the same files."""
    grid = ("activation=relu,tanh", "seed=range(3)", "train.epochs=300")
    stores = {}
    for per_job in (1, 3):
        cwd = tmp_path / f"per{per_job}"
        cwd.mkdir()
        uri = f"sqlite:///{cwd}/mlflow.db"
        res = run_cli(sweep_args(uri, *grid, f"stack_seeds={per_job}"), cwd)
        assert res.returncode == 0, res.stdout + res.stderr
        assert len(re.findall(r"^\[\d/6\] activation=\w+ seed=\d: FINISHED", res.stdout, re.M)) == 6
        stores[per_job] = uri
    alone, stacked = _children(stores[1]), _children(stores[3])
    assert alone.keys() == stacked.keys() and len(alone) == 6
    a_client, s_client = client_for(stores[1]), client_for(stores[3])
    for chash, a in alone.items():
        s = stacked[chash]
        assert s.info.status == a.info.status == "FINISHED"
        assert s.info.run_name == a.info.run_name
        same_params = {k: v for k, v in a.data.params.items() if k != "tracking.uri"}
        assert {k: v for k, v in s.data.params.items() if k != "tracking.uri"} == same_params
        assert "seeds" not in s.data.params and "stack_seeds" not in s.data.params
        assert s.data.tags["overrides"].split()[:2] == a.data.tags["overrides"].split()[:2]
        assert s.data.tags["mlflow.parentRunId"] == store_runs(stores[3], "parent")[0].info.run_id
        for key in ("train_loss", "test_accuracy", "lr"):
            a_points = [(m.step, m.value) for m in a_client.get_metric_history(a.info.run_id, key)]
            s_points = [(m.step, m.value) for m in s_client.get_metric_history(s.info.run_id, key)]
            assert s_points == a_points and len(s_points) > 100
        files = {f.path for f in s_client.list_artifacts(s.info.run_id)}
        assert files == {f.path for f in a_client.list_artifacts(a.info.run_id)}
        assert s.data.metrics["final_test_accuracy"] == a.data.metrics["final_test_accuracy"]
    (parent,) = store_runs(stores[3], "parent")
    assert parent.data.metrics["jobs_total"] == parent.data.metrics["jobs_finished"] == 6


@pytest.mark.slow
def test_a_seed_that_diverges_in_a_stacked_job_stops_alone(store):
    """lr 3 with a 1.5x divergence limit: seeds 0 and 3 diverge (at epochs 34 and 3 when
    trained alone), the other four of the same stacked job go on and FINISH."""
    cwd, uri = store
    args = sweep_args(
        uri, "lr_schedule.lr=3.0", "train.divergence_factor=1.5", "train.epochs=300", "seed=range(6)"
    )
    res = run_cli([*args, "stack_seeds=6"], cwd)
    assert res.returncode == 0, res.stdout + res.stderr  # divergence is a result, not an error
    runs = {int(r.data.params["seed"]): r for r in store_runs(uri, "child")}
    assert sorted(runs) == list(range(6))
    diverged = {
        s: int(r.data.tags["diverged_at_epoch"]) for s, r in runs.items() if r.info.status == "FAILED"
    }
    assert diverged == {0: 34, 3: 3}
    for seed, at in diverged.items():
        assert runs[seed].data.metrics["epochs_completed"] == at
        assert runs[seed].data.tags["failure_reason"].startswith(f"diverged at epoch {at}:")
    finished = [r for s, r in runs.items() if s not in diverged]
    assert all(r.info.status == "FINISHED" and r.data.metrics["epochs_completed"] == 300 for r in finished)
    assert re.search(r"^sweep \w+: 4/6 configs finished, failed 2 \(diverged 2, killed 0\)", res.stdout, re.M)


@pytest.mark.slow
def test_sigterm_to_a_stacked_sweep_ends_every_run_in_flight_killed(store):
    """Two jobs of two stacked seeds each, all four runs training: SIGTERM to the launcher
    ends the four KILLED with what they measured, the parent KILLED, exit 143."""
    cwd, uri = ready(store)
    proc = start(
        cwd, *sweep_args(uri, "activation=tanh", "seed=range(4)", "train.epochs=300000"), "stack_seeds=2"
    )
    read_until(proc, r"^shallownet: sweep ")
    wait_for(lambda: len(running(uri)) == 5, timeout=240)  # the parent and four training runs
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 143, out
    for c in killed_jobs_of_a_stopped_sweep(proc, uri, out, in_flight=4):
        n = c.data.metrics["epochs_completed"]
        assert 0 < n < 300000
        assert c.data.tags["failure_reason"] == f"interrupted at epoch {int(n)} (SIGTERM)"
        assert len(client_for(uri).get_metric_history(c.info.run_id, "train_loss")) > 1


@pytest.mark.slow
def test_kill_9_of_a_stacked_sweep_and_its_resume_train_each_config_once(store):
    cwd, uri = ready(store)
    args = [*sweep_args(uri, "activation=tanh", "seed=range(6)", "train.epochs=50000"), "stack_seeds=3"]
    proc = start(cwd, *args)
    wait_for(lambda: len([r for r in running(uri) if r.data.tags["shallownet.role"] == "child"]) == 6)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert gone(proc.pid), f"left alive: {group(proc.pid)}"
    res = run_cli(args, cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not running(uri)
    counts = finished_per_config(uri)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts
    killed = [r for r in store_runs(uri, "child") if r.info.status == "KILLED"]
    assert len(killed) == 6 and all(
        "is gone: closed by sweep" in r.data.tags["failure_reason"] for r in killed
    )


@pytest.mark.slow
def test_reproducing_a_run_of_a_stacked_job_is_identical(store):
    """A stacked job's run re-executed alone (R = 1, the same code path): every value equal."""
    cwd, uri = store
    args = [
        *sweep_args(uri, "seed=range(3)", "train.epochs=200", "train.batch_size=32", "lr_schedule=plateau"),
        "lr_schedule.lr=0.5",
        "lr_schedule.patience=3",
        "stack_seeds=3",
    ]
    res = run_cli(args, cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    runs = {int(r.data.params["seed"]): r for r in store_runs(uri, "child")}
    res = run_cli(["shallownet-reproduce", runs[2].info.run_id, "--tracking-uri", uri], cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith("identical")
    lrs = [m.value for m in client_for(uri).get_metric_history(runs[2].info.run_id, "lr")]
    assert len(set(np.round(lrs, 12))) > 1  # the plateau schedule did act in this run
