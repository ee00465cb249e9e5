"""What a newcomer reads when a command refuses the input (issue 22): the nearest key or option
of a misspelt one, a list where a list is expected, a CSV without its target or its file, an
unknown run id. Each is one line and exit 2, and nothing is recorded."""

import json
import time
from pathlib import Path

import pytest
from conftest import client_for, run_cli, runs_of

from shallownet.sweep import preflight
from shallownet.hints import did_you_mean
from shallownet.job import RunError


def refused(args):
    with pytest.raises(RunError) as info:
        preflight.check(args)
    assert info.value.code == 2 and len(info.value.message.splitlines()) == 1, info.value.message
    return info.value.message


@pytest.mark.parametrize(
    "args,hint",
    [
        (["lr=0.5"], "unknown key 'lr' (did you mean 'lr_schedule.lr'?)"),
        (["activaton=relu"], "unknown key 'activaton' (did you mean 'activation'?)"),
        (["activation=rleu"], "activation=rleu: no such option (did you mean 'relu'?)"),
        (["lr_schedule=cosin"], "lr_schedule=cosin: no such option (did you mean 'cosine'?)"),
        (["initializer=he_normall"], "(did you mean 'he_normal'?)"),
        (["experiment=tutorial000_activation"], "(did you mean 'tutorial000_activations'?)"),
        (["train.epoch=5"], "unknown key 'train.epoch' in 'train' (did you mean 'train.epochs'?)"),
        (["lr_schedul.lr=3"], "(did you mean 'lr_schedule.lr'?)"),
        (["model.hiden_sizes=[3]"], "(did you mean 'model.hidden_sizes'?)"),
        (["dataset=spiral", "dataset.nosie=0.1"], "(did you mean 'dataset.noise'?)"),
    ],
)
def test_a_misspelt_key_or_option_gets_the_nearest_one(args, hint):
    line = refused(args)
    assert hint in line and "valid" in line, line


def test_a_key_nothing_resembles_gets_no_guess():
    line = refused(["foo.bar=1"])
    assert "did you mean" not in line and "unknown key 'foo.bar'" in line


def test_did_you_mean_matches_a_dotted_key_by_its_last_part():
    keys = ["lr_schedule.lr", "lr_schedule.name", "seed", "activation"]
    assert did_you_mean("lr", keys) == " (did you mean 'lr_schedule.lr'?)"
    assert did_you_mean("sed", keys) == " (did you mean 'seed'?)"
    assert did_you_mean("zzz", keys) == ""


def test_a_number_where_layer_sizes_go_says_it_needs_a_list():
    line = refused(["model.hidden_sizes=8"])
    assert line == (
        "config error: model.hidden_sizes: needs a list, e.g. model.hidden_sizes=[8] "
        "(one hidden layer of 8) or model.hidden_sizes=[16,8]"
    )


