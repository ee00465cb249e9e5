"""What a newcomer tries first: the README's examples, a CSV of three classes end to end, the
model's signature and server, the store every command names, the UI's description table and a
SLURM launcher that cannot submit."""

import json
import os
import re
import shlex
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BIN, client_for, run_cli, runs_of

from shallownet import net

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title):
    """The README's text from the heading ``title`` to the next heading of its level."""
    start = README.index(title)
    end = README.find(f"\n{title.split()[0]} ", start)
    return README[start : end if end > 0 else None]


def _examples():
    """(args, stated test accuracy) of every shallownet-train line of "Running your own"
    but the two that need the user's own file or print the config."""
    block = _section("## Running your own").split("```bash", 1)[1].split("```", 1)[0]
    out = []
    for line in block.strip().splitlines():
        command, _, comment = line.partition("#")
        args = shlex.split(command)
        if "dataset.path=my.csv" in args or "--cfg" in args:
            continue
        stated = re.search(r"test_acc (\d\.\d{2,3})", comment)
        out.append((args[1:], stated and stated.group(1)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("args,stated", _examples(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_every_readme_example_reaches_the_accuracy_it_states(store, args, stated):
    cwd, uri = store
    assert stated is not None, f"the README's example {args} states no test_acc"
    res = run_cli(["shallownet-train", *args, f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stderr
    (run,) = runs_of(uri)
    digits = len(stated.split(".")[1])  # the README states what it can promise on any CPU
    assert round(run.data.metrics["final_test_accuracy"], digits) == float(stated)
    printed = float(re.search(r"test_acc=(\d\.\d+)", res.stdout).group(1))
    assert printed == round(run.data.metrics["final_test_accuracy"], 3)


def _three_classes(path, n=300):
    """A CSV of three Gaussian blobs in 3 features, labels 'north', 'east', 'south' (the
    columns in the file: f_a, label, f_b, f_c)."""
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 3.0, 0.0], [3.0, 0.0, 1.0], [0.0, -3.0, -1.0]])
    k = rng.integers(0, 3, n)
    X = centers[k] + rng.normal(0, 0.8, (n, 3))
    names = np.array(["north", "east", "south"])[k]
    pd.DataFrame({"f_a": X[:, 0], "label": names, "f_b": X[:, 1], "f_c": X[:, 2]}).to_csv(path, index=False)


MULTI = ["dataset=csv", "dataset.path=data.csv", "dataset.target=label", "model.output=softmax"]
MULTI += ["train.loss=cross_entropy", "model.hidden_sizes=[8]", "lr_schedule.lr=0.5", "train.epochs=300"]


@pytest.mark.slow
def test_a_three_class_csv_trains_reports_predicts_and_reproduces_from_anywhere(store, tmp_path):
    cwd, uri = store
    _three_classes(cwd / "data.csv")
    res = run_cli(["shallownet-train", "-m", *MULTI, "seed=0,1", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    runs = [r for r in runs_of(uri) if r.data.tags.get("shallownet.role") == "child"]
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    run = runs[0]
    # the relative path is recorded resolved: the run can be re-run from any directory
    assert run.data.params["dataset.path"] == str(cwd / "data.csv")
    assert run.data.tags["n_params"] == str(3 * 8 + 8 + 8 * 3 + 3)
    assert run.data.metrics["final_test_accuracy"] > 0.9 and run.data.metrics["test_auc"] > 0.95

    # per-class probabilities, named by the file's labels, from the logged pyfunc model
    import mlflow.pyfunc

    from shallownet import datasets

    split = datasets.load({"name": "csv", "path": str(cwd / "data.csv"), "target": "label"})
    assert split.classes == ("east", "north", "south") and split.feature_names == ("f_a", "f_b", "f_c")
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    X = pd.DataFrame(split.X_test, columns=split.feature_names)
    proba = model.predict(X)
    assert list(proba.columns) == ["east", "north", "south"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    acc = np.mean(proba.to_numpy().argmax(1) == split.y_test)
    assert acc == pytest.approx(run.data.metrics["final_test_accuracy"], abs=1e-12)

    # the signature names the features: misordered columns are put in order, wrong ones refused
    shuffled = model.predict(X[["f_c", "f_a", "f_b"]])
    np.testing.assert_array_equal(shuffled.to_numpy(), proba.to_numpy())
    with pytest.raises(Exception, match="f_b"):
        model.predict(X.rename(columns={"f_b": "f_x"}))

    # the report's accuracy is the runs' accuracy
    res = run_cli(["shallownet-report", "--sweep", "latest", "--tracking-uri", uri], cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    report_dir = Path(cwd / re.search(r"^report: (.+)$", res.stdout, re.M).group(1)).parent
    summary = pd.read_csv(report_dir / "summary.csv")
    seed = summary[summary["factor"] == "seed"] if "seed" in set(summary["factor"]) else summary
    means = np.mean([r.data.metrics["final_test_accuracy"] for r in runs])
    assert np.mean(seed["final_test_accuracy_mean"]) == pytest.approx(means, abs=1e-9)

    # reproduced from another directory (the file found by its recorded path), then not found
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = run_cli(["shallownet-reproduce", run.info.run_id, "--tracking-uri", uri], elsewhere)
    assert res.returncode == 0 and res.stdout.strip().endswith("identical"), res.stdout + res.stderr
    (cwd / "data.csv").rename(cwd / "moved.csv")
    res = run_cli(["shallownet-reproduce", run.info.run_id, "--tracking-uri", uri], elsewhere)
    assert res.returncode != 0 and str(cwd / "data.csv") in res.stderr, res.stdout + res.stderr


def test_a_sigmoid_output_refuses_three_classes_in_one_line(store):
    cwd, uri = store
    _three_classes(cwd / "data.csv")
    res = run_cli(["shallownet-train", *MULTI[:3], f"tracking.uri={uri}"], cwd)
    assert res.returncode == 2 and "model.output=softmax" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (cwd / "mlflow.db").exists()


@pytest.mark.slow
def test_mlflow_models_serve_answers_every_class_on_loopback(store):
    cwd, uri = store
    res = run_cli(["shallownet-train", "dataset=moons", "train.epochs=200", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stderr
    (run,) = runs_of(uri)
    port = net.free_port()
    # as the README says: with the venv activated (its bin first on PATH: uvicorn is there)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(BIN.parent))
    env["MLFLOW_TRACKING_URI"] = uri
    args = ["mlflow", "models", "serve", "-m", f"runs:/{run.info.run_id}/model", "--env-manager", "local"]
    server = subprocess.Popen(
        [*args, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        body = {"dataframe_split": {"columns": ["x0", "x1"], "data": [[0.0, 1.0], [1.0, -0.5]]}}
        answer = _post_when_up(f"http://127.0.0.1:{port}/invocations", body, server)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    rows = answer["predictions"]
    assert len(rows) == 2 and all(set(r) == {"0", "1"} for r in rows), answer
    assert all(abs(r["0"] + r["1"] - 1) < 1e-12 for r in rows)
    assert rows[0]["0"] > 0.5 > rows[1]["0"]  # moons: (0, 1) is class 0, (1, -0.5) class 1


def _post_when_up(url, body, server, wait=300):
    deadline = time.monotonic() + wait
    while True:
        try:
            req = urllib.request.Request(
                url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the model server did not answer: {server.stderr.read()[-2000:]}")
            time.sleep(1)


@pytest.mark.slow
def test_every_command_names_its_store_and_ui_command_from_another_directory(tmp_path):
    db = tmp_path / "store" / "runs.db"
    uri = f"sqlite:///{db}"
    work = tmp_path / "somewhere"
    work.mkdir()
    env = {"SHALLOWNET_TRACKING_URI": uri}
    res = run_cli(["shallownet-train", "-m", "dataset=xor", "train.epochs=30", "seed=0,1"], work, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert f"MLflow store: {uri}" in lines and not (work / "outputs" / "mlflow.db").exists()
    (ui,) = [line for line in lines if line.startswith("MLflow UI: ")]
    assert f"ui --backend-store-uri {uri}   then open http://127.0.0.1:5000/#/experiments/" in ui
    assert "make ui" not in res.stdout
    assert len([r for r in runs_of(uri) if r.data.tags.get("shallownet.role") == "child"]) == 2
    run_id = runs_of(uri, filter_string="tags.`shallownet.role` = 'child'")[0].info.run_id
    for cmd in (["shallownet-report", "--sweep", "latest"], ["shallownet-reproduce", run_id]):
        res = run_cli(cmd, work, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"MLflow store: {uri}" in res.stdout.splitlines(), res.stdout


def test_the_default_store_is_one_place_whatever_the_directory(monkeypatch, tmp_path):
    from shallownet import checkout
    from shallownet.record import store

    for var in ("SHALLOWNET_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    assert checkout.root() == ROOT  # the tests run from the checkout's editable install
    assert store.default_uri() == f"sqlite:///{ROOT / 'outputs' / 'mlflow.db'}"
    monkeypatch.setattr(checkout, "root", lambda: None)  # a wheel: the per-user data directory
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert store.default_uri() == f"sqlite:///{tmp_path / 'data' / 'shallownet' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert store.default_uri() == "http://127.0.0.1:5999"
    monkeypatch.setenv("SHALLOWNET_TRACKING_URI", "sqlite:///runs.db")
    assert store.default_uri() == "sqlite:///runs.db"
    assert store.absolute("sqlite:///runs.db") == f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.mark.slow
def test_the_readme_places_the_model_where_mlflow_3_shows_it(store):
    cwd, uri = store
    res = run_cli(["shallownet-train", "train.epochs=20", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stderr
    (run,) = runs_of(uri)
    client = client_for(uri)
    assert "model" not in {a.path for a in client.list_artifacts(run.info.run_id)}  # not an artifact
    (logged,) = client.search_logged_models([run.info.experiment_id])
    assert logged.source_run_id == run.info.run_id and logged.name == "model"
    where = _section("## Quick start")
    artifacts = re.search(r"\*Artifacts\* tab holds(.+?)\.\s", where, re.S).group(1)
    assert "model" not in artifacts and "*Models* tab" in where


def test_the_parent_description_keeps_its_columns_apart_in_mlflows_ui():
    """MLflow's UI draws a Markdown table with no padding between its cells ("leaky_relu5 (5)"):
    every cell of the descriptions ends in an em space, which Markdown keeps."""
    from markdown_it import MarkdownIt

    from shallownet.sweep import session as sweep

    outcomes = [
        {"num": 0, "shown": "activation=leaky_relu", "status": "FINISHED", "test_accuracy": 0.948},
        {"num": 1, "shown": "activation=relu", "status": "FINISHED", "test_accuracy": 0.95},
    ]
    counts = {"jobs_finished": 2, "jobs_total": 2, "jobs_failed": 0, "jobs_diverged": 0}
    note = sweep._note("tutorial000_activations", "abc", counts, outcomes)
    html = MarkdownIt("commonmark").enable("table").render(note)
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert len(cells) == 6 and all(c.endswith("\u2003") for c in cells), cells
    row = re.sub(r"<[^>]+>", "", re.search(r"<tr>\s*<td>.*?</tr>", html, re.S).group(0))
    assert "leaky_relu\u2003" in row and "leaky_reluFINISHED" not in row.replace("\n", "")


@pytest.mark.parametrize("sbatch", [None, "fatal"])
def test_a_slurm_launcher_that_cannot_submit_stops_in_one_line(store, tmp_path, sbatch):
    cwd, uri = store
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = str(bin_dir)  # no sbatch at all, or one that cannot find its cluster (SLURM_CONF)
    if sbatch:
        # what SLURM 22.05's clients print and do without a configuration: the cause to name
        for tool in ("sbatch", "srun"):
            fake = bin_dir / tool
            fake.write_text(
                f"#!/bin/sh\necho '{tool}: fatal: Could not establish a configuration source' >&2\nexit 1\n"
            )
            fake.chmod(0o755)
        path += os.pathsep + "/usr/bin:/bin"
    # without sbatch: the folder alone, for a machine with a SLURM client in /usr/bin (tests/
    # test_slurm.py installs one) has an sbatch there, which waits a minute for a controller
    # that SLURM_CONF="" cannot name, and then fails: that case is not "no sbatch at all"
    res = run_cli(
        ["shallownet-train", "-m", "hydra/launcher=slurm", "dataset=xor", "seed=0,1", f"tracking.uri={uri}"],
        cwd,
        env={"PATH": path, "SLURM_CONF": ""},
    )
    assert res.returncode == 3, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("shallownet: hydra/launcher=slurm cannot submit")
    assert ("sbatch: fatal: Could not establish a configuration source" if sbatch else "sbatch") in line
    assert sbatch or "sbatch and srun not found on PATH" in line  # the case it is meant to be
    assert "Traceback" not in res.stdout + res.stderr
    assert {r.info.status for r in runs_of(uri)} <= {"FAILED"}  # no run left RUNNING


def test_a_csv_of_three_classes_numbers_them_in_sorted_order(tmp_path):
    from shallownet import datasets

    path = tmp_path / "k.csv"
    path.write_text("a,b,label\n1,2,b\n2,3,a\n3,4,c\n4,5,a\n5,6,b\n6,7,c\n")
    X, y = datasets.csv(0, path, "label")
    assert y.codes.tolist() == [1, 0, 2, 0, 1, 2] and list(y.categories) == ["a", "b", "c"]
    assert list(X.columns) == ["a", "b"] and X.to_numpy().dtype == np.float64
    with pytest.raises(datasets.DataError, match="positive='b' names class 1 of two classes"):
        datasets.csv(0, path, "label", positive="b")
    two = tmp_path / "two.csv"
    two.write_text("a,label\n1,no\n2,yes\n3,no\n")
    _, y = datasets.csv(0, two, "label", positive="yes")
    assert y.codes.tolist() == [0, 1, 0] and list(y.categories) == ["no", "yes"]  # class 1: positive
