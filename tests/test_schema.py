"""A new embedded store is a copy of a template MLflow migrated once (shallownet.record.schema): what
the copy holds, and what a dead builder or a damaged template leaves behind. In-process; the
kill -9 and rival-client cases, which need real processes, are in test_faults_store.py."""

import contextlib
import sqlite3

import pytest
from conftest import client_for

from shallownet.record import schema


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A template cache of this test's own (the user's stays untouched)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    schema.latest_revision.cache_clear()
    yield tmp_path / "cache" / "shallownet" / "stores"
    schema.latest_revision.cache_clear()


def shape(db):
    """What a store holds, in an order of its own: every table, index and trigger by name, each
    table's columns, and its rows, the Default experiment's aside (MLflow writes its
    constraints in an order that varies from one creation to the next)."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        objects = sorted(con.execute("SELECT type, name, tbl_name FROM sqlite_master"))
        tables = [name for kind, name, _ in objects if kind == "table"]
        columns = {t: con.execute(f'PRAGMA table_info("{t}")').fetchall() for t in tables}
        rows = {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    rows["experiments"] = [r for r in rows["experiments"] if "'Default'" not in r]
    return objects, columns, rows


def default_experiment(uri):
    (exp,) = client_for(uri).search_experiments()
    return exp


def test_a_new_store_is_mlflows_own_schema_copied_from_a_template_migrated_once(tmp_path, cache, monkeypatch):
    """The first store migrates the template; the second is a copy of it. Both hold exactly what
    MLflow creates itself (same statements and rows, same alembic revision), the Default
    experiment as MLflow writes it (artifacts under the creating directory's mlruns/0, created
    now), and open with a plain MlflowClient."""
    own = tmp_path / "own"
    own.mkdir()
    monkeypatch.chdir(own)
    client_for(f"sqlite:///{own / 'mlflow.db'}")  # MLflow creating a store by itself
    stores = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        schema.ensure(folder / "mlflow.db")
        stores.append(folder / "mlflow.db")
    (template,) = cache.glob("mlflow-*.db")
    assert schema.state(template) == (schema.COMPLETE, schema.latest_revision())
    for db in stores:
        assert schema.state(db) == (schema.COMPLETE, schema.latest_revision())
        assert shape(db) == shape(own / "mlflow.db")
        exp = default_experiment(f"sqlite:///{db}")
        assert (exp.name, exp.artifact_location) == ("Default", f"{db.parent}/mlruns/0")
        assert exp.creation_time >= default_experiment(f"sqlite:///{own / 'mlflow.db'}").creation_time
    assert not list(tmp_path.rglob("*.creating-*"))


def test_the_latest_revision_read_from_the_template_is_alembics_head(cache):
    from alembic.script import ScriptDirectory
    import mlflow
    from pathlib import Path

    head = ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations")).get_current_head()
    schema.template()
    schema.latest_revision.cache_clear()
    assert schema.latest_revision() == head


def test_a_dead_builders_partial_copy_beside_the_store_is_removed_and_the_store_made(tmp_path, cache):
    db = tmp_path / "mlflow.db"
    leftover = tmp_path / "mlflow.db.creating-999-dead"
    leftover.write_bytes(schema.template().read_bytes()[:4096])  # a copy cut short by a kill
    schema.ensure(db)
    assert schema.state(db)[0] == schema.COMPLETE
    assert not leftover.exists()


def test_a_damaged_template_is_rebuilt_not_copied(tmp_path, cache):
    template = schema.template()
    template.write_bytes(b"\xa5" * 4096)
    schema.latest_revision.cache_clear()
    schema.ensure(tmp_path / "mlflow.db")
    assert schema.state(template)[0] == schema.COMPLETE
    assert schema.state(tmp_path / "mlflow.db")[0] == schema.COMPLETE
    assert default_experiment(f"sqlite:///{tmp_path / 'mlflow.db'}").name == "Default"


def test_without_a_writable_cache_the_store_is_migrated_in_place(tmp_path, monkeypatch):
    """A cache path that cannot be a folder (a file stands there): no template, the store is
    still made whole."""
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    schema.latest_revision.cache_clear()
    assert schema.template() is None
    schema.ensure(tmp_path / "mlflow.db")
    assert schema.state(tmp_path / "mlflow.db")[0] == schema.COMPLETE
    assert not list(tmp_path.glob("*.creating-*"))
