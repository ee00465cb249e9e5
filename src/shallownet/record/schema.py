"""The schema of an embedded (sqlite) MLflow store: created whole or not at all, in well under a
second, and waited for while another process creates it.

MLflow creates a store's schema in place, in dozens of migrations that each commit (seconds of
work): a process killed in between leaves a store that every later client refuses ("table ...
already exists"), and two clients creating one store at once collide the same way. Here MLflow's
migrations run once per MLflow and sqlite version, into a **template** in the user's cache
(``$XDG_CACHE_HOME/shallownet/stores``), built in a temporary file and renamed into place once
complete. A new store is a copy of that template, made in a temporary file beside the store, one
shallownet process at a time (a lock file beside it), and linked into place once complete; the
link never replaces a store another client began meanwhile. Where the cache cannot be written,
the store is migrated in its temporary file directly. A store that is not at MLflow's latest
schema revision yet and is still being written is being created by another client (the MLflow
UI, a notebook): it is waited for, for a bounded time."""

import contextlib
import fcntl
import functools
import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from importlib import metadata
from pathlib import Path

SCHEMA_WAIT_SECONDS = 60  # the longest wait for a schema another process is creating
QUIET_SECONDS = 10  # a store unchanged for this long is no longer being created
POLL_SECONDS = 0.1
BUILDING = ".creating-"  # mlflow.db.creating-<pid>-<token>: a schema being built

MISSING, PARTIAL, COMPLETE, DAMAGED = "missing", "partial", "complete", "damaged"


class SchemaError(RuntimeError):
    """A store a reader cannot open as it is: missing, without its schema, unreadable."""


def ensure(path):
    """Return once the sqlite store at ``path`` has MLflow's complete schema: made now when
    there is no store, waited for (bounded) while another process creates it. Any other store
    (an older schema, a damaged file) is left to MLflow's own checks."""
    if state(path)[0] == COMPLETE:
        return
    with _lock(path):
        if not path.exists():
            _build(path)
        _await(path)


def require(path):
    """A reader's check: the store at ``path`` exists with its complete schema (waited for while
    another process creates it). Nothing is created, locked or written. Raises SchemaError."""
    if not path.is_file():
        raise SchemaError(f"no store at {path} (not found: pass --tracking-uri or set MLFLOW_TRACKING_URI)")
    kind, detail = _await(path)
    if kind == DAMAGED:
        raise SchemaError(f"store at {path} unreadable: {detail}")
    if kind != COMPLETE:
        raise SchemaError(
            f"no store at {path}: the file holds no MLflow schema"
            if detail is None
            else f"store at {path} has schema revision {detail}, not MLflow's {latest_revision()}: "
            f"take a backup, then run mlflow db upgrade sqlite:///{path}"
        )


def state(path):
    """(kind, detail) of the file at ``path``: (MISSING, None), (DAMAGED, sqlite's message),
    (PARTIAL, its revision or None) or (COMPLETE, the revision). Read-only: opening a missing
    or write-protected file creates and changes nothing."""
    if not path.is_file():
        return MISSING, None
    try:
        revision = _revision(path)
    except sqlite3.OperationalError:  # no such table (yet), or locked by the migration in course
        return PARTIAL, None
    except sqlite3.DatabaseError as err:  # not a database, malformed
        return DAMAGED, str(err)
    return (COMPLETE if revision == latest_revision() else PARTIAL), revision


def _revision(path):
    """The alembic revision recorded in the sqlite file at ``path`` (None if none), read-only."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)) as db:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


@functools.lru_cache(maxsize=1)
def latest_revision():
    """MLflow's newest schema revision: the template's (MLflow migrated it to its head), else the
    head of the migration scripts MLflow ships, read with alembic as ``mlflow db upgrade`` does
    (parsing every script costs ~0.4 s)."""
    with contextlib.suppress(sqlite3.Error):
        if template_path().is_file():
            return _revision(template_path())
    import mlflow
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations")).get_current_head()


# ------------------------------------------------------------------------------ the template


def cache_dir():
    """$XDG_CACHE_HOME/shallownet/stores, else ~/.cache/shallownet/stores (XDG base dirs)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "shallownet" / "stores"


