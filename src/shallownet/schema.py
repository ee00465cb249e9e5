"""The schema of an embedded (sqlite) MLflow store: created whole or not at all, and waited for
while another process creates it.

MLflow creates a store's schema in place, in dozens of migrations that each commit: a process
killed in between leaves a store that every later client refuses ("table ... already exists"),
and two clients creating one store at once collide the same way. Here a new store is built in a
temporary file beside it, one shallownet process at a time (a lock file beside it), and linked
into place once complete; the link never replaces a store another client began meanwhile. A
store that is not at MLflow's latest schema revision yet and is still being written is being
created by another client (the MLflow UI, a notebook): it is waited for, for a bounded time."""

import contextlib
import fcntl
import functools
import os
import secrets
import sqlite3
import time
from pathlib import Path

SCHEMA_WAIT_SECONDS = 60  # the longest wait for a schema another process is creating
QUIET_SECONDS = 10  # a store unchanged for this long is no longer being created
POLL_SECONDS = 0.1
BUILDING = ".creating-"  # mlflow.db.creating-<pid>-<token>: a schema being built

MISSING, PARTIAL, COMPLETE, DAMAGED = "missing", "partial", "complete", "damaged"


class SchemaError(RuntimeError):
    """A store a reader cannot open as it is: missing, without its schema, unreadable."""


def ensure(path):
    """Return once the sqlite store at ``path`` has MLflow's complete schema: built now when
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
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        ) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table (yet), or locked by the migration in course
        return PARTIAL, None
    except sqlite3.DatabaseError as err:  # not a database, malformed
        return DAMAGED, str(err)
    revision = row[0] if row else None
    return (COMPLETE if revision == latest_revision() else PARTIAL), revision


@functools.lru_cache(maxsize=1)
def latest_revision():
    """MLflow's newest schema revision: the head of the migration scripts it ships (read with
    alembic, as ``mlflow db upgrade`` does)."""
    import mlflow
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations")).get_current_head()


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


@contextlib.contextmanager
def _lock(path):
    """An exclusive lock on ``mlflow.db.lock`` beside the store while its schema is built: one
    shallownet process builds, the others then find the store complete. The kernel releases
    the lock of a killed process."""
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(path):
    """MLflow's schema in a temporary file beside ``path``, linked into place once complete: a
    kill leaves only the temporary file, which the next build removes (builds hold the lock,
    so every one left is a dead builder's). A store another client began meanwhile is kept."""
    from mlflow.tracking import MlflowClient

    for leftover in path.parent.glob(path.name + BUILDING + "*"):
        leftover.unlink(missing_ok=True)
    tmp = path.with_name(f"{path.name}{BUILDING}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        MlflowClient(f"sqlite:///{tmp}")  # MLflow creates and migrates the schema of a new store
        _link(tmp, path)
    finally:
        for f in (tmp, _journal(tmp)):
            f.unlink(missing_ok=True)


def _link(tmp, path):
    """``tmp`` at ``path`` too, unless a file is there already (then that one is kept)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: a rename, which a store begun meanwhile
        if not path.exists():  # in the instant between would lose; no better is possible there
            os.replace(tmp, path)
