"""The record's guarantees under faults, each proved on real processes and then on the store:
concurrent starts, kill -9, SIGTERM, Ctrl-C at any moment, twin sweeps, a dead or silent
server, a full disk, starved memory, hostile stored files, bad input, changed data and code.

After each scenario the store must hold: one FINISHED run per configuration (no duplicates),
no RUNNING run, the statuses and exit codes the README's table promises, and no process of
the scenario left alive."""

import collections
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, cli_env, client_for, run_cli, runs_of

from shallownet.procs import group_members as group  # live pids of a process group

pytestmark = pytest.mark.slow

QUICK = [
    "dataset=quadrant",
    "model.hidden_sizes=[8]",
    "initializer=he_normal",
    "activation=relu",
    "lr_schedule.lr=0.5",
    "tracking.log_model=false",
]
SRC = Path(__file__).resolve().parents[1] / "src"


# ------------------------------------------------------------------------------ helpers


def killed_jobs_of_a_stopped_sweep(proc, uri, out, in_flight):
    """The children a signal stopped, after checking what every stopped sweep must show: no
    traceback, an INCOMPLETE summary, no process left, nothing RUNNING, the parent KILLED and
    one KILLED child per job that was in flight."""
    assert "Traceback" not in out and "INCOMPLETE" in out, out
    assert gone(proc.pid), f"left alive: {group(proc.pid)}"
    assert not running(uri)
    (parent,) = store_runs(uri, "parent")
    assert parent.info.status == "KILLED"
    killed = [c for c in store_runs(uri, "child") if c.info.status == "KILLED"]
    assert len(killed) == in_flight
    return killed


def start(cwd, *args, env=None, **kw):
    """A console script in its own process group (so that the test can signal and inspect
    the whole group), stdout and stderr merged."""
    return subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=cli_env(env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **kw,
    )


def gone(pgid, timeout=15.0):
    """True once nothing of the group lives (the launcher, fork server, workers, trackers)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not group(pgid):
            return True
        time.sleep(0.1)
    return False


def wait_for(predicate, timeout=120.0, poll=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out waiting")


def read_until(proc, pattern, timeout=180.0):
    """Lines of proc's output up to the first matching ``pattern`` (a regex)."""
    seen, deadline = [], time.time() + timeout
    for line in proc.stdout:
        seen.append(line)
        if re.search(pattern, line) or time.time() > deadline:
            break
    return seen


def store_runs(uri, role=None):
    runs = runs_of(uri)
    return [r for r in runs if role is None or r.data.tags.get("shallownet.role") == role]


def finished_per_config(uri):
    """{config_hash: number of FINISHED runs} (reproductions aside)."""
    c = collections.Counter(
        r.data.tags["config_hash"]
        for r in store_runs(uri)
        if r.info.status == "FINISHED"
        and r.data.tags.get("shallownet.role") != "reproduction"
        and "config_hash" in r.data.tags
    )
    return dict(c)


def running(uri):
    return [r for r in store_runs(uri) if r.info.status == "RUNNING"]