def test_a_csv_without_its_target_names_the_key_to_set(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label\n1,0\n2,1\n")
    line = refused(["dataset=csv", f"dataset.path={path}"])
    assert line == (
        "config error: dataset=csv needs dataset.target (the name of its label column), e.g. dataset.target=label"
    )
    assert "???" not in refused(["dataset=csv"])


def test_a_missing_csv_file_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(["dataset=csv", "dataset.path=nope.csv", "dataset.target=y"])
    assert line == (
        f"config error: dataset.path: no CSV file at {tmp_path / 'nope.csv'} "
        f"(from the working directory {tmp_path}); set it to the file's path"
    )


@pytest.mark.slow
def test_reproducing_an_unknown_run_says_the_store_has_none(store):
    cwd, uri = store
    client_for(uri).search_experiments()  # a store with its schema and no run
    res = run_cli(["shallownet-reproduce", "deadbeef", "--tracking-uri", uri], cwd)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip().splitlines() == [f"shallownet-reproduce: no run deadbeef in {uri}"]
    assert runs_of(uri) == []


@pytest.mark.slow
def test_a_relative_csv_path_is_recorded_absolute_and_named_when_gone(store, tmp_path):
    cwd, uri = store
    (cwd / "d.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    args = ["dataset=csv", "dataset.path=d.csv", "dataset.target=y", "train.epochs=20"]
    res = run_cli(["shallownet-train", *args, "tracking.log_model=false", f"tracking.uri={uri}"], cwd)
    assert res.returncode == 0, res.stderr
    (run,) = runs_of(uri)
    assert run.data.params["dataset.path"] == str(cwd / "d.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (cwd / "d.csv").rename(cwd / "moved.csv")
    res = run_cli(["shallownet-reproduce", run.info.run_id, "--tracking-uri", uri], elsewhere)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert f"dataset.path: no CSV file at {cwd / 'd.csv'}" in line
    assert len(runs_of(uri)) == 1  # the refused re-run recorded nothing


def test_a_sweep_written_without_m_keeps_hydras_advice_to_add_m():
    """``shallownet-train activation=tanh,relu`` (a sweep without -m): one line that still says
    how to sweep, how to pass a list and how to pass one string."""
    line = refused(["activation=tanh,relu"])
    assert line.startswith("config error: Ambiguous value for argument 'activation=tanh,relu'")
    assert "add -m (--multirun)" in line and "activation=[a,b]" in line


def test_shallownet_report_without_arguments_prints_its_usage_and_what_to_name(capsys):
    from shallownet.report.cli import parse_args

    with pytest.raises(SystemExit) as info:
        parse_args([])
    err = capsys.readouterr().err.splitlines()
    assert info.value.code == 2
    assert err[0].startswith("usage: shallownet-report [-h] (--sweep SWEEP_ID|latest | --experiment NAME)")
    assert err[-1] == (
        "shallownet-report: error: name what to report: --sweep latest (or a sweep id), or --experiment NAME"
    )


def test_an_unreachable_server_advice_fits_how_shallownet_was_installed(tmp_path, monkeypatch):
    """From a checkout: `make server` and the checkout's outputs/ store. From a wheel (no
    Makefile): the server's own command and the per-user default store."""
    from shallownet import checkout
    from shallownet.record import tracking

    def refusal():
        with pytest.raises(tracking.TrackingError) as info:
            tracking.configure("http://127.0.0.1:9", timeout=5)
        return str(info.value)

    top = checkout.root()
    line = refusal()
    assert "Start one with 'make server'" in line
    assert line.endswith(f"tracking.uri=sqlite:///{top / 'outputs' / 'mlflow.db'}")
    monkeypatch.setattr(checkout, "root", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    line = refusal()
    assert "make server" not in line and "Start one with 'python -m shallownet.server start'" in line
    assert line.endswith(f"tracking.uri=sqlite:///{tmp_path / 'shallownet' / 'mlflow.db'}")


def test_an_interrupted_sweeps_summary_has_no_empty_table_and_counts_the_whole_wait(capsys):
    """A sweep stopped before any job ended: one line instead of a table header with no rows,
    and the time since the command started (imports and compose included), not since the
    parent run was opened a moment before the stop."""
    import psutil

    from shallownet.sweep.session import Session

    session = object.__new__(Session)
    session.total, session.swept, session.sweep_id = 6, ["seed"], "abc123"
    session.uri, session.exp_id = "sqlite:////tmp/nowhere/mlflow.db", "1"
    session.t0 = time.time()  # the parent opened just now
    counts = dict.fromkeys(
        ["jobs_finished", "jobs_failed", "jobs_diverged", "jobs_killed", "jobs_skipped"], 0
    )
    session._summary([], counts, "parent-id", complete=False)
    out = capsys.readouterr().out.splitlines()
    head = next(line for line in out if line.startswith("sweep summary"))
    waited = time.time() - psutil.Process().create_time()
    seconds = float(head.split("; ")[1].split("s since")[0])
    assert head.startswith("sweep summary (0/6 jobs this session, INCOMPLETE; ")
    assert waited - 5 <= seconds <= waited + 0.1 and seconds > 0.5  # printed to 0.1 s; started earlier
    assert "  no job ended this session: nothing to tabulate" in out
    assert not [line for line in out if "test_acc mean" in line]


def test_a_sweep_run_from_an_empty_directory_leaves_it_empty(tmp_path, monkeypatch):
    """Its job files and every folder they needed (outputs/multirun/<time>/<job>/) go when the
    sweep closes; a folder that holds anything else (the checkout's store) stays."""
    from shallownet.sweep.session import _tidy

    monkeypatch.chdir(tmp_path)
    sweep_dir = Path("outputs") / "multirun" / "2026-12-07_15-00-00-000000"
    for num in (0, 1):
        (sweep_dir / str(num)).mkdir(parents=True)
        (sweep_dir / str(num) / "outcome.json").write_text(
            json.dumps({"session": "s1", "status": "FINISHED"})
        )
    (sweep_dir / "multirun.yaml").write_text("{}")
    _tidy(sweep_dir, "s1")
    assert list(tmp_path.iterdir()) == []
    (sweep_dir / "0").mkdir(parents=True)
    (tmp_path / "outputs" / "mlflow.db").write_text("")
    _tidy(sweep_dir, "s1")
    assert [p.name for p in tmp_path.rglob("*")] == ["outputs", "mlflow.db"]
    elsewhere = tmp_path.parent / f"{tmp_path.name}-sweeps" / "sweep"  # outside the working dir
    (elsewhere / "0").mkdir(parents=True)
    _tidy(elsewhere, "s1")
    assert not elsewhere.exists() and elsewhere.parent.is_dir()  # its own folder only
