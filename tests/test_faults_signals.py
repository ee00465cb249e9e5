"""Signals the fault suite did not name yet (issue 20, items 5-7), each sent to real processes
and then checked on the store with MLflow's own client: SIGHUP (a closed terminal, a dropped
ssh session), Ctrl-C pressed twice, SIGTERM to one worker of a sweep."""

import json
import os
import re
import signal
import time

import pytest
from conftest import client_for
from test_faults import (
    QUICK,
    finished_per_config,
    gone,
    killed_jobs_of_a_stopped_sweep,
    read_until,
    ready,
    running,
    start,
    store_runs,
    sweep_args,
    wait_for,
)

from shallownet.procs import group_members as group  # live pids of a process group

pytestmark = pytest.mark.slow

# what a KILLED run keeps (its decision boundary is not drawn: the stop should not wait for it)
RECORD = {"config.yaml", "curves.parquet", "environment.txt", "plots/loss_curve.png"}


def artifacts(client, run_id):
    """Every file path of a run's artifacts (one level of folders)."""
    paths = set()
    for a in client.list_artifacts(run_id):
        if a.is_dir:
            paths |= {b.path for b in client.list_artifacts(run_id, a.path)}
        else:
            paths.add(a.path)
    return paths


def assert_recorded_killed(uri, run, signame, max_epochs):
    """A run stopped by ``signame`` in training: KILLED with its metrics, curves and files."""
    client = client_for(uri)
    assert run.info.status == "KILLED"
    n = run.data.metrics["epochs_completed"]
    assert 0 < n < max_epochs
    assert re.fullmatch(
        rf"interrupted at epoch {int(n)} \({signame}( \(.+\))?\)", run.data.tags["failure_reason"]
    )
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) > 1
    assert artifacts(client, run.info.run_id) >= RECORD


def training_sweep(store, epochs):
    """A sweep of 4 long jobs, 2 of them training (the parent and 2 children RUNNING)."""
    cwd, uri = ready(store)
    proc = start(cwd, *sweep_args(uri, "activation=tanh", "seed=range(4)", f"train.epochs={epochs}"))
    read_until(proc, r"^shallownet: sweep ")
    wait_for(lambda: len(running(uri)) == 3, timeout=240)
    time.sleep(1.5)  # both jobs past their first epochs
    return proc, uri


# ------------------------------------------------------------------------------ 5. SIGHUP


def test_sighup_to_a_sweep_ends_the_parent_and_the_jobs_in_flight_killed(store):
    """A closed terminal sends SIGHUP to the whole group: handled like SIGTERM, exit 129."""
    proc, uri = training_sweep(store, 300000)
    os.killpg(proc.pid, signal.SIGHUP)
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 129, out
    assert "Traceback" not in out and "sweep summary" in out and "INCOMPLETE" in out, out
    assert gone(proc.pid), f"left alive: {group(proc.pid)}"
    assert not running(uri)
    (parent,) = store_runs(uri, "parent")
    assert parent.info.status == "KILLED" and parent.data.metrics["jobs_killed"] == 2
    killed = [c for c in store_runs(uri, "child") if c.info.status == "KILLED"]
    assert len(killed) == 2
    for c in killed:
        assert_recorded_killed(uri, c, "SIGHUP", 300000)


def test_sighup_to_a_single_run_ends_it_killed_with_what_it_measured(store):
    cwd, uri = ready(store)
    proc = start(cwd, "shallownet-train", *QUICK, "train.epochs=400000", f"tracking.uri={uri}")
    wait_for(lambda: running(uri), timeout=240)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGHUP)
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 129, out
    assert "Traceback" not in out and "KILLED" in out, out
    assert not running(uri)
    (run,) = store_runs(uri)
    assert_recorded_killed(uri, run, "SIGHUP", 400000)


# ------------------------------------------------------------------------------ 6. Ctrl-C twice


def test_ctrl_c_twice_keeps_the_record_of_the_jobs_in_flight(store):
    """The second Ctrl-C (0.15 s later, to the whole group as a terminal sends it) lands while
    the jobs in flight record their runs: it must not drop what they measured."""
    proc, uri = training_sweep(store, 300000)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.15)
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 130, out
    for c in killed_jobs_of_a_stopped_sweep(proc, uri, out, in_flight=2):
        assert "before this job reported" not in c.data.tags["failure_reason"]
        assert_recorded_killed(uri, c, "SIGINT", 300000)


# ------------------------------------------------------------------------------ 7. one worker


def test_sigterm_to_one_worker_costs_its_job_only(store):
    """SIGTERM to the process of one job in flight (as an admin or a watchdog sends it): that
    job ends KILLED with its record, a fresh worker takes the jobs that follow, every other
    config FINISHES, the summary names the killed job and the sweep exits 1."""
    cwd, uri = ready(store)
    epochs = 50000  # several seconds a job: the signal lands well inside the victim's training
    proc = start(cwd, *sweep_args(uri, "activation=tanh", "seed=range(4)", f"train.epochs={epochs}"))
    read_until(proc, r"^shallownet: sweep ")

    def a_training_child():
        kids = [r for r in running(uri) if r.data.tags.get("shallownet.role") == "child"]
        return kids and kids[0]

    victim = wait_for(a_training_child, timeout=240)
    time.sleep(1.0)
    pid = int(json.loads(victim.data.tags["shallownet.owner"])["pid"])
    os.kill(pid, signal.SIGTERM)
    out = proc.communicate(timeout=900)[0]
    assert proc.returncode == 1, out
    assert "Traceback" not in out, out
    assert gone(proc.pid), f"left alive: {group(proc.pid)}"
    assert not running(uri)
    client = client_for(uri)
    killed = client.get_run(victim.info.run_id)
    assert_recorded_killed(uri, killed, "SIGTERM", epochs)
    children = store_runs(uri, "child")
    assert len(children) == 4  # every config attempted once
    counts = finished_per_config(uri)
    assert len(counts) == 3 and set(counts.values()) == {1}, counts
    assert killed.data.tags["config_hash"] not in counts
    seed = killed.data.params["seed"]
    assert re.search(rf"^KILLED: seed={seed}: interrupted at epoch \d+ \(SIGTERM\)$", out, re.M), out
    assert re.search(r"^sweep \w+: 3/4 configs finished, failed 1 \(diverged 0, killed 1\)", out, re.M), out
    (parent,) = store_runs(uri, "parent")
    assert parent.data.metrics["jobs_finished"] == 3 and parent.data.metrics["jobs_killed"] == 1
    later = [c for c in children if c.info.start_time > killed.info.end_time]
    assert later, "no job started after the kill"

    def owners(runs):
        return {int(json.loads(c.data.tags["shallownet.owner"])["pid"]) for c in runs}

    pids = owners(later)
    assert pid not in pids  # the signalled worker took no further job...
    assert pids - owners(c for c in children if c not in later)  # ...a worker new since the kill did
