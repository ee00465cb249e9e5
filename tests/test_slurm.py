"""hydra/launcher=slurm against a real single-node SLURM cluster (scripts/slurm-local.sh):
a sweep's jobs go through sbatch and srun and land as one parent run with its children on a
tracking server, and stopping the cluster leaves none of its daemons running.

The cluster is started once for the module, in its own workdir and on its own ports, so that
a cluster someone keeps running in outputs/slurm is not touched. A machine where SLURM cannot
be installed or started fails these tests: that is a broken setup, not a reason to skip.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, cli_env, client_for, run_cli
from test_faults import QUICK

from shallownet import server

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-local.sh"
DAEMONS = ("slurmctld", "slurmd", "slurmdbd", "mariadbd", "munged")


def free_ports(n=4):
    """A base port with n free consecutive ports after it (slurmctld, slurmd, slurmdbd, db)."""
    for base in range(26817, 40000, 10):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports for the SLURM daemons")


def slurm_local(command, cluster, timeout=120):
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=cluster["env"], capture_output=True, text=True, timeout=timeout
    )


def running(pid):
    """Alive and not a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def started_pids(workdir):
    """{daemon: pid} from the pid files the script keeps for the daemons it started."""
    pids = {}
    for name in DAEMONS:
        f = Path(workdir) / f"{name}.pid"
        if f.exists() and f.read_text().strip().isdigit():
            pids[name] = int(f.read_text())
    return pids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SHALLOWNET_SLURM_DIR": str(workdir), "SHALLOWNET_SLURM_PORT": str(free_ports())}
    box = {"workdir": workdir, "env": env, "conf": str(workdir / "slurm.conf")}
    res = slurm_local("start", box, timeout=900)  # a fresh machine installs SLURM first
    if res.returncode != 0:
        slurm_local("stop", box)
        pytest.fail(f"cannot start a SLURM cluster: {res.stdout}{res.stderr}", pytrace=False)
    box["pids"] = started_pids(workdir)
    try:
        yield box
    finally:
        slurm_local("stop", box)  # already done by the last test, unless it did not run
        shutil.rmtree(workdir / "mariadb", ignore_errors=True)  # 110 MB; pytest keeps 3 basetemps


