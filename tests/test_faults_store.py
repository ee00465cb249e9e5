"""The embedded store under the faults of issue 20's "The store": a kill while its schema is
created, another MLflow client creating it at the same moment, a damaged page, and readers
that must never create, lock or need write access to a store. Real processes, killed and
raced; the store is then read with MLflow's own client."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, client_for, run_cli
from test_faults import QUICK, finished_per_config, ready, running, start, store_runs, sweep_args, wait_for

pytestmark = pytest.mark.slow


def fresh(tmp_path, name):
    cwd = tmp_path / name
    cwd.mkdir()
    return cwd, f"sqlite:///{cwd / 'mlflow.db'}"


def own_cache(tmp_path, name):
    """An environment whose store template cache is new: the run migrates a schema itself."""
    return {"XDG_CACHE_HOME": str(tmp_path / f"cache-{name}")}


def one_run_finished(uri):
    """The store opens with MLflow's client and holds one FINISHED run, nothing RUNNING."""
    client_for(uri).search_experiments()
    return list(finished_per_config(uri).values()) == [1] and not running(uri)


# ------------------------------------------------------------------------- schema creation


def migration_chain():
    """MLflow's schema revisions, oldest first (the order its migrations commit them)."""
    import mlflow
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations"))
    return [rev.revision for rev in reversed(list(scripts.walk_revisions()))]


def revision_being_built(folder):
    """The revision the schema being migrated in ``folder`` has committed, or None."""
    for db in folder.glob("*.creating-*"):
        if db.name.endswith("-journal"):
            continue
        with contextlib.suppress(sqlite3.Error):
            with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=0)) as con:
                row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            if row:
                return row[0]
    return None


def wait_for_schema_point(cwd, templates, chain, revision):
    """Until the run building the store in ``cwd`` holds its schema lock (``revision`` None),
    or its migration in ``templates`` has committed ``revision`` of MLflow's ``chain``."""
    if revision is None:
        wait_for((cwd / "mlflow.db.lock").exists, timeout=600, poll=0.002)
        return
    target = chain.index(revision)
    wait_for(
        lambda: chain.index(revision_being_built(templates) or chain[0]) >= target,
        timeout=600,
        poll=0.002,
    )