def template_path():
    """The migrated empty store of this MLflow and sqlite: a new version has a template of its own."""
    return cache_dir() / f"mlflow-{metadata.version('mlflow')}-sqlite-{sqlite3.sqlite_version}.db"


def template():
    """The path of a complete template, built now (once, under a lock) if there is none; None
    where the cache cannot be written (a read-only home)."""
    path = template_path()
    if state(path)[0] == COMPLETE:
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock(path):
            if state(path)[0] != COMPLETE:
                tmp = _migrated_copy(path)
                os.replace(tmp, path)  # atomic: a template is whole or absent
    except OSError:
        return None
    return path


def warm_up():
    """MLflow's SQL store set up once on a scratch copy of the template, when there is one: the
    recorder's process does it while its caller composes, so that opening the user's store later
    costs a connection, not the store's code (~0.6 s). Touches no store of the user's."""
    source = template_path()
    if state(source)[0] != COMPLETE:
        return
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "scratch.db"
        shutil.copyfile(source, scratch)
        MlflowClient(f"sqlite:///{scratch}").search_experiments(max_results=1)


def _migrated_copy(path):
    """A temporary file beside ``path`` holding a store MLflow created and migrated. Files of
    dead builders are removed first (builders hold the lock, so every one left is dead's)."""
    from mlflow.tracking import MlflowClient

    _remove_leftovers(path)
    tmp = _building(path)
    try:
        MlflowClient(f"sqlite:///{tmp}")  # MLflow creates and migrates the schema of a new store
    except BaseException:
        _remove(tmp)
        raise
    _journal(tmp).unlink(missing_ok=True)
    return tmp


# ------------------------------------------------------------------------------ a new store


def _build(path):
    """MLflow's schema in a temporary file beside ``path`` (a copy of the template, else
    migrated there), linked into place once complete: a kill leaves only the temporary file,
    which the next build removes. A store another client began meanwhile is kept."""
    source = template()
    tmp = _migrated_copy(path) if source is None else _copied(source, path)
    try:
        _link(tmp, path)
    finally:
        _remove(tmp)


def _copied(source, path):
    """A temporary file beside ``path`` holding a copy of the template ``source``, as MLflow
    would have created it here. Files of dead builders are removed first."""
    _remove_leftovers(path)
    tmp = _building(path)
    try:
        shutil.copyfile(source, tmp)
        _as_if_created_here(tmp)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _as_if_created_here(db):
    """The template's Default experiment as MLflow writes it when it creates a store: artifacts
    under ./mlruns/0 of the creating process, created now."""
    now = int(time.time() * 1000)
    location = (Path.cwd() / "mlruns" / "0").as_posix()
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute(
            "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
            "WHERE experiment_id = 0",
            (location, now, now),
        )


def _link(tmp, path):
    """``tmp`` at ``path`` too, unless a file is there already (then that one is kept)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: a rename, which a store begun meanwhile
        if not path.exists():  # in the instant between would lose; no better is possible there
            os.replace(tmp, path)


# ------------------------------------------------------------------------------ helpers


def _await(path):
    """state(path) once the store is complete, damaged, quiet (unchanged for QUIET_SECONDS: no
    one is creating it) or SCHEMA_WAIT_SECONDS have passed."""
    deadline = time.monotonic() + SCHEMA_WAIT_SECONDS
    while True:
        kind, detail = state(path)
        if kind != PARTIAL or _quiet(path) or time.monotonic() > deadline:
            return kind, detail
        time.sleep(POLL_SECONDS)


def _quiet(path):
    changed = [p.stat().st_mtime for p in (path, _journal(path)) if p.exists()]
    return time.time() - max(changed, default=0) > QUIET_SECONDS


def _journal(path):
    return path.with_name(path.name + "-journal")


def _building(path):
    """The name of a schema being built for ``path``: <name>.creating-<pid>-<token>."""
    return path.with_name(f"{path.name}{BUILDING}{os.getpid()}-{secrets.token_hex(4)}")


def _remove(tmp):
    for f in (tmp, _journal(tmp)):
        f.unlink(missing_ok=True)


def _remove_leftovers(path):
    for leftover in path.parent.glob(path.name + BUILDING + "*"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _lock(path):
    """An exclusive lock on ``<path>.lock`` while a schema is built there: one shallownet
    process builds, the others then find it complete. The kernel releases the lock of a
    killed process."""
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
