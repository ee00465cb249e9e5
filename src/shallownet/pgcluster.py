"""A PostgreSQL cluster for the MLflow server: created by ``initdb``, run by ``pg_ctl``.

Data in ``<workdir>/postgres`` (or, when the PostgreSQL user cannot reach the workdir, e.g. a
root-only pytest tmp dir, a stable ``<tmp>/shallownet-pg-<hash>``), listening on 127.0.0.1
and a socket in a 0700 directory. Every login needs the password (``scram-sha-256``): initdb
hashes it (``--pwfile``) and keeps only the verifier; the plain text stays in
``<workdir>/pgpass``, a libpq password file (0600, the caller's). As root, PostgreSQL runs
as ``$SHALLOWNET_PG_USER``, else ``postgres``, else ``nobody``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from . import procs

HOST = "127.0.0.1"
DATABASE = "mlflow"
PGPASS = "pgpass"
PG_AUTH = "scram-sha-256"
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


class ServerError(RuntimeError):
    """A server could not be started, found or stopped."""


def find_pg_bindir() -> Path:
    """initdb/pg_ctl/postgres/psql: in $PG_BINDIR if set, else /usr/lib/postgresql/<newest>/bin or PATH."""
    if os.environ.get("PG_BINDIR"):
        where, candidates = f"$PG_BINDIR={os.environ['PG_BINDIR']}", [Path(os.environ["PG_BINDIR"])]
    else:
        where = "/usr/lib/postgresql/*/bin or PATH"
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name.zfill(4))[
            ::-1
        ]
        candidates += [Path(shutil.which("initdb")).parent] if shutil.which("initdb") else []
    for cand in candidates:
        if all((cand / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql", "createdb")):
            return cand
    raise ServerError(
        f"PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found in {where}. Install them "
        "(Debian: `apt-get install -y postgresql-15`), point $PG_BINDIR at them, or use `--backend sqlite`."
    )


def pg_driver() -> str:
    """psycopg (3) if installed, else psycopg2: named, since plain ``postgresql://`` means
    psycopg2 in SQLAlchemy 2.0 and psycopg in 2.1."""
    import importlib.util

    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return dialect
    raise ServerError("no PostgreSQL driver: `pip install 'psycopg[binary]'`, or use `--backend sqlite`")


def pg_user() -> str:
    """The OS account that runs PostgreSQL (which refuses to run as root)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in (os.environ.get("SHALLOWNET_PG_USER"), "postgres", "nobody"):
        try:
            if name and pwd.getpwnam(name).pw_uid != 0:
                return name
        except KeyError:
            continue
    raise ServerError("running as root with no unprivileged account for PostgreSQL: set SHALLOWNET_PG_USER")


def _run(cmd: list[str], user: str | None, cwd: Path, env: dict | None = None, check: bool = True):
    """``cmd`` as ``user`` (None: as we are; subprocess switches to it when we are root).
    Secrets never go on ``cmd``: /proc/PID/cmdline is readable by every local account."""
    as_user = {}
    if user is not None and os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    env = {**(env or os.environ), "LC_ALL": "C", "LANG": "C"}
    res = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, **as_user
    )
    if check and res.returncode != 0:
        raise ServerError(
            f"{Path(cmd[0]).name} failed (exit {res.returncode}): {' '.join(cmd)}\n{res.stderr}"
        )
    return res


def _owned_dir(path: Path, user: str) -> bool:
    """Make ``path`` a 0700 directory of ``user``; True if ``user`` can reach and write it."""
    pw = pwd.getpwnam(user)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_symlink() or path.lstat().st_uid not in (pw.pw_uid, os.geteuid()):
        raise ServerError(f"{path} is not a directory of {user}")
    if os.geteuid() == 0:
        os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(0o700)
    return (
        _run(["test", "-w", str(path), "-a", "-x", str(path)], user, Path("/"), check=False).returncode == 0
    )