def sweep_args(uri, *overrides, sweep_dir=None):
    out = ["shallownet-train", "-m", *QUICK, *overrides, f"tracking.uri={uri}"]
    return out + ([f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else [])


def ready(store):
    """The store fixture with its store created (under shallownet's lock), for tests that poll
    it while a run starts: a poll would otherwise race the run through a fresh schema."""
    from shallownet.record import tracking

    cwd, uri = store
    tracking.ensure_experiment(uri, "shallownet", tracking.connect(uri))
    return cwd, uri


def one_line_refusal(res):
    lines = res.stderr.strip().splitlines()
    return res.returncode == 2 and len(lines) == 1 and lines[0].startswith("shallownet: config error:")


# ------------------------------------------------------------------------------ concurrency


def test_eight_runs_starting_at_once_on_a_fresh_store_all_succeed(store):
    """The schema of a new sqlite store is created once, under a lock: processes that meet it
    at once used to race through its migrations and break it for good."""
    cwd, uri = store
    procs = [
        start(cwd, "shallownet-train", *QUICK, f"seed={i}", "train.epochs=50", f"tracking.uri={uri}")
        for i in range(8)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    runs = store_runs(uri)
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    res = run_cli(["shallownet-train", *QUICK, "seed=9", "train.epochs=50", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stderr  # and the store stays healthy


def test_two_sweeps_at_once_that_share_configs_train_each_config_once(store):
    """Two different sweeps on a fresh store, default sweep dirs (started in the same
    second), overlapping in 2 configs: each config trains once, each sweep's summary holds
    its own jobs, and the sweep that skipped the other's runs lists them as its members."""
    cwd, uri = store
    a = start(cwd, *sweep_args(uri, "activation=relu,tanh", "seed=0,1", "train.epochs=4000"))
    b = start(cwd, *sweep_args(uri, "activation=relu", "seed=0,1,2", "train.epochs=4000"))
    out_a, out_b = a.communicate(timeout=600)[0], b.communicate(timeout=600)[0]
    assert (a.returncode, b.returncode) == (0, 0), out_a + out_b
    assert (
        len(re.findall(r"^\[\d/4\] ", out_a, re.M)) == 4 and len(re.findall(r"^\[\d/3\] ", out_b, re.M)) == 3
    )
    counts = finished_per_config(uri)
    assert len(counts) == 5 and set(counts.values()) == {1}, counts  # 4 + 3 - 2 shared
    assert not running(uri)
    client = client_for(uri)
    parents = store_runs(uri, "parent")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    for p in parents:
        members = json.loads(
            Path(client.download_artifacts(p.info.run_id, "sweep/members.json", str(cwd))).read_text()
        )["run_ids"]
        assert len(members) == p.data.metrics["jobs_total"] == p.data.metrics["jobs_finished"]
    children = store_runs(uri, "child")
    assert {c.data.tags["mlflow.parentRunId"] for c in children} <= {p.info.run_id for p in parents}
    assert not (cwd / "outputs" / "multirun").exists()  # nothing left but the store


def test_twin_sweeps_started_together_train_everything_once(store):
    cwd, uri = store
    args = sweep_args(uri, "activation=relu,tanh", "seed=range(3)", "train.epochs=20000")
    twins = [start(cwd, *args) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in twins]
    codes = sorted(p.returncode for p in twins)
    assert codes == [0, 2], outs
    refused = outs[[p.returncode for p in twins].index(2)]
    assert "is already running" in refused and "Traceback" not in refused
    assert len(store_runs(uri, "parent")) == 1
    counts = finished_per_config(uri)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts
    assert not running(uri)


# ------------------------------------------------------------------------------ killed sweeps


def test_kill_9_of_a_sweep_leaves_no_process_and_the_resume_trains_each_config_once(store):
    cwd, uri = ready(store)
    args = sweep_args(uri, "activation=tanh", "seed=range(5)", "train.epochs=50000")
    proc = start(cwd, *args)
    read_until(proc, r"^\[2/5\] ")  # two jobs done (they started together, so end together)...
    wait_for(lambda: [r for r in running(uri) if r.data.tags["shallownet.role"] == "child"])
    time.sleep(1.0)  # ...and the next ones a second into their several seconds of training
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert gone(proc.pid), f"left alive: {group(proc.pid)}"  # fork server, workers, trackers
    left = [r for r in running(uri) if r.data.tags["shallownet.role"] == "child"]
    assert left  # what a kill -9 leaves: runs nobody will end...
    assert len(store_runs(uri, "child")) == 4  # ...and a config that never started
    res = run_cli(args, cwd)  # ...until the next sweep meets them
    assert res.returncode == 0, res.stdout + res.stderr
    assert not running(uri)
    for r in left:
        run = client_for(uri).get_run(r.info.run_id)
        assert run.info.status == "KILLED" and "is gone: closed by sweep" in run.data.tags["failure_reason"]
    counts = finished_per_config(uri)
    assert len(counts) == 5 and set(counts.values()) == {1}, counts
    (parent,) = store_runs(uri, "parent")
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 5
    assert "failure_reason" not in parent.data.tags  # the earlier session's end is history


def test_sigterm_to_a_sweep_ends_its_runs_killed_with_their_metrics(store):
    """SIGTERM to the launcher alone (as `kill PID` or systemd send it): forwarded to the jobs
    in flight, which record what they measured; nothing RUNNING, no process left, exit 143."""
    cwd, uri = ready(store)
    proc = start(cwd, *sweep_args(uri, "activation=tanh", "seed=range(6)", "train.epochs=300000"))
    read_until(proc, r"^shallownet: sweep ")
    wait_for(lambda: len(running(uri)) == 3, timeout=120)  # the parent and two training jobs
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, out
    for c in killed_jobs_of_a_stopped_sweep(proc, uri, out, in_flight=2):
        n = c.data.metrics["epochs_completed"]
        assert 0 < n < 300000
        assert c.data.tags["failure_reason"] == f"interrupted at epoch {int(n)} (SIGTERM)"
        assert len(client_for(uri).get_metric_history(c.info.run_id, "train_loss")) > 1


def test_ctrl_c_during_a_sweeps_start_up_prints_no_traceback(store):
    cwd, uri = store
    proc = start(cwd, *sweep_args(uri, "activation=tanh", "seed=range(4)", "train.epochs=2000"))
    time.sleep(2.5)  # the fork server is importing MLflow, the launcher opening the store
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert gone(proc.pid), f"left alive: {group(proc.pid)}"
    assert not running(uri)


def test_ctrl_c_while_a_sweep_closes_never_leaves_its_parent_running(store):
    cwd, uri = store
    proc = start(cwd, *sweep_args(uri, "activation=tanh", "seed=0,1", "train.epochs=200"))
    read_until(proc, r"^\[2/2\] ")  # the last job reported: the launcher is closing the sweep
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert "Traceback" not in out, out
    (parent,) = store_runs(uri, "parent")
    assert parent.info.status == "FINISHED"  # both jobs did finish: the record says so
    assert proc.returncode in (0, 130)  # 0 if the close had ended when the signal came
    assert parent.data.metrics["jobs_finished"] == 2 and not running(uri)


# ------------------------------------------------------------------------------ single runs


@pytest.mark.parametrize("delay", [0.5, 1.0, 2.0, 3.5, 5.0, 7.0])
def test_ctrl_c_at_any_moment_of_a_single_run_ends_it_killed(store, delay):
    """Start-up, store, claim, training: wherever Ctrl-C lands, the run never ends FINISHED,
    and nothing stays RUNNING."""
    cwd, uri = store
    proc = start(cwd, "shallownet-train", *QUICK, "train.epochs=400000", f"tracking.uri={uri}")
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    runs = store_runs(uri)
    assert not running(uri) and all(r.info.status == "KILLED" for r in runs)


def test_sigterm_while_a_single_run_records_still_completes_its_record(store):
    """Signals wait while a run writes its record: the run ends KILLED, with every metric."""
    cwd, uri = ready(store)
    proc = start(
        cwd,
        "shallownet-train",
        *QUICK,
        "train.epochs=20000",
        "tracking.max_points=20000",
        f"tracking.uri={uri}",
    )
    client = client_for(uri)

    def recording():  # the summaries land first, then 100,000 curve points, then the files
        runs = client.search_runs(["1"], "attributes.status = 'RUNNING'")
        return runs and "epochs_completed" in runs[0].data.metrics

    wait_for(recording, timeout=180, poll=0.02)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 143, out
    (run,) = store_runs(uri)
    assert run.info.status == "KILLED"
    assert run.data.tags["failure_reason"] == "interrupted (SIGTERM) while recording"
    assert run.data.metrics["epochs_completed"] == 20000
    assert len(client.get_metric_history(run.info.run_id, "test_loss")) == 20000
    assert {a.path for a in client_for(uri).list_artifacts(run.info.run_id)} >= {
        "curves.parquet",
        "config.yaml",
    }


def test_a_killed_runs_leftover_is_closed_by_the_next_run_that_meets_it(store):
    """kill -9 leaves a RUNNING run that its process will never end: the next run of the same
    config closes it KILLED (a sweep closes every such run of its experiment at start)."""
    cwd, uri = ready(store)
    args = ["shallownet-train", *QUICK, "train.epochs=20000", f"tracking.uri={uri}"]
    proc = start(cwd, *args)
    wait_for(lambda: running(uri), timeout=120)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    (stale,) = running(uri)
    res = run_cli(["shallownet-train", *QUICK, "train.epochs=400", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stderr
    client = client_for(uri)
    assert client.get_run(stale.info.run_id).info.status == "RUNNING"  # another config: not met
    res = run_cli(args, cwd, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    run = client.get_run(stale.info.run_id)
    assert run.info.status == "KILLED" and "is gone" in run.data.tags["failure_reason"]
    assert not running(uri)


def test_starved_of_memory_after_the_run_exists_it_ends_failed_and_the_sweep_goes_on(store):
    """A run that crashes once it exists (here: out of memory under an address-space limit)
    is FAILED with its reason, never FINISHED; in a sweep the worker's other jobs go on."""
    import resource

    cwd, uri = store
    limit = 3 * 2**30

    def starve():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    res = run_cli(
        ["shallownet-train", *QUICK, "train.epochs=100000000", f"tracking.uri={uri}"], cwd, preexec_fn=starve
    )
    assert res.returncode == 1, res.stderr
    (run,) = store_runs(uri)
    assert run.info.status == "FAILED" and "out of memory" in run.data.tags["failure_reason"]
    res = run_cli(
        sweep_args(uri, "train.epochs=100000000,300", "seed=1,2", "hydra.launcher.n_jobs=1"),
        cwd,
        preexec_fn=starve,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "already active" not in res.stdout + res.stderr and "Traceback" not in res.stdout + res.stderr
    children = store_runs(uri, "child")
    by_epochs = collections.defaultdict(set)
    for c in children:
        by_epochs[c.data.params["train.epochs"]].add(c.info.status)
    assert by_epochs == {"100000000": {"FAILED"}, "300": {"FINISHED"}}
    assert "out of memory" in res.stdout and not running(uri)


# ------------------------------------------------------------------------------ the store fails


class Silent:
    """A TCP server that accepts connections and never answers."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc):
        self.sock.close()


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["closed port", "silent server"])
def test_a_store_that_cannot_be_used_stops_a_sweep_before_any_job(tmp_path, kind):
    t0 = time.time()
    if kind == "closed port":
        res = run_cli(sweep_args(_closed_port(), "seed=0,1", "train.epochs=50"), tmp_path, timeout=300)
    else:
        with Silent() as uri:
            res = run_cli(
                sweep_args(uri, "seed=0,1", "train.epochs=50", "tracking.timeout=2"), tmp_path, timeout=300
            )
    assert time.time() - t0 < 60
    assert res.returncode == 3, res.stdout + res.stderr
    assert res.stderr.strip().count("\n") == 0 and "unusable" in res.stderr and "unreachable" in res.stderr
    assert "[1/2]" not in res.stdout and "Traceback" not in res.stdout + res.stderr


def test_a_full_disk_fails_the_runs_it_hits_and_the_resume_completes(store):
    """The artifact store (beside the sqlite file) on a 1 MiB tmpfs: the runs that find it
    full end FAILED with the reason, the sweep exits 3, nothing stays RUNNING; with room
    again, the same sweep trains exactly what is missing."""
    cwd, uri = store
    arts = cwd / "mlartifacts"
    arts.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(arts)], capture_output=True, text=True
    )
    assert mount.returncode == 0, f"this test needs root to mount a tmpfs: {mount.stderr}"
    try:
        args = sweep_args(uri, "seed=range(8)", "train.epochs=3000", "tracking.log_model=true")
        res = run_cli(args, cwd)
        out = res.stdout + res.stderr
        assert res.returncode == 3, out
        assert "disk full" in out and "Traceback" not in out
        assert not running(uri)
        failed = [c for c in store_runs(uri, "child") if c.info.status == "FAILED"]
        assert failed and all("disk full" in c.data.tags["failure_reason"] for c in failed)
        subprocess.run(["mount", "-o", "remount,size=256m", str(arts)], check=True)
        res = run_cli(args, cwd)
        assert res.returncode == 0, res.stdout + res.stderr
        counts = finished_per_config(uri)
        assert len(counts) == 8 and set(counts.values()) == {1}, counts
        assert not running(uri)
    finally:
        subprocess.run(["umount", "-l", str(arts)], capture_output=True)


# ------------------------------------------------------------------------------ the store is data


def _planted_config(client, run_id, cwd, edit):
    """Rewrite a run's stored config.yaml in the artifact store (as anyone with write access
    to a shared server could)."""
    import yaml

    path = Path(client.download_artifacts(run_id, "config.yaml", str(cwd / "dl")))
    data = yaml.safe_load(path.read_text())
    edit(data)
    artifact_dir = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    (artifact_dir / "config.yaml").write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("plant", ["hydra callback", "_target_ in a group", "interpolation", "unknown key"])
def test_code_planted_in_a_stored_config_is_never_executed(store, plant):
    cwd, uri = store
    res = run_cli(["shallownet-train", *QUICK, "train.epochs=50", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0
    (run,) = store_runs(uri)
    marker = cwd / "PWNED"

    def edit(data):
        if plant == "hydra callback":
            data["hydra"] = {"callbacks": {"x": {"_target_": "os.makedirs", "name": str(marker)}}}
        elif plant == "_target_ in a group":
            data["dataset"]["_target_"] = "os.makedirs"
            data["dataset"]["name"] = str(marker)
        elif plant == "interpolation":
            data["dataset"]["name"] = "${oc.env:HOME}"
        else:
            data["activation"]["evil"] = 1

    client = client_for(uri)
    _planted_config(client, run.info.run_id, cwd, edit)
    res = run_cli(["shallownet-reproduce", run.info.run_id, "--tracking-uri", uri], cwd)
    assert res.returncode in (1, 2), res.stdout + res.stderr
    if plant == "unknown key":  # the project's schema refuses it, in the re-run, before a run
        assert "activation.evil" in res.stdout + res.stderr
    else:
        assert res.returncode == 2 and "stored config refused" in res.stderr
    assert not marker.exists()
    assert len(store_runs(uri)) == 1  # nothing was re-run


# ------------------------------------------------------------------------------ bad input

BAD = [
    (
        ["activaton=relu"],
        "unknown key 'activaton' (did you mean 'activation'?); valid keys and groups: activation",
    ),
    (["lr=0.5"], "unknown key 'lr'"),
    (["+lr=0.5"], "lr: unknown key (not in the schema)"),
    (["train.epochs=abc"], "train.epochs: 'abc' is not of type Integer"),
    (
        ["activation=rellu"],
        "activation=rellu: no such option (did you mean 'relu'?); valid choices: identity",
    ),
    (["seed=2**70"], "seed: '2**70' is not of type Integer"),
    (["seed=4294967296"], "seed: must be an integer in [0, 2**32 - 1]"),
    (["lr_schedule.lr=inf"], "lr_schedule.lr: must be a finite number"),
    (["model.hidden_sizes=[100000,100000]"], "GiB of memory"),
    (["train.epochs=1000000000000"], "GiB of memory"),
    (["~seed"], "seed: missing"),
]


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
@pytest.mark.parametrize("overrides,needle", BAD, ids=[b[0][0] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_nothing_recorded(store, overrides, needle, multirun):
    cwd, uri = store
    sweep = ["-m", "train.epochs=50,60"] if multirun else []
    res = run_cli(["shallownet-train", *sweep, *overrides, f"tracking.uri={uri}"], cwd)
    assert one_line_refusal(res), (res.returncode, res.stdout, res.stderr)
    assert needle in res.stderr, res.stderr
    assert res.stdout == "" and not list(cwd.iterdir())  # no store, no outputs/ folder


# ------------------------------------------------------------------------------ what a skip means


def _write_csv(path, flip=False):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 2))
    y = (X[:, 0] > 0).astype(int)
    if flip:
        y[:5] = 1 - y[:5]
    path.write_text("a,b,y\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(X, y)))


def test_a_skip_needs_the_same_config_data_and_code(store):
    cwd, uri = store
    _write_csv(cwd / "d.csv")
    args = [
        "shallownet-train",
        "-m",
        "dataset=csv",
        "dataset.path=d.csv",
        "dataset.target=y",
        "seed=0,1",
        "train.epochs=300",
        "tracking.log_model=false",
        f"tracking.uri={uri}",
    ]
    assert run_cli(args, cwd).returncode == 0
    res = run_cli(args, cwd)  # nothing changed: skipped
    assert "skipped 2 this session" in res.stdout, res.stdout
    _write_csv(cwd / "d.csv", flip=True)  # the data changed
    res = run_cli(args, cwd)
    assert res.returncode == 0 and "skipped 0 this session" in res.stdout, res.stdout
    assert res.stderr.count("training again: the data changed since run") == 2, res.stderr
    code = cwd / "copy"  # the model's code changed: a copy of the tree, one line added
    shutil.copytree(SRC, code / "src")
    with open(code / "src" / "shallownet" / "model" / "_base.py", "a") as fh:
        fh.write("\n# a change\n")
    res = run_cli(args, cwd, env={"PYTHONPATH": str(code / "src")})
    assert res.returncode == 0 and res.stderr.count("training again: the code changed") == 2, res.stderr
    res = run_cli(args + ["force=true"], cwd)  # an explicit flag trains again regardless
    assert res.returncode == 0 and "skipped 0 this session" in res.stdout
    assert len([r for r in store_runs(uri, "child") if r.info.status == "FINISHED"]) == 2 * 4


def test_a_single_run_made_earlier_is_a_member_of_the_sweep_that_skips_it(store):
    cwd, uri = store
    res = run_cli(["shallownet-train", *QUICK, "seed=1", "train.epochs=100", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0
    (single,) = store_runs(uri)
    res = run_cli(sweep_args(uri, "seed=0,1", "train.epochs=100"), cwd)
    assert res.returncode == 0 and "skipped 1 this session" in res.stdout
    (parent,) = store_runs(uri, "parent")
    members = json.loads(
        Path(
            client_for(uri).download_artifacts(parent.info.run_id, "sweep/members.json", str(cwd))
        ).read_text()
    )["run_ids"]
    assert single.info.run_id in members and len(members) == 2
    assert parent.data.metrics["jobs_finished"] == 2


def test_reproducing_a_sweep_goes_past_a_child_it_cannot_reproduce(store):
    cwd, uri = store
    assert run_cli(sweep_args(uri, "seed=0,1,2", "train.epochs=100"), cwd).returncode == 0
    client = client_for(uri)
    children = sorted(store_runs(uri, "child"), key=lambda r: r.info.start_time)
    with sqlite3.connect(uri[len("sqlite:///") :]) as db:  # one child as a killed one leaves it
        db.execute("UPDATE runs SET status = 'KILLED' WHERE run_uuid = ?", (children[0].info.run_id,))
    res = run_cli(["shallownet-reproduce", "--sweep", "latest", "--tracking-uri", uri], cwd)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not reproduced" in res.stdout and "KILLED" in res.stdout
    assert len(re.findall(r"^\w{32} +\w{32} +identical$", res.stdout, re.M)) == 2, res.stdout
    assert "NOT all identical" in res.stdout
    assert client.get_run(children[0].info.run_id).info.status == "KILLED"
