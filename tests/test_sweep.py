"""Sweeps end to end: parent/child runs, parallel workers without losses, resume, divergence."""

import os
import re
import signal
import subprocess

import pytest
from conftest import BIN, cli_env, client_for, run_cli, runs_of

from shallownet.report import main as report_main

pytestmark = pytest.mark.slow

BASE = ["dataset=quadrant", "model.hidden_sizes=[8]", "initializer=he_normal", "tracking.log_model=false"]


def sweep(cwd, uri, *overrides, env=None):
    res = run_cli(
        [
            "shallownet-train",
            "-m",
            *BASE,
            *overrides,
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={cwd}/multirun/${{now:%H-%M-%S-%f}}",
        ],
        cwd,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "database is locked" not in res.stdout + res.stderr
    assert "Warning" not in res.stdout + res.stderr, res.stderr  # nothing for a student to decode
    return res


def parents_children(uri):
    runs = runs_of(uri)
    parents = [r for r in runs if r.data.tags.get("shallownet.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("shallownet.role") == "child"]
    return parents, children


def test_grid_becomes_parent_with_children_and_resumes(store):
    cwd, uri = store
    res = sweep(cwd, uri, "activation=relu,tanh", "seed=0,1", "train.epochs=60")
    assert "[4/4]" in res.stdout or "4/4 jobs" in res.stdout
    assert "sweep summary (4/4 jobs" in res.stdout and "MLflow UI" in res.stdout
    (parent,), children = parents_children(uri)
    assert len(children) == 4
    assert parent.info.status == "FINISHED"
    m = parent.data.metrics
    assert (m["jobs_total"], m["jobs_finished"], m["jobs_failed"], m["jobs_skipped"]) == (4, 4, 0, 0)
    sweep_id = parent.data.tags["sweep_id"]
    client = client_for(uri)
    combos = set()
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert c.data.tags["sweep_id"] == sweep_id
        combos.add((c.data.params["activation.name"], c.data.params["seed"]))
        assert len(client.get_metric_history(c.info.run_id, "test_accuracy")) == 60
    assert combos == {("relu", "0"), ("relu", "1"), ("tanh", "0"), ("tanh", "1")}

    # the same sweep again: every config already FINISHED -> all skipped, same parent
    res = sweep(cwd, uri, "activation=relu,tanh", "seed=0,1", "train.epochs=60")
    assert "skipped 4" in res.stdout
    (parent2,), children2 = parents_children(uri)
    assert parent2.info.run_id == parent.info.run_id and len(children2) == 4
    assert parent2.data.metrics["jobs_skipped"] == 4 and parent2.info.status == "FINISHED"

    # an interrupted sweep (one run missing): only the missing config runs
    gone = next(
        c for c in children if c.data.params["activation.name"] == "tanh" and c.data.params["seed"] == "1"
    )
    client.delete_run(gone.info.run_id)
    res = sweep(cwd, uri, "activation=relu,tanh", "seed=0,1", "train.epochs=60")
    assert "4/4 configs finished, failed 0 (diverged 0, killed 0), skipped 3 this session" in res.stdout
    _, children3 = parents_children(uri)
    new = [c for c in children3 if c.info.run_id not in {x.info.run_id for x in children}]
    assert len(new) == 1 and new[0].data.params["activation.name"] == "tanh"
    assert new[0].data.params["seed"] == "1"

    # +force=true reruns everything under a new parent
    res = sweep(cwd, uri, "activation=relu,tanh", "seed=0,1", "train.epochs=60", "+force=true")
    parents4, children4 = parents_children(uri)
    assert len(parents4) == 2 and len(children4) == 4 + 4  # (4 - 1 deleted + 1) + 4 forced
    forced = next(p for p in parents4 if p.info.run_id != parent.info.run_id)
    assert forced.data.metrics["jobs_finished"] == 4 and forced.data.metrics["jobs_skipped"] == 0
    assert sum(c.data.tags["mlflow.parentRunId"] == forced.info.run_id for c in children4) == 4


def test_diverging_jobs_leave_the_others_finished_and_exit_zero(store):
    cwd, uri = store
    res = sweep(
        cwd,
        uri,
        "activation=relu",
        "lr_schedule.lr=0.5,1000",
        "seed=0,1",
        "train.epochs=300",
        "model.hidden_sizes=[16]",
        "initializer=small_random",
    )
    (parent,), children = parents_children(uri)
    by_lr = {}
    for c in children:
        by_lr.setdefault(c.data.params["lr_schedule.lr"], []).append(c)
    assert {c.info.status for c in by_lr["0.5"]} == {"FINISHED"}
    assert {c.info.status for c in by_lr["1000.0"]} == {"FAILED"}
    assert all("diverged_at_epoch" in c.data.tags for c in by_lr["1000.0"])
    m = parent.data.metrics
    assert (m["jobs_total"], m["jobs_finished"], m["jobs_failed"], m["jobs_diverged"]) == (4, 2, 2, 2)
    assert parent.info.status == "FINISHED"
    assert "DIVERGED" in res.stdout and "diverged at epoch" in res.stdout


def test_a_bad_value_in_a_sweep_is_refused_before_anything_is_recorded(store):
    cwd, uri = store
    res = run_cli(
        [
            "shallownet-train",
            "-m",
            *BASE,
            "lr_schedule.lr=0.5,-1",
            "seed=0,1",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={cwd}/multirun/bad",
        ],
        cwd,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == "shallownet: config error: lr_schedule.lr: must be > 0, got -1.0"
    assert res.stdout == "" and not (cwd / "mlflow.db").exists()  # no parent, no store


def test_interrupted_sweep_leaves_no_run_running_and_resumes(store):
    cwd, uri = store
    grid = ["activation=tanh", "seed=range(5)", "train.epochs=20000"]
    proc = subprocess.Popen(
        [
            str(BIN / "shallownet-train"),
            "-m",
            *BASE,
            *grid,
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={cwd}/multirun/first",
        ],
        cwd=cwd,
        env=cli_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for line in proc.stdout:  # the first job's progress line: the others are mid-flight
        if line.startswith("[1/5]") or line.startswith("[2/5]"):
            break
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it: to every process
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "shallownet: interrupted" in out and "INCOMPLETE" in out and "Traceback" not in out
    (parent,), children = parents_children(uri)
    assert parent.info.status == "KILLED"
    assert not [c for c in children if c.info.status == "RUNNING"], out
    done = {c.data.params["seed"] for c in children if c.info.status == "FINISHED"}
    assert 1 <= len(done) < 5 and len(children) < 5  # a config never started: the resume trains it
    m = parent.data.metrics
    assert m["jobs_finished"] == len(done) and m["jobs_failed"] == len(children) - len(done)

    res = sweep(cwd, uri, *grid)  # started again: completes only what is missing
    assert (
        f"5/5 configs finished, failed 0 (diverged 0, killed 0), skipped {len(done)} this session"
        in res.stdout
    )
    (parent2,), children2 = parents_children(uri)
    assert parent2.info.run_id == parent.info.run_id and parent2.info.status == "FINISHED"
    finished = [c.data.params["seed"] for c in children2 if c.info.status == "FINISHED"]
    assert sorted(finished) == [str(s) for s in range(5)]


@pytest.mark.parametrize("outlive", [False, True])
def test_closing_a_sweep_ends_this_sessions_leftover_runs(store, outlive):
    """loky SIGKILLs the workers of an interrupted sweep: a job caught while recording leaves
    its run RUNNING, and closing the sweep ends it KILLED (not for cluster jobs, which go
    on), or FAILED with the job's reason when the job reported a tracking error. Runs of
    other sessions are not this close's business."""
    from shallownet.sweep import session as sweep_mod
    from shallownet.record import tracking

    cwd, uri = store
    client = tracking.connect(uri)
    exp = tracking.ensure_experiment(uri, "shallownet", client)
    session = sweep_mod.Session.__new__(sweep_mod.Session)
    session.client, session.exp_id, session.session = client, exp, "s1"
    session.jobs_outlive_sweep = outlive
    mine = {"session": "s1"}
    other = client.create_run(exp, tags={tracking.TAG_SESSION: "s0"}).info.run_id
    orphan = client.create_run(exp, tags={tracking.TAG_SESSION: "s1"}).info.run_id
    broken = client.create_run(exp, tags={tracking.TAG_SESSION: "s1"}).info.run_id
    done = client.create_run(exp, tags={tracking.TAG_SESSION: "s1"}).info.run_id
    client.set_terminated(done, "FINISHED")
    outcomes = [
        {**mine, "status": "TRACKING_ERROR", "run_id": broken, "message": "store gone"},
        {**mine, "status": "FINISHED", "run_id": done},
    ]
    if not outlive:
        session._end_leftovers("no-parent", outcomes)
    status = {rid: client.get_run(rid).info.status for rid in (other, orphan, broken, done)}
    assert status == (
        {other: "RUNNING", orphan: "RUNNING", broken: "RUNNING", done: "FINISHED"}
        if outlive
        else {other: "RUNNING", orphan: "KILLED", broken: "FAILED", done: "FINISHED"}
    )
    if not outlive:
        assert client.get_run(broken).data.tags["failure_reason"] == "store gone"
        assert "before this job reported" in client.get_run(orphan).data.tags["failure_reason"]


def test_the_grid_is_hydras_basic_sweeper_order():
    """jobs_of numbers the jobs as Hydra's BasicSweeper does (the last key varies fastest; a
    key given again keeps its place and takes the later values), so job numbers and output
    dirs stay what they were."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra_plugins.shallownet_sweeper import batches, jobs_of  # the sweeper launches this grid

    parse = OverridesParser.create().parse_overrides
    jobs = jobs_of(
        parse(["activation=tanh,relu", "dataset=moons", "seed=range(0,3)", "activation=relu,tanh"])
    )
    assert jobs == [
        ["activation=relu", "dataset=moons", "seed=0"],
        ["activation=relu", "dataset=moons", "seed=1"],
        ["activation=relu", "dataset=moons", "seed=2"],
        ["activation=tanh", "dataset=moons", "seed=0"],
        ["activation=tanh", "dataset=moons", "seed=1"],
        ["activation=tanh", "dataset=moons", "seed=2"],
    ]
    assert jobs_of([]) == [[]]  # no override: the one job of the base config
    assert batches(jobs, None) == [jobs] and batches(jobs, 4) == [jobs[:4], jobs[4:]]


def test_grid_check_composes_every_value_once_and_stops_a_bad_one(store):
    import itertools

    from shallownet.sweep.preflight import covering

    grid = [
        list(job)
        for job in itertools.product(
            ["activation=tanh", "activation=relu", "activation=leaky_relu"], [f"seed={i}" for i in range(34)]
        )
    ]
    chosen = covering(grid)
    assert {o for job in chosen for o in job} == {o for job in grid for o in job}
    assert len(chosen) == 36 and all(job in grid for job in chosen)

    cwd, uri = store
    res = run_cli(
        [
            "shallownet-train",
            "-m",
            *BASE,
            "activation=tanh,nope",
            "seed=0,1",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={cwd}/multirun/bad",
        ],
        cwd,
    )
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "shallownet: config error: activation=nope: no such option; "
        "valid choices: identity, leaky_relu, relu, sigmoid, tanh"
    )
    assert not (cwd / "mlflow.db").exists()  # stopped before any parent or job


def test_optuna_search_runs_its_trials_as_child_runs(store):
    cwd, uri = store
    res = sweep(
        cwd,
        uri,
        "experiment=tutorial002_quadrant",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "train.epochs=40",
    )
    assert "sweep summary (4/4 jobs" in res.stdout
    (parent,), children = parents_children(uri)
    assert len(children) == 4 and parent.data.metrics["jobs_finished"] == 4
    assert parent.data.tags["shallownet.experiment"] == "tutorial002_quadrant"
    assert len({c.data.params["lr_schedule.lr"] for c in children}) == 4  # TPE's own picks


def test_eight_parallel_jobs_lose_nothing(store):
    cwd, uri = store
    epochs = 250
    res = sweep(
        cwd,
        uri,
        "activation=tanh",
        "seed=range(8)",
        f"train.epochs={epochs}",
        f"tracking.max_points={epochs}",
        "hydra.launcher.n_jobs=8",
    )
    progress = [line for line in res.stdout.splitlines() if re.match(r"\[\d+/", line)]
    assert len(progress) == 8, res.stdout  # one whole line per job, none run into another
    assert [int(line[1]) for line in progress] == list(range(1, 9))  # numbered as they finish
    assert all(
        re.fullmatch(
            r"\[\d/8\] seed=\d: FINISHED test_acc=\d\.\d{3} "
            r"\(\d+\.\ds; \d+s elapsed, ETA \d+s\)",
            line,
        )
        for line in progress
    ), progress
    (parent,), children = parents_children(uri)
    assert len(children) == 8 and parent.data.metrics["jobs_finished"] == 8
    client = client_for(uri)
    n_params = {len(c.data.params) for c in children}
    assert len(n_params) == 1 and n_params.pop() > 25
    for c in children:
        assert c.info.status == "FINISHED"
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr"):
            assert len(client.get_metric_history(c.info.run_id, key)) == epochs
    assert sorted(int(c.data.params["seed"]) for c in children) == list(range(8))


def test_submitit_local_launcher(store):
    cwd, uri = store
    sweep(cwd, uri, "hydra/launcher=local", "activation=tanh", "seed=0,1", "train.epochs=40")
    (parent,), children = parents_children(uri)
    assert len(children) == 2 and parent.data.metrics["jobs_finished"] == 2
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)


def test_adaptive_seeds_decide_tutorial000s_claim_and_stop(store):
    """hparams_search=adaptive adds seeds in rounds until ReLU-vs-tanh (epochs to the loss
    threshold) is decided by the anytime-valid sequential t-test (its e-value reaches
    1/alpha = 20), records each round and why it stopped in the parent, and a resume reaches
    the same decision from the same runs, training nothing."""
    cwd, uri = store
    args = [
        "shallownet-train",
        "-m",
        "experiment=tutorial000_activations",
        "hparams_search=adaptive",
        "hydra.sweeper.min_seeds=3",
        "hydra.sweeper.step=3",
        "hydra.sweeper.max_seeds=15",
        "tracking.log_model=false",
        f"tracking.uri={uri}",
    ]
    res = run_cli(args, cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    stop = "decided after round 4 (12 seeds) by the anytime-valid sequential t-test"
    assert f"adaptive seeds: {stop}" in res.stdout, res.stdout
    (parent,), children = parents_children(uri)
    assert len(children) == 3 * 12 and {c.info.status for c in children} == {"FINISHED"}
    client = client_for(uri)
    rounds = client.get_metric_history(parent.info.run_id, "adaptive.seeds")
    assert sorted((m.step, m.value) for m in rounds) == [(1, 3.0), (2, 6.0), (3, 9.0), (4, 12.0)]
    key = "adaptive.activation.name.relu.tanh.epochs_to_threshold"

    def history(name):
        return [
            m.value
            for m in sorted(
                client.get_metric_history(parent.info.run_id, f"{key}.{name}"), key=lambda m: m.step
            )
        ]

    assert history("decided") == [0.0, 0.0, 0.0, 1.0]
    e = history("e_value")
    assert all(x < 20 for x in e[:3]) and e[3] >= 20, e
    low, high, mean = history("adj_ci_low")[3], history("adj_ci_high")[3], history("mean_diff")[3]
    assert low <= mean <= high and (low > 0 or high < 0)  # its confidence sequence excludes 0
    assert parent.data.params["adaptive.compare"] == "activation.name:relu:tanh:epochs_to_threshold"
    assert parent.data.params["adaptive.method"].startswith("anytime-valid sequential t-test")
    assert parent.data.tags["adaptive.stop_reason"].startswith(stop)
    res = run_cli(args, cwd)  # resumed: the same rounds, all skipped, the same stop
    assert stop in res.stdout and "skipped 36 this session" in res.stdout
    assert report_main(["--sweep", "latest", "--tracking-uri", uri, "--out", str(cwd / "rep")]) == 0
    md = (cwd / "rep" / "report.md").read_text()
    assert "Adaptive seeds" in md and "anytime-valid sequential t-test" in md