def test_kill_9_at_any_point_of_a_new_stores_schema_creation_leaves_a_usable_store(tmp_path):
    """MLflow's migrations commit one by one: a kill between two of them used to leave a store
    that every later run refused ("table ... already exists"). The run is stopped (SIGSTOP) on
    the event itself: once it holds the store's lock, or once its migration has committed a
    given revision of MLflow's chain (a quarter, half, three quarters of the way); the test
    checks the schema is still incomplete there, then kills it with SIGKILL. The next run
    trains, and no dead builder's file is left beside the store or in the template cache."""
    chain = migration_chain()
    points = [None] + [chain[len(chain) * k // 4] for k in (1, 2, 3)]
    for i, revision in enumerate(points):
        cwd, uri = fresh(tmp_path, f"kill-{i}")
        env = own_cache(tmp_path, i)
        templates = Path(env["XDG_CACHE_HOME"]) / "shallownet" / "stores"
        first = start(cwd, "shallownet-train", *QUICK, f"tracking.uri={uri}", env=env)
        wait_for_schema_point(cwd, templates, chain, revision)
        os.killpg(first.pid, signal.SIGSTOP)
        assert not (cwd / "mlflow.db").exists(), revision  # stopped inside the schema's creation
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
        res = run_cli(["shallownet-train", *QUICK, f"tracking.uri={uri}"], cwd, env=env)
        assert res.returncode == 0, (revision, res.stderr[-3000:])
        assert one_run_finished(uri), (revision, [r.info.status for r in store_runs(uri)])
        assert not list(cwd.glob("mlflow.db.creating-*"))  # the dead builder's file is gone
        assert not list(templates.glob("*.creating-*"))


RIVAL = (
    "import sys\n"
    "from mlflow import MlflowClient\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "MlflowClient(sys.argv[1]).search_experiments()\n"
)


def test_another_mlflow_client_creating_the_store_at_the_same_moment_does_not_stop_the_run(tmp_path):
    """An MLflow client of its own (the UI, a notebook) creates the new store as the first run
    does. It is let go on the event itself: once the run holds the schema lock, or once the
    run's migration has committed a given revision of MLflow's chain (30 % and 60 % of the
    way), with the store still not in place. The run waits for the other's schema instead of
    exiting 3, and both succeed."""
    chain = migration_chain()
    for i, revision in enumerate([None, chain[len(chain) * 3 // 10], chain[len(chain) * 6 // 10]]):
        cwd, uri = fresh(tmp_path, f"race-{i}")
        env = own_cache(tmp_path, i)
        templates = Path(env["XDG_CACHE_HOME"]) / "shallownet" / "stores"
        rival = subprocess.Popen(
            [sys.executable, "-c", RIVAL, uri],
            env=cli_env(),
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert rival.stdout.readline().strip() == "ready"  # mlflow imported, waiting for its cue
        run = start(cwd, "shallownet-train", *QUICK, f"tracking.uri={uri}", env=env)
        wait_for_schema_point(cwd, templates, chain, revision)
        assert not (cwd / "mlflow.db").exists(), revision  # the run's schema is not in place yet
        rival.stdin.write("go\n")
        rival.stdin.flush()
        out, _ = run.communicate(timeout=600)
        _, rival_err = rival.communicate(timeout=600)
        assert run.returncode == 0, (revision, out[-3000:])
        assert rival.returncode == 0, (revision, rival_err[-3000:])
        assert one_run_finished(uri), (revision, [r.info.status for r in store_runs(uri)])


# ------------------------------------------------------------------------- a damaged store


def damage_page(db, index):
    """Overwrite the root page of ``index`` (a b-tree of the store) with garbage."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        size = con.execute("PRAGMA page_size").fetchone()[0]
        (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()
    with open(db, "r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(b"\xa5" * size)


def test_a_sweep_on_a_store_with_a_damaged_page_ends_its_parent_and_names_the_cause(store):
    """The metrics' index damaged: runs, tags and params are still written and read, every
    metric fails. The children end FAILED, and so does the parent, whose summary (metrics)
    cannot be written; the error lines say the store is malformed."""
    cwd, uri = ready(store)
    damage_page(cwd / "mlflow.db", "sqlite_autoindex_metrics_1")
    res = run_cli(sweep_args(uri, "seed=0,1", sweep_dir=cwd / "sweep"), cwd)
    assert res.returncode == 3, res.stdout + res.stderr
    (parent,) = store_runs(uri, "parent")
    assert parent.info.status == "FAILED", parent.info.status
    assert "database disk image is malformed" in parent.data.tags["failure_reason"]
    children = store_runs(uri, "child")
    assert len(children) == 2 and {r.info.status for r in children} == {"FAILED"}
    assert not running(uri)
    lines = (res.stdout + res.stderr).splitlines()
    closing = [line for line in lines if "could not close parent run" in line]
    assert len(closing) == 1 and closing[0].endswith("database disk image is malformed"), lines
    assert not [line for line in lines if "autoflush" in line], lines


# ------------------------------------------------------------------------- readers


@pytest.fixture
def store_to_freeze(tmp_path):
    """(folder, freeze): freeze() returns a read-only view of the folder: a read-only bind
    mount as root (whom no file mode stops), else the folder with its write modes removed."""
    folder, view = tmp_path / "store", tmp_path / "read-only"
    folder.mkdir()
    frozen = []

    def freeze():
        if os.geteuid() == 0:
            view.mkdir()
            subprocess.run(["mount", "--bind", str(folder), str(view)], check=True)
            frozen.append(view)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
            return view
        for p in [folder, *folder.rglob("*")]:
            frozen.append((p, p.stat().st_mode))
            p.chmod(p.stat().st_mode & ~0o222)
        return folder

    yield folder, freeze
    for item in reversed(frozen):
        if item == view:
            subprocess.run(["umount", str(view)], check=False)
        else:
            item[0].chmod(item[1])


def refused_no_store(res, path):
    lines = res.stderr.strip().splitlines()
    return res.returncode == 2 and len(lines) == 1 and f"no store at {path}" in lines[0]


def test_readers_never_create_lock_or_need_write_access_to_a_store(tmp_path, store_to_freeze):
    """shallownet-reproduce and shallownet-report refuse a missing store in one line, exit 2,
    creating nothing (reproduce used to create an empty store), take no lock on an existing
    one, and report on a store that nothing can write."""
    empty = tmp_path / "empty"
    empty.mkdir()
    # the default store named relative to the working directory (from a checkout it would be
    # the checkout's own outputs/, which may hold a store)
    default = "outputs/mlflow.db"
    env = {"SHALLOWNET_TRACKING_URI": f"sqlite:///{default}"}
    res = run_cli(["shallownet-reproduce", "--sweep", "latest"], empty, env=env)
    assert refused_no_store(res, default), res.stdout + res.stderr
    typo = empty / "typo" / "mlflow.db"
    res = run_cli(["shallownet-reproduce", "0" * 32, "--tracking-uri", f"sqlite:///{typo}"], empty)
    assert refused_no_store(res, typo), res.stderr
    res = run_cli(["shallownet-report", "--sweep", "latest", "--no-log"], empty, env=env)
    assert refused_no_store(res, default), res.stderr
    assert not list(empty.iterdir())  # no store, no folder, no lock

    folder, freeze = store_to_freeze
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    assert run_cli(sweep_args(uri, "seed=0,1", sweep_dir=tmp_path / "sweep"), tmp_path).returncode == 0
    (folder / "mlflow.db.lock").unlink()
    child = store_runs(uri, "child")[0].info.run_id
    res = run_cli(["shallownet-reproduce", child, "--tracking-uri", uri], tmp_path)
    assert res.returncode == 0 and "identical" in res.stdout, res.stdout + res.stderr
    assert not (folder / "mlflow.db.lock").exists()  # a reader takes no schema lock

    read_only = f"sqlite:///{freeze() / 'mlflow.db'}"
    out = tmp_path / "report"
    res = run_cli(
        [
            "shallownet-report",
            "--sweep",
            "latest",
            "--no-log",
            "--tracking-uri",
            read_only,
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "report.md").is_file()
    assert not (folder / "mlflow.db.lock").exists()
    statuses = sorted(r.info.status for r in store_runs(uri))
    assert statuses == ["FINISHED"] * 4  # parent, two children and the reproduction
