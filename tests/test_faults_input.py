"""Bad input that used to be recorded or to crash (issue 20, items 8-13): each value is refused
in one line naming the key and the rule, exit 2, before any store or run exists. The many
values are checked in-process through the preflight; a few go through the real commands."""

import pandas as pd
import pytest
from conftest import client_for, run_cli, runs_of

from shallownet import config
from shallownet.sweep import preflight
from shallownet.sweep import session as sweep
from shallownet.job import RunError
from shallownet.report import cli as report_cli
from shallownet.report.runs import load_curves

QUICK = ["dataset=quadrant", "model.hidden_sizes=[8]", "train.epochs=20", "tracking.log_model=false"]
GIB = 2**30


def refused(args):
    """The preflight's one line for a command line it must refuse (RunError 2)."""
    with pytest.raises(RunError) as info:
        preflight.check(args)
    err = info.value
    assert err.code == 2 and err.status == "CONFIG_ERROR"
    assert len(err.message.splitlines()) == 1, err.message
    return err.message


def assert_refused_in_one_line(res, cwd, *words):
    """Exit 2, one stderr line holding ``words``, no traceback, and no store created."""
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert all(w in line for w in words), line
    assert "Traceback" not in res.stdout + res.stderr
    assert not (cwd / "mlflow.db").exists() and not (cwd / "mlartifacts").exists()


# ------------------------------------------------------------------------------ item 8


@pytest.mark.parametrize("sizes", ["[[1]]", "[{a:1}]", "[[8,4]]", "[4,[2]]"])
def test_nested_lists_and_mappings_as_layer_sizes_are_refused(sizes):
    line = refused([f"model.hidden_sizes={sizes}"])
    assert line.startswith("config error: model.hidden_sizes: needs a list of integer layer sizes >= 1")


@pytest.mark.slow
def test_nested_layer_sizes_on_the_command_line_create_nothing(store):
    cwd, uri = store
    res = run_cli(["shallownet-train", "model.hidden_sizes=[[1]]", f"tracking.uri={uri}"], cwd)
    assert_refused_in_one_line(res, cwd, "model.hidden_sizes", "integer layer sizes")


# ------------------------------------------------------------------------------ item 9


@pytest.mark.parametrize(
    "args,rows,features",
    [
        (["dataset=quadrant", "dataset.n_samples=1000000000"], 10**9, 2),
        (["dataset=blobs", "dataset.n_samples=1000000000"], 10**9, 2),
        (["dataset=classification", "dataset.n_features=20000"], 500, 20000),
        (["dataset=classification", "dataset.n_samples=100000000"], 10**8, 3),
    ],
)
def test_the_memory_check_covers_the_data(monkeypatch, args, rows, features):
    monkeypatch.setattr(config, "_available_bytes", lambda: 8 * GIB)
    line = refused(args)
    assert line.startswith("config error: dataset.n_samples / dataset.n_features: this run needs about")
    assert f"{rows} rows x {features} features" in line and "8.0 GiB available" in line
    monkeypatch.setattr(config, "_available_bytes", lambda: None)  # the estimate itself
    cfg = _validated(args)
    net, data = config.memory_needed(cfg, *config.planned_rows(cfg["dataset"]))
    assert data >= 8 * rows * features  # at least X itself in float64


def _validated(args):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module=config.CONF_MODULE, version_base="1.3"):
        return config.validate(OmegaConf.to_container(compose("train", overrides=args), resolve=True))


def test_the_memory_check_still_passes_a_tutorial_sized_run():
    cfg = _validated(["dataset=spiral"])
    net, data = config.memory_needed(cfg, *config.planned_rows(cfg["dataset"]))
    assert net + data < 2**20  # under 1 MiB for 500 points


@pytest.mark.slow
def test_a_billion_samples_are_refused_before_a_store_exists(store):
    cwd, uri = store
    res = run_cli(
        ["shallownet-train", "dataset=quadrant", "dataset.n_samples=1000000000", f"tracking.uri={uri}"], cwd
    )
    assert_refused_in_one_line(res, cwd, "dataset.n_samples", "GiB of memory")