def test_sweep_runs_as_slurm_jobs_into_one_parent_with_three_children(cluster, tmp_path):
    with server.running_server(tmp_path / "srv", backend="sqlite") as uri:
        res = run_cli(
            [
                "shallownet-train",
                "-m",
                "experiment=tutorial003_toy",
                "stack_seeds=1",  # a job per seed: one SLURM array of three tasks
                "hydra/launcher=slurm",
                f"tracking.uri={uri}",
                f"hydra.sweep.dir={tmp_path}/sweep",
            ],
            tmp_path,
            env={"SLURM_CONF": cluster["conf"]},
        )
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        assert "sweep summary (3/3 jobs" in res.stdout and "3/3 configs finished, failed 0" in res.stdout, out
        assert len(re.findall(r"^\[\d/3\] seed=\d: FINISHED", res.stdout, re.M)) == 3, (
            out
        )  # as with the local workers
        assert "Traceback" not in out, out
        # Without accounting submitit polls a failing sacct and warns on every poll; the
        # cluster runs slurmdbd, so a clean output is the harness's to keep.
        assert "sacct" not in out, out

        client = client_for(uri)
        exp = client.get_experiment_by_name("shallownet")
        runs = client.search_runs([exp.experiment_id], "", max_results=100)
        parents = [r for r in runs if r.data.tags.get("shallownet.role") == "parent"]
        children = [r for r in runs if r.data.tags.get("shallownet.role") == "child"]
        assert len(parents) == 1 and len(children) == 3, [r.data.tags for r in runs]
        (parent,) = parents
        assert parent.info.status == "FINISHED"
        assert parent.data.metrics["jobs_finished"] == 3
        assert {c.info.status for c in children} == {"FINISHED"}
        assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
        assert sorted(c.data.params["seed"] for c in children) == ["0", "1", "2"]

        # a run trained by a SLURM job re-executes here, bit for bit
        res = run_cli(["shallownet-reproduce", children[0].info.run_id, "--tracking-uri", uri], tmp_path)
        assert res.returncode == 0 and res.stdout.strip().endswith("identical"), res.stdout + res.stderr

    # They really ran as SLURM jobs: one array of three tasks, all COMPLETED in accounting.
    acct = subprocess.run(
        ["sacct", "-n", "-X", "-P", "--name=train", "--starttime=2000-01-01", "-o", "JobID,State"],
        env={**cluster["env"], "SLURM_CONF": cluster["conf"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert acct.returncode == 0, acct.stderr
    tasks = [line.split("|") for line in acct.stdout.split()]
    assert len(tasks) == 3 and {state for _, state in tasks} == {"COMPLETED"}, acct.stdout
    assert (tmp_path / "sweep" / ".submitit").is_dir()


def test_a_job_slurm_cancels_records_its_run_killed_with_what_it_measured(cluster, tmp_path):
    """scancel sends SIGTERM (SIGKILL after KillWait): the job ends its run KILLED with its
    metrics, the sweep says so and exits 1, and nothing stays RUNNING."""
    env = {"SLURM_CONF": cluster["conf"]}
    slurm_env = {**cluster["env"], **env}
    with server.running_server(tmp_path / "srv", backend="sqlite") as uri:
        proc = subprocess.Popen(
            [
                str(BIN / "shallownet-train"),
                "-m",
                *QUICK,
                "seed=0,1",
                "train.epochs=50000000",
                "hydra/launcher=slurm",
                f"tracking.uri={uri}",
                f"hydra.sweep.dir={tmp_path}/sweep",
            ],
            cwd=tmp_path,
            env=cli_env(env),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            client = client_for(uri)

            def training():
                exp = client.get_experiment_by_name("shallownet")
                runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'") if exp else []
                kids = [r for r in runs if r.data.tags.get("shallownet.role") == "child"]
                return len(kids) == 2 and all("train_loss" in r.data.metrics for r in kids)

            deadline = time.time() + 240  # both jobs train and have sent live metrics
            while not training():
                assert time.time() < deadline and proc.poll() is None, "the jobs never trained"
                time.sleep(0.5)
            jobs = subprocess.run(
                ["squeue", "-h", "-o", "%i"], env=slurm_env, capture_output=True, text=True, timeout=60
            ).stdout.split()
            assert len(jobs) == 2, jobs
            subprocess.run(["scancel", *jobs], env=slurm_env, check=True, timeout=60)
            out = proc.communicate(timeout=300)[0]
        finally:
            proc.kill()
        assert proc.returncode == 1, out
        assert "Traceback" not in out and len(re.findall(r"^\[\d/2\] seed=\d: KILLED", out, re.M)) == 2, out
        exp = client.get_experiment_by_name("shallownet")
        runs = client.search_runs([exp.experiment_id], "", max_results=100)
        children = [r for r in runs if r.data.tags.get("shallownet.role") == "child"]
        (parent,) = [r for r in runs if r.data.tags.get("shallownet.role") == "parent"]
        assert parent.info.status == "KILLED" and len(children) == 2
        for c in children:
            assert c.info.status == "KILLED", c.data.tags
            n = int(c.data.metrics["epochs_completed"])
            assert n > 0 and c.data.tags["failure_reason"].startswith(
                f"interrupted at epoch {n} (SIGTERM, SLURM job"
            )


def test_stop_leaves_no_daemon_it_started(cluster):
    """Last in this module: stops the cluster the tests above used."""
    pids = cluster["pids"]
    assert {"slurmctld", "slurmd"} <= set(pids), pids
    res = slurm_local("stop", cluster)
    assert res.returncode == 0, res.stdout + res.stderr
    still = {name: pid for name, pid in pids.items() if running(pid)}
    assert not still, f"still running after stop: {still}\n{res.stdout}{res.stderr}"
    assert not started_pids(cluster["workdir"])  # no pid file left to mislead a later start
    status = slurm_local("status", cluster)
    assert status.returncode == 1 and "cluster not running" in status.stdout, status.stdout
