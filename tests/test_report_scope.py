"""What a report covers: ``--sweep latest`` is the sweep run last (a resume counts), the title
names the sweep and its experiment file or the experiment and the filter, the lines under it
repeat neither, an ``--experiment`` report gets a folder of its own, and a tutorial's claim is
judged only in a report of the study it belongs to."""

import pytest
from conftest import client_for, run_cli, runs_of
from test_report import SweepWriter, loss_curve, new_store, params
from test_report_design import readme_set

from shallownet.record import tracking
from shallownet.report import main as report_main

ACC = {"relu": [0.90, 0.92, 0.88, 0.95], "tanh": [0.85, 0.86, 0.87, 0.84]}
ETT = {"relu": [5, 6, 7, 8], "tanh": [10, 12, 14, 16]}
CLAIM = "ReLU converges faster than tanh"


def write_sweep(w, sweep_id, study, first_no=0):
    """A finished sweep: activation {relu, tanh} x seeds 0..3, with its parent."""
    parent = w.parent(sweep_id, study)
    no = first_no
    for act in ("relu", "tanh"):
        for s in range(4):
            w.child(
                parent, sweep_id, params(act, s, run_no=no), ACC[act][s], 0.3, loss_curve(ETT[act][s]), no=no
            )
            no += 1
    w.c.set_terminated(parent, "FINISHED")
    return parent


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    """tutorial 000's sweep and a spiral study with the same factor, in one store."""
    root = tmp_path_factory.mktemp("scope")
    uri, client, exp = new_store(root)
    w = SweepWriter(client, exp, root)
    write_sweep(w, "sweep-t000", "tutorial000_activations")
    write_sweep(w, "sweep-spiral", "spiral_activations", first_no=100)
    return uri


def report(uri, tmp_path, *args, cwd=None):
    out = tmp_path / "out"
    argv = [*args, "--tracking-uri", uri, "--no-log"] + ([] if cwd else ["--out", str(out)])
    assert report_main(argv) == 0
    return (out / "report.md").read_text() if not cwd else None


def test_a_claim_is_judged_only_in_its_studys_report(two_studies, tmp_path):
    spiral = report(two_studies, tmp_path / "s", "--sweep", "sweep-spiral")
    assert CLAIM not in spiral
    assert "No tutorial claim is declared for experiment file spiral_activations." in spiral
    own = report(two_studies, tmp_path / "t", "--sweep", "sweep-t000")
    claims = own.split("## Tutorial claims")[1].split("\n## ")[0]
    assert f"Tutorial 000: {CLAIM}" in claims and "relu vs tanh, epochs to threshold" in claims


def test_an_experiment_report_over_two_studies_judges_no_claim(two_studies, tmp_path):
    md = report(two_studies, tmp_path, "--experiment", "shallownet")
    assert CLAIM not in md
    assert (
        "Runs: 8 from sweep `sweep-spiral` (experiment file src/shallownet/conf/experiment/spiral_activations.yaml)"
        in md
    )
    one = report(
        two_studies,
        tmp_path / "one",
        "--experiment",
        "shallownet",
        "--filter",
        "tags.sweep_id = 'sweep-t000'",
    )
    assert f"Tutorial 000: {CLAIM}" in one  # all its runs are tutorial 000's: its claim applies


def test_titles_name_the_sweep_and_its_file_or_the_experiment_and_filter(two_studies, tmp_path):
    """The title names what the report covers; the lines under it add what the title does
    not say and repeat nothing of it."""
    md = report(two_studies, tmp_path / "s", "--sweep", "sweep-t000")
    head = md.split("\n## ")[0].splitlines()
    assert (
        head[0]
        == "# Sweep sweep-t000: experiment file src/shallownet/conf/experiment/tutorial000_activations.yaml"
    )
    assert head[2] == "- MLflow experiment: `shallownet`"
    assert head[3].startswith("- Parent run: `") and head[4].startswith("- Child runs: 8 (")
    assert "\n".join(head).count("sweep-t000") == 1
    assert "\n".join(head).count("tutorial000_activations") == 1
    assert "Sweep: `" not in md and "Study: `" not in md and "Covers:" not in md
    flt = "tags.sweep_id = 'sweep-t000'"
    md = report(two_studies, tmp_path / "e", "--experiment", "shallownet", "--filter", flt)
    head = md.split("\n## ")[0].splitlines()
    assert head[0] == f"# MLflow experiment shallownet: runs where {flt}"
    assert head[2] == (
        "- Runs: 8 from sweep `sweep-t000` (experiment file "
        "src/shallownet/conf/experiment/tutorial000_activations.yaml)"
    )
    assert head[3].startswith("- Child runs: 8 (")
    assert "\n".join(head).count("tutorial000_activations") == 1
    assert "Sweep: `" not in md and "Parent run:" not in md  # no sweep's report
    assert "Study: `" not in md and "Covers:" not in md
    md = report(two_studies, tmp_path / "a", "--experiment", "shallownet")
    head = md.split("\n## ")[0].splitlines()
    assert head[0] == "# MLflow experiment shallownet: all runs"
    assert head[2].startswith("- Runs: 8 from sweep `sweep-spiral` (experiment file ")
    assert head[3] == "- No tutorial claim is judged: these runs are not all of one experiment file"


