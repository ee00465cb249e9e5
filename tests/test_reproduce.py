"""shallownet-reproduce: a fresh run reproduces bit for bit; a tampered one is caught."""

import re
import sqlite3

import pytest
from conftest import client_for, run_cli, runs_of

pytestmark = pytest.mark.slow


def test_reproduce_identical_then_detects_tampering(store):
    cwd, uri = store
    res = run_cli(
        [
            "shallownet-train",
            "dataset=moons",
            "activation=leaky_relu",
            "model.hidden_sizes=[8,4]",
            "lr_schedule=plateau",
            "lr_schedule.lr=0.3",
            "lr_schedule.patience=5",
            "train.epochs=120",
            "train.batch_size=64",
            "tracking.log_model=false",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert res.returncode == 0, res.stderr
    run_id = re.search(r"\(([0-9a-f]{32})\)", res.stdout).group(1)

    res = run_cli(["shallownet-reproduce", run_id, "--tracking-uri", uri], cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith("identical")
    (new,) = [r for r in runs_of(uri) if r.data.tags.get("reproduces") == run_id]
    assert new.info.run_id != run_id and new.info.status == "FINISHED"
    assert new.data.tags["config_hash"] == client_for(uri).get_run(run_id).data.tags["config_hash"]

    # tamper with one stored metric point of the original run
    with sqlite3.connect(uri[len("sqlite:///") :]) as db:
        n = db.execute(
            "UPDATE metrics SET value = value + 1e-9 WHERE run_uuid = ? AND key = 'test_loss' AND step = 17",
            (run_id,),
        ).rowcount
    assert n == 1
    res = run_cli(["shallownet-reproduce", run_id, "--tracking-uri", uri], cwd)
    assert res.returncode == 1
    assert "metric test_loss differs first at step 17" in res.stdout, res.stdout


def test_reproduce_unknown_run_is_a_clear_error(store):
    cwd, uri = store
    from shallownet.record.tracking import ensure_experiment

    ensure_experiment(uri, "shallownet")
    res = run_cli(["shallownet-reproduce", "0" * 32, "--tracking-uri", uri], cwd)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("shallownet-reproduce:")


def test_reproduce_names_the_packages_that_differ_from_the_runs_environment(store):
    """A run recorded elsewhere (here: its stored environment.txt says another numpy and a
    package this venv lacks): reproduce names the differences before it compares."""
    from pathlib import Path

    cwd, uri = store
    res = run_cli(
        [
            "shallownet-train",
            "dataset=xor",
            "train.loss=mse",
            "activation=sigmoid",
            "train.epochs=200",
            "tracking.log_model=false",
            "tracking.log_plots=false",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert res.returncode == 0, res.stderr
    (run,) = runs_of(uri)
    env = Path(run.info.artifact_uri.removeprefix("file://")) / "environment.txt"
    lines = [line for line in env.read_text().splitlines() if not line.startswith("numpy==")]
    env.write_text("\n".join(lines + ["numpy==1.0.0", "somepackage==9.9"]) + "\n")
    res = run_cli(["shallownet-reproduce", run.info.run_id, "--tracking-uri", uri], cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    differ = "packages that differ from the run's environment: "
    first = next((line for line in res.stdout.splitlines() if line.startswith(differ)), "")
    assert first, res.stdout
    assert "numpy 1.0.0 -> " in first and "somepackage 9.9 -> absent" in first
    assert res.stdout.strip().endswith("identical")