def cluster_base(workdir: Path, user: str) -> Path:
    """The directory holding data/, run/ (the socket) and the log."""
    if _owned_dir(workdir / "postgres", user):
        return workdir / "postgres"
    with contextlib.suppress(OSError):
        (workdir / "postgres").rmdir()
    digest = hashlib.sha1(str(workdir).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / f"shallownet-pg-{digest}"
    if not _owned_dir(base, user):
        raise ServerError(f"PostgreSQL user {user!r} cannot write {base}")
    return base


def libpq_env(pgpass: str | Path, env: dict | None = None) -> dict[str, str]:
    """``env`` for a libpq client logging in with ``pgpass`` (PGPASSWORD would win over it)."""
    return {**{k: v for k, v in (env or os.environ).items() if k != "PGPASSWORD"}, "PGPASSFILE": str(pgpass)}


def _write_private(path: Path, text: str) -> None:
    """``text`` in ``path``, mode 0600 (libpq ignores a password file others can read)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _initdb(pg: dict[str, Any], password: str, durable: bool) -> None:
    """A new cluster whose superuser needs ``password`` on the socket and on 127.0.0.1 only."""
    base, user = Path(pg["base"]), pg["user"]
    pwfile = base / "initdb-password"  # in the 0700 base dir, for initdb's eyes only
    _write_private(pwfile, password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
    cmd = [
        f"{pg['bindir']}/initdb",
        "-D",
        pg["datadir"],
        "-U",
        user,
        f"--auth={PG_AUTH}",
        f"--pwfile={pwfile}",
    ]
    try:
        _run([*cmd, "--encoding=UTF8", "--locale=C", *([] if durable else ["--no-sync"])], user, base)
    finally:
        pwfile.unlink(missing_ok=True)
    # initdb's own file also allows ::1 and replication: nothing but the socket and 127.0.0.1
    Path(pg["datadir"], "pg_hba.conf").write_text(
        f"local all all {PG_AUTH}\nhost all all {HOST}/32 {PG_AUTH}\n"
    )
    hosts = [HOST] + ([pg["socket_dir"]] if pg["socket_dir"] else [])
    # any port (a restart may pick another), any database; the password is URL-safe
    _write_private(Path(pg["pgpass"]), "".join(f"{_pgpass_field(h)}:*:*:{user}:{password}\n" for h in hosts))


def start_postgres(
    workdir: str | Path, port: int, *, durable: bool = True, timeout: float = 60
) -> dict[str, Any]:
    """Create (once) and start the cluster on 127.0.0.1:``port`` with database ``mlflow``.

    ``durable=False`` (throw-away test servers) skips fsync. Returns a dict with ``uri``
    (``postgresql+DRIVER://USER@127.0.0.1:PORT/mlflow?passfile=...``), ``user``, ``port``,
    ``pgpass``, ``bindir``, ``base``, ``datadir``, ``socket_dir``, ``log`` and ``pid``.
    """
    workdir = Path(workdir).resolve()
    bindir, driver, user = find_pg_bindir(), pg_driver(), pg_user()
    base = cluster_base(workdir, user)
    sockdir = base / "run"
    short = len(str(sockdir)) + len("/.s.PGSQL.65535") <= _MAX_SOCKET_PATH
    pgpass = workdir / PGPASS
    pg = {"user": user, "port": port, "bindir": str(bindir), "base": str(base), "pgpass": str(pgpass)}
    pg.update(
        datadir=str(base / "data"), log=str(base / "postgres.log"), socket_dir=str(sockdir) if short else None
    )
    pg["uri"] = f"{driver}://{user}@{HOST}:{port}/{DATABASE}?passfile={urllib.parse.quote(str(pgpass))}"
    if procs.alive(postmaster_pid(pg)):
        raise ServerError(f"PostgreSQL is already running on {pg['datadir']}; stop it first")
    if not (base / "data" / "PG_VERSION").exists():
        _initdb(pg, secrets.token_urlsafe(24), durable)
    elif not pgpass.exists():
        raise ServerError(f"{pgpass} is gone: its cluster cannot be used; delete {base} to start afresh")
    _owned_dir(sockdir, user)
    settings = {"listen_addresses": HOST, "port": port, "unix_socket_directories": pg["socket_dir"] or ""}
    settings.update(password_encryption=PG_AUTH, max_connections=50, **({} if durable else {"fsync": "off"}))
    options = " ".join(f"-c {k}={shlex.quote(str(v))}" for k, v in settings.items())  # through a shell
    ctl = [f"{bindir}/pg_ctl", "-D", pg["datadir"], "-l", pg["log"], "-w", "-t", str(int(timeout))]
    try:  # also on Ctrl-C: pg_ctl puts the postmaster in a session of its own
        _run([*ctl, "-o", options, "start"], user, base)
        pg["pid"] = postmaster_pid(pg)
        createdb = [f"{bindir}/createdb", "-w", "-h", HOST, "-p", str(port), "-U", user, DATABASE]
        res = _run(createdb, None, Path("/"), libpq_env(pgpass), check=False)
        if res.returncode != 0 and "already exists" not in res.stderr:
            raise ServerError(f"createdb {DATABASE} failed: {res.stderr.strip()}")
    except BaseException:
        stop_postgres(pg)
        raise
    return pg


def postmaster_pid(pg: dict[str, Any]) -> int | None:
    try:
        return int(Path(pg["datadir"], "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_postgres(pg: dict[str, Any] | None, timeout: float = 30) -> None:
    """``pg_ctl stop -m fast``; SIGTERM/SIGKILL to what is left of it. A no-op if it is not running."""
    pid = postmaster_pid(pg) if pg else None
    if not procs.alive(pid):
        return
    server = procs.with_children(pid)
    ctl = [f"{pg['bindir']}/pg_ctl", "-D", pg["datadir"], "-m", "fast", "-w", "-t", str(int(timeout)), "stop"]
    _run(ctl, pg["user"], Path(pg["base"]), check=False)
    procs.end(server, timeout=5)