def test_each_experiment_report_gets_its_own_folder(two_studies, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filters = ["tags.sweep_id = 'sweep-t000'", "tags.sweep_id = 'sweep-spiral'"]
    for f in filters:
        report(two_studies, tmp_path, "--experiment", "shallownet", "--filter", f, cwd=tmp_path)
    report(two_studies, tmp_path, "--experiment", "shallownet", cwd=tmp_path)
    folders = sorted(p.name for p in (tmp_path / "outputs" / "reports").iterdir())
    assert len(folders) == 3 and "shallownet" not in folders, folders
    assert "shallownet--all-runs" in folders
    assert any(x.startswith("shallownet--tags.sweep_id_=_sweep-t000-") for x in folders), folders
    for name in folders:
        first = (tmp_path / "outputs" / "reports" / name / "report.md").read_text().splitlines()[0]
        assert first.startswith("# MLflow experiment shallownet: ")
    assert (
        sum(
            "sweep-spiral" in (tmp_path / "outputs" / "reports" / n / "report.md").read_text().splitlines()[0]
            for n in folders
        )
        == 1
    )


def test_latest_sweep_id_counts_a_resume(tmp_path):
    """A parent reopened as a resumed sweep reopens it (reopen_run with a fresh heartbeat) is
    the latest sweep, though another parent was created after it."""
    _, client, exp = new_store(tmp_path)
    w = SweepWriter(client, exp, tmp_path)
    first, second = w.parent("sweep-a", "s"), w.parent("sweep-b", "s")
    for p in (first, second):
        client.set_terminated(p, "FINISHED")
    assert tracking.latest_sweep_id(client, "shallownet") == "sweep-b"
    tracking.reopen_run(client, client.get_run(first), tracking.owner_tags())
    assert tracking.latest_sweep_id(client, "shallownet") == "sweep-a"


@pytest.mark.slow
def test_sweep_latest_after_a_resume_is_the_resumed_sweep(tmp_path, monkeypatch, capsys):
    """Sweep A, then sweep B, then A again (every job skipped): latest is A, and A's parent
    gets the report."""
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    base = [
        "shallownet-train",
        "-m",
        "dataset=quadrant",
        "train.epochs=20",
        "seed=0",
        "tracking.log_model=false",
    ]

    def sweep(act):
        res = run_cli([*base, f"activation={act}", f"tracking.uri={uri}"], tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    sweep("tanh")
    sweep("relu")
    assert "(resumed)" in sweep("tanh")
    parents = {
        r.data.params["sweep.activation"]: r
        for r in runs_of(uri)
        if r.data.tags.get("shallownet.role") == "parent"
    }
    a, b = parents["tanh"], parents["relu"]
    assert a.info.start_time < b.info.start_time  # A was created first
    # the report in-process (the sweeps are real processes); its command line is tested elsewhere
    monkeypatch.chdir(tmp_path)
    rc = report_main(["--sweep", "latest", "--tracking-uri", uri, "--out", str(tmp_path / "r")])
    res = capsys.readouterr()
    assert rc == 0, res.err
    client = client_for(uri)
    assert {f.path for f in client.list_artifacts(a.info.run_id, "report")} >= {"report/report.md"}
    assert client.list_artifacts(b.info.run_id, "report") == []
    sweep_a = a.data.tags["sweep_id"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.splitlines()[0].startswith(f"# Sweep {sweep_a}: ") and "| tanh |" in md
    assert res.out.splitlines()[0].startswith(f"Sweep {sweep_a}: ")


def test_the_header_counts_the_runs_set_aside(tmp_path, capsys):
    """The README's set: 15 sweep runs, 2 reproductions of them, a repeat of a sweep run's
    config and seed and one new single run = 19 runs, 3 of them set aside (see Design): the
    header's two counts agree and add up."""
    uri = readme_set(tmp_path)
    md = report(uri, tmp_path, "--experiment", "shallownet")
    head = md.split("\n## ")[0].splitlines()
    runs_line = next(x for x in head if x.startswith("- Runs: "))
    assert runs_line.startswith(
        "- Runs: 19 (3 set aside as reproductions or repeats, see Design): 17 from sweep `sweep-t000`"
    )
    assert runs_line.endswith("; 2 outside any sweep")
    child = next(x for x in head if x.startswith("- Child runs: "))
    assert child == (
        "- Child runs: 16 (16 finished, 0 diverged, 0 failed, 0 unfinished); "
        "3 more set aside as reproductions or repeats, see Design"
    )
    assert "Set aside 3 run(s) that are no new replicate" in md.split("## Design")[1]
    # stdout: the levels in the study's order (the runs started tanh, relu, leaky_relu)
    out = capsys.readouterr().out.splitlines()
    acts = [ln.split()[1] for ln in out if ln.startswith("activation.name ")]
    assert acts == ["tanh", "relu", "leaky_relu"]