def test_jobs_that_failed_before_their_run_existed_count_as_failed():
    outcomes = [
        {"status": "CONFIG_ERROR", "run_id": None},
        {"status": "FAILED", "run_id": None, "message": "crashed: MemoryError: "},
        {"status": "KILLED", "run_id": None},  # SLURM lost it: its run is in the store
    ]
    counts = sweep._store_counts([], outcomes, total=3)
    assert counts["jobs_failed"] == 2 and counts["jobs_finished"] == 0


@pytest.mark.slow
def test_a_sweep_whose_job_fails_before_its_run_exists_counts_it_and_exits_1(store):
    cwd, uri = store
    (cwd / "good.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    (cwd / "ragged.csv").write_text("a,b,y\n1,2,0\n2,3,1,7\n3,1,0\n")  # found only when read
    res = run_cli(
        ["shallownet-train", "-m", "dataset=csv", "dataset.target=y", "dataset.path=good.csv,ragged.csv"]
        + ["train.epochs=20", "tracking.log_model=false", f"tracking.uri={uri}"],
        cwd,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    runs = runs_of(uri)
    (parent,) = [r for r in runs if r.data.tags.get("shallownet.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("shallownet.role") == "child"]
    assert [r.info.status for r in children] == ["FINISHED"]  # the ragged file's job made no run
    assert parent.data.metrics["jobs_failed"] == 1 and parent.data.metrics["jobs_finished"] == 1
    assert "failed 1" in res.stdout


# ------------------------------------------------------------------------------ item 10


@pytest.mark.parametrize(
    "override,key,rule",
    [
        ("tracking.experiment=''", "tracking.experiment", "1 to 500 characters"),
        ("tracking.experiment=" + "x" * 100_000, "tracking.experiment", "100000 characters"),
        ("tracking.experiment=" + "x" * 501, "tracking.experiment", "1 to 500 characters"),
        ("tracking.timeout=0", "tracking.timeout", "must be > 0"),
        ("tracking.timeout=-5", "tracking.timeout", "must be > 0"),
        ("tracking.retries=-1", "tracking.retries", "must be >= 0"),
    ],
)
def test_tracking_values_mlflow_or_http_refuse_are_refused_first(override, key, rule):
    line = refused([override])
    assert line.startswith(f"config error: {key}: ") and rule in line


def test_a_500_character_experiment_name_is_accepted():
    assert _validated(["tracking.experiment=" + "x" * 500])["tracking"]["experiment"] == "x" * 500


@pytest.mark.slow
@pytest.mark.parametrize("override", ["tracking.experiment=''", "tracking.timeout=0"])
def test_bad_tracking_values_create_no_store(store, override):
    cwd, uri = store
    res = run_cli(["shallownet-train", *QUICK, override, f"tracking.uri={uri}"], cwd)
    assert_refused_in_one_line(res, cwd, override.split("=")[0])


# ------------------------------------------------------------------------------ item 11


@pytest.mark.parametrize(
    "args,key,rule",
    [
        (["lr_schedule=plateau", "lr_schedule.factor=1.5"], "lr_schedule.factor", "lies in (0, 1)"),
        (["lr_schedule=plateau", "lr_schedule.factor=1"], "lr_schedule.factor", "lies in (0, 1)"),
        (["lr_schedule=step", "lr_schedule.gamma=2"], "lr_schedule.gamma", "lies in (0, 1)"),
        (["lr_schedule=exponential", "lr_schedule.gamma=1.01"], "lr_schedule.gamma", "lies in (0, 1)"),
        (["lr_schedule=cosine", "lr_schedule.min_lr=5"], "lr_schedule.min_lr", "below lr_schedule.lr=0.1"),
        (
            ["lr_schedule=cosine", "lr_schedule.lr=0.5", "lr_schedule.min_lr=0.5"],
            "lr_schedule.min_lr",
            "below",
        ),
    ],
)
def test_a_decay_that_raises_the_rate_is_refused(args, key, rule):
    line = refused(args)
    assert line.startswith(f"config error: {key}: ") and rule in line


def test_decays_inside_their_range_are_accepted():
    assert _validated(["lr_schedule=plateau", "lr_schedule.factor=0.5"])["lr_schedule"]["factor"] == 0.5
    assert _validated(["lr_schedule=cosine", "lr_schedule.min_lr=0.01"])["lr_schedule"]["min_lr"] == 0.01


@pytest.mark.slow
def test_a_plateau_factor_above_one_is_not_recorded(store):
    cwd, uri = store
    res = run_cli(
        ["shallownet-train", *QUICK, "lr_schedule=plateau", "lr_schedule.factor=1.5", f"tracking.uri={uri}"],
        cwd,
    )
    assert_refused_in_one_line(res, cwd, "lr_schedule.factor", "(0, 1)")


# ------------------------------------------------------------------------------ item 12


@pytest.mark.slow
def test_a_ragged_csv_is_refused_in_one_line(store):
    cwd, uri = store
    (cwd / "ragged.csv").write_text("a,b,y\n1,2,0\n2,3,1,7\n3,1,0\n")
    res = run_cli(
        [
            "shallownet-train",
            "dataset=csv",
            "dataset.path=ragged.csv",
            "dataset.target=y",
            f"tracking.uri={uri}",
        ],
        cwd,
    )
    assert_refused_in_one_line(res, cwd, "ragged.csv", "Expected 3 fields in line 3, saw 4")


def _report_error(capsys, argv):
    with pytest.raises(SystemExit) as info:
        report_cli.parse_args(["--sweep", "latest", *argv])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--alpha", "5"], ["--alpha", "(0, 1)"]),
        (["--alpha", "0"], ["--alpha", "(0, 1)"]),
        (["--alpha", "nan"], ["--alpha", "(0, 1)"]),
        (["--loss-fraction", "nan"], ["--loss-fraction", "(0, 1)"]),
        (["--loss-fraction", "1.5"], ["--loss-fraction", "(0, 1)"]),
        (["--loss-threshold", "inf"], ["--loss-threshold", "finite"]),
    ],
)
def test_report_arguments_outside_their_range_are_refused_in_one_line(capsys, argv, words):
    line = _report_error(capsys, argv)
    assert line.startswith("shallownet-report: error: argument") and all(w in line for w in words)


def test_report_out_naming_an_existing_file_is_refused_in_one_line(capsys, tmp_path):
    (tmp_path / "taken").write_text("mine")
    line = _report_error(capsys, ["--out", str(tmp_path / "taken")])
    assert "--out" in line and "is a file, not a directory" in line
    assert (tmp_path / "taken").read_text() == "mine"


def test_report_arguments_inside_their_range_are_kept():
    args = report_cli.parse_args(["--sweep", "latest", "--alpha", "0.01", "--loss-fraction", "0.2"])
    assert (args.alpha, args.loss_fraction) == (0.01, 0.2)


def test_a_curves_file_holding_a_string_sets_its_run_aside(store, tmp_path, capsys):
    cwd, uri = store
    client = client_for(uri)
    exp = client.create_experiment("curves", artifact_location=str(cwd / "artifacts"))
    ids = []
    for loss in ([0.7, 0.5, 0.3], ["0.7", "oops", "0.3"]):
        run = client.create_run(exp)
        path = tmp_path / "curves.parquet"
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": loss}).to_parquet(path, index=False)
        client.log_artifact(run.info.run_id, str(path))
        ids.append(run.info.run_id)
    curves = load_curves(client, ids, tmp_path / "dst")
    assert curves[ids[0]]["train_loss"].tolist() == [0.7, 0.5, 0.3]
    assert curves[ids[1]] is None
    (note,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("shallownet")]
    assert (
        note
        == f"shallownet-report: run {ids[1]}: curves.parquet set aside (column train_loss holds values that are not numbers)"
    )


# ------------------------------------------------------------------------------ item 13


def test_the_readme_says_a_single_run_always_trains():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("## What happens when things go wrong") + 3 :]
    table = table[: table.index("\n#")] if "\n#" in table else table
    row = next(line for line in table.splitlines() if "single runs of one config" in line.lower())
    assert "each train" in row and "by design" in row and "config_hash" in row
    for words in (
        "dataset.n_samples",
        "lr_schedule.factor",
        "tracking.experiment",
        "did you mean",
        "jobs_failed",
    ):
        assert words in table, words


@pytest.mark.slow
def test_two_single_runs_of_one_config_both_train(store):
    cwd, uri = store
    for _ in range(2):
        res = run_cli(["shallownet-train", *QUICK, f"tracking.uri={uri}"], cwd)
        assert res.returncode == 0, res.stderr
    runs = runs_of(uri)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert len({r.data.tags["config_hash"] for r in runs}) == 1
