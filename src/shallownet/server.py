"""A local MLflow tracking server backed by PostgreSQL (or SQLite), bound to 127.0.0.1 only.

Python API::

    pg = start_postgres(workdir, port)            # initdb + pg_ctl start + CREATE DATABASE mlflow
    proc = start_mlflow_server(pg["uri"], workdir / "artifacts", 5000)
    ...
    stop(server=proc, postgres=pg)                # idempotent, leaves nothing running

    with running_server(tmp_path) as uri:         # free ports, cleanup in ``finally``
        MlflowClient(uri) ...

    migrate("sqlite:///outputs/mlflow.db", "http://127.0.0.1:5000", experiment="shallownet")

CLI::

    python -m shallownet.server start [--backend postgres|sqlite] [--port 5000]
                                       [--workdir outputs/server] [--detach]
    python -m shallownet.server status|stop [--workdir outputs/server]
    python -m shallownet.server migrate --from sqlite:///outputs/mlflow.db \
                                         --to http://127.0.0.1:5000 [--experiment shallownet]

PostgreSQL refuses to run as root.  When this process is root, every server-side
PostgreSQL command (initdb, pg_ctl) runs through ``runuser -u USER --`` as an unprivileged
user: ``$SHALLOWNET_PG_USER`` if set, else ``postgres`` if that account exists, else
``nobody``.  The cluster lives in ``<workdir>/postgres`` (owned by that user, mode 0700) when
that user can reach the workdir; otherwise (e.g. under a root-only ``/tmp/pytest-of-root``) in
``<tmp>/shallownet-pg-<hash of workdir>``, a stable path so restarts keep their data.
The server listens on 127.0.0.1 (and its socket) only and asks every client, its owner
included, for a password (``scram-sha-256``).  The password is generated once per cluster and
kept in ``<workdir>/pgpass``, a libpq password file (mode 0600, owned by whoever started the
server); clients get it through ``PGPASSFILE`` or the URI's ``passfile=``, never on a command
line.  A cluster made by an older version (``trust``, no pgpass) gets a password on its next
start.  The MLflow HTTP API itself has no login: this is a single-machine development server.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DATABASE = "mlflow"
STATE_FILE = "server.json"
MLFLOW_LOG = "mlflow-server.log"
PG_CONF = "shallownet.conf"
PGPASS = "pgpass"
PG_AUTH = "scram-sha-256"
DEFAULT_WORKDIR = "outputs/server"
DEFAULT_PORT = 5000
# socket paths longer than this (sun_path is 108 bytes) cannot be used
_MAX_SOCKET_PATH = 100
# fast failure for clients talking to a server (MLflow reads these on every request)
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
# for the server process: nothing it does not need (no job runner, no telemetry)
SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONUNBUFFERED": "1",
}


class ServerError(RuntimeError):
    """A server could not be started, found or stopped."""


# ----------------------------------------------------------------------------- helpers


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(n: int, host: str = HOST) -> list[int]:
    """``n`` distinct free ports (all sockets held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _require_free(port: int, what: str) -> None:
    if not port_is_free(port):
        raise ServerError(f"{what}: port {HOST}:{port} is already in use; pick another port")


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _tail(path: Path | str, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """True if ``GET <url>/health`` answers 200."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(url.rstrip("/") + "/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def http_env(**overrides: str) -> Iterator[None]:
    """Fast-failing MLflow HTTP settings for the block (values already set by the user win)."""
    wanted = {**HTTP_ENV, **overrides}
    saved = {k: os.environ.get(k) for k in wanted}
    for key, value in wanted.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ----------------------------------------------------------------------------- PostgreSQL


def find_pg_bindir() -> Path:
    """Directory with initdb/pg_ctl/postgres: $PG_BINDIR if set (only that), else
    /usr/lib/postgresql/<newest>/bin, else PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    else:
        candidates += sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        if shutil.which("initdb"):
            candidates.append(Path(shutil.which("initdb")).parent)
    for cand in candidates:
        if all((cand / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return cand
    raise ServerError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found in "
        + (
            f"$PG_BINDIR={os.environ['PG_BINDIR']}"
            if os.environ.get("PG_BINDIR")
            else "/usr/lib/postgresql/*/bin or PATH"
        )
        + ". Install them (Debian: `apt-get install -y postgresql-15`), point $PG_BINDIR at "
        "them, or use `--backend sqlite`."
    )


def pg_user() -> str:
    """The OS user that runs PostgreSQL (never root)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in (os.environ.get("SHALLOWNET_PG_USER"), "postgres", "nobody"):
        if not name:
            continue
        try:
            if pwd.getpwnam(name).pw_uid != 0:
                return name
        except KeyError:
            continue
    raise ServerError(
        "running as root and no unprivileged user for PostgreSQL: create one "
        "(`useradd --system postgres`) or set SHALLOWNET_PG_USER"
    )


def _as_user(user: str, cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", user, "--", *cmd]
        su = shutil.which("su")
        if not su:
            raise ServerError("running as root but neither runuser nor su is available")
        return [su, "-s", "/bin/sh", user, "-c", shlex.join(cmd)]
    if user != pwd.getpwuid(os.geteuid()).pw_name:
        raise ServerError(f"cannot run PostgreSQL as {user!r} without root")
    return cmd


def _run(
    cmd: list[str],
    what: str,
    cwd: Path | None = None,
    log: Path | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    env = {**(os.environ if env is None else env), "LC_ALL": "C", "LANG": "C"}
    # secrets go through ``input`` (a pipe) or files, never through ``cmd``: /proc/PID/cmdline
    # is readable by every local user
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    try:
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **stdin)
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"{what} timed out after {timeout}s: {' '.join(cmd)}") from exc
    if res.returncode != 0:
        extra = f"\n--- {log} (tail) ---\n{_tail(log)}" if log else ""
        raise ServerError(
            f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n{res.stdout}{res.stderr}{extra}"
        )
    return res


def _user_can_write(user: str, path: Path) -> bool:
    if os.geteuid() != 0:
        return os.access(path, os.W_OK | os.X_OK)
    res = subprocess.run(
        _as_user(user, ["test", "-w", str(path), "-a", "-x", str(path)]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd="/",
    )
    return res.returncode == 0


def _pg_base(workdir: Path, user: str) -> Path:
    """The directory (owned by ``user``, 0700) holding data/, run/ and the log."""
    pw = pwd.getpwnam(user)
    inside = workdir / "postgres"
    inside.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(inside, pw.pw_uid, pw.pw_gid)
    inside.chmod(0o700)
    if _user_can_write(user, inside):
        return inside
    # the user cannot traverse an ancestor of workdir (e.g. a root-only pytest tmp dir):
    # use a stable per-workdir directory in the system temp dir instead
    with contextlib.suppress(OSError):
        inside.rmdir()  # only if empty
    digest = hashlib.sha1(str(workdir.resolve()).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / f"shallownet-pg-{digest}"
    try:
        base.mkdir(mode=0o700)
    except FileExistsError:
        if base.is_symlink() or not base.is_dir() or base.lstat().st_uid not in (pw.pw_uid, 0):
            raise ServerError(f"{base} exists and is not a directory owned by {user}") from None
    if os.geteuid() == 0:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    base.chmod(0o700)
    if not _user_can_write(user, base):
        raise ServerError(f"PostgreSQL user {user!r} cannot write {base}")
    return base


def _postmaster_pid(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pg_driver() -> str:
    """The SQLAlchemy dialect+driver for PostgreSQL: psycopg (3) if installed, else psycopg2.

    The driver is named explicitly because plain ``postgresql://`` means psycopg2 in
    SQLAlchemy 2.0 but psycopg (3) in SQLAlchemy 2.1.
    """
    import importlib.util

    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return dialect
    raise ServerError(
        "no PostgreSQL driver for MLflow: `pip install 'psycopg[binary]'` "
        "(or psycopg2-binary), or use `--backend sqlite`"
    )


def _note(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def _new_password() -> str:
    # URL-safe characters only: nothing to escape in a pgpass line or in SQL
    return secrets.token_urlsafe(24)


def _scram_verifier(password: str, iterations: int = 4096) -> str:
    """What PostgreSQL stores for ``password`` (RFC 5802/7677, as psql's ``\\password`` sends it).

    PostgreSQL keeps a verifier given to it as is, so the plain password never reaches the
    server, its logs or its error messages (``password`` is ASCII: SASLprep leaves it alone).
    """
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    salt64, stored64, server64 = (base64.b64encode(raw).decode() for raw in (salt, stored_key, server_key))
    return f"SCRAM-SHA-256${iterations}:{salt64}${stored64}:{server64}"


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _write_pgpass(path: Path, user: str, password: str, socket_dir: str | None) -> None:
    """The libpq password file: ``user`` on 127.0.0.1 and on the socket, any port (a restart
    may pick another one), any database.  Created 0600 (libpq ignores a file others can read)."""
    hosts = [HOST] + ([socket_dir] if socket_dir else [])
    text = "".join(f"{_pgpass_field(h)}:*:*:{_pgpass_field(user)}:{password}\n" for h in hosts)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
        fh.write(text)
    tmp.replace(path)


def _read_pgpass_password(path: Path) -> str | None:
    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return first.rpartition(":")[2] or None  # our passwords have no ':' to escape


def libpq_env(pgpass: str | Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) for a libpq client (psql, psycopg) that logs in with ``pgpass``.

    PGPASSWORD is dropped because libpq would prefer it to the file.
    """
    out = {k: v for k, v in (os.environ if env is None else env).items() if k != "PGPASSWORD"}
    out["PGPASSFILE"] = str(pgpass)
    return out


def _pg_uri(driver: str, user: str, port: int, pgpass: Path) -> str:
    # no password in the URI (it lands in server.json and on mlflow's command line); libpq
    # reads it from ``passfile``, so the URI alone works for whoever can read that file
    return f"{driver}://{user}@{HOST}:{port}/{DATABASE}?passfile={urllib.parse.quote(str(pgpass))}"


def _initdb(bindir: Path, datadir: Path, base: Path, user: str, password: str, durable: bool) -> None:
    """A new cluster whose superuser ``user`` has ``password`` and needs it everywhere."""
    # initdb runs as ``user``: hand it the verifier in a file only ``user`` can read, in the
    # 0700 base directory, deleted as soon as initdb is done
    pwfile = base / "initdb-password"
    with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        fh.write(_scram_verifier(password) + "\n")
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(datadir),
        "-U",
        user,
        f"--auth={PG_AUTH}",
        f"--pwfile={pwfile}",
        "--encoding=UTF8",
        "--locale=C",
    ]
    if not durable:
        cmd.append("--no-sync")
    try:
        _run(_as_user(user, cmd), "initdb", cwd=base)
    finally:
        pwfile.unlink(missing_ok=True)
    with (datadir / "postgresql.conf").open("a") as fh:
        fh.write(
            f"\n# settings of shallownet.server (rewritten on every start)\ninclude_if_exists = '{PG_CONF}'\n"
        )


def _set_password_offline(bindir: Path, datadir: Path, base: Path, user: str, password: str) -> None:
    """Give the superuser of the stopped cluster ``password``.

    Single-user mode takes no connections, so an old ``trust`` pg_hba.conf is never live
    while the password is being set; the verifier goes through stdin, not the command line.
    """
    sql = f"ALTER ROLE CURRENT_USER PASSWORD '{_scram_verifier(password)}';\n"
    _run(
        _as_user(user, [str(bindir / "postgres"), "--single", "-D", str(datadir), "postgres"]),
        "setting the PostgreSQL password (single-user mode)",
        cwd=base,
        input=sql,
    )


def _write_hba(datadir: Path) -> None:
    # rewritten on every start, so a cluster from an older version loses its ``trust`` lines;
    # a password for everyone on the socket and 127.0.0.1 only (no ::1, no replication, no LAN)
    (datadir / "pg_hba.conf").write_text(
        "# written by shallownet.server on every start: local development only\n"
        f"local all all {PG_AUTH}\n"
        f"host all all {HOST}/32 {PG_AUTH}\n"
    )


def _cluster_password(
    bindir: Path, datadir: Path, base: Path, user: str, pgpass: Path, notify: Callable[[str], None]
) -> str:
    """The existing cluster's password from ``pgpass``, or a new one set offline when there is
    no pgpass (a ``trust`` cluster from an older version, or a deleted file)."""
    password = _read_pgpass_password(pgpass)
    if password:
        return password
    hba = (datadir / "pg_hba.conf").read_text(errors="replace")
    why = "it used trust auth" if " trust" in hba else f"no {pgpass.name} file"
    password = _new_password()
    _set_password_offline(bindir, datadir, base, user, password)
    notify(f"upgraded PostgreSQL in {datadir} ({why}): {PG_AUTH} now, password in {pgpass}")
    return password


def start_postgres(
    workdir: str | Path,
    port: int,
    *,
    durable: bool = True,
    timeout: float = 60,
    notify: Callable[[str], None] = _note,
) -> dict[str, Any]:
    """Create (once) and start a PostgreSQL cluster on 127.0.0.1:``port`` with database ``mlflow``.

    Re-uses an existing cluster in the same workdir (data survives restarts).  ``durable=False``
    trades crash safety for speed (initdb --no-sync, fsync off): for throw-away test servers.
    Logins need the password in ``<workdir>/pgpass`` (see the module docstring); an existing
    cluster without that file is given a new password, and ``notify`` is told so.
    Returns a dict with ``uri`` (``postgresql+DRIVER://USER@127.0.0.1:PORT/mlflow?passfile=...``,
    see :func:`pg_driver`), ``user``, ``port``, ``pgpass``,
    ``bindir``, ``base``, ``datadir``, ``socket_dir``, ``log`` and ``pid`` (the postmaster).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = find_pg_bindir()
    driver = pg_driver()
    user = pg_user()
    _require_free(port, "PostgreSQL")
    base = _pg_base(workdir, user)
    datadir, sockdir, log = base / "data", base / "run", base / "postgres.log"
    pgpass = workdir / PGPASS
    info = {
        "user": user,
        "port": port,
        "bindir": str(bindir),
        "base": str(base),
        "datadir": str(datadir),
        "log": str(log),
        "pgpass": str(pgpass),
        "uri": _pg_uri(driver, user, port, pgpass),
    }

    if _postmaster_pid(datadir) and pid_alive(_postmaster_pid(datadir)):
        raise ServerError(
            f"a PostgreSQL server is already running on {datadir} "
            f"(pid {_postmaster_pid(datadir)}); stop it first"
        )
    if not (datadir / "PG_VERSION").exists():
        password = _new_password()  # once per cluster: restarts read it back from pgpass
        _initdb(bindir, datadir, base, user, password, durable)
    else:
        password = _cluster_password(bindir, datadir, base, user, pgpass, notify)
    _write_hba(datadir)

    sockdir.mkdir(exist_ok=True)
    sock_ok = len(str(sockdir)) + len("/.s.PGSQL.65535") <= _MAX_SOCKET_PATH
    info["socket_dir"] = str(sockdir) if sock_ok else None
    # rewritten on every start: the socket line follows the cluster, the mode is forced back
    _write_pgpass(pgpass, user, password, info["socket_dir"])
    settings = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": str(sockdir) if sock_ok else "",
        "max_connections": "50",
        "logging_collector": "off",
        "password_encryption": PG_AUTH,
    }
    if not durable:
        settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
    (datadir / PG_CONF).write_text("".join(f"{k} = '{v}'\n" for k, v in settings.items()))
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        for path in (sockdir, datadir / PG_CONF, datadir / "pg_hba.conf"):
            os.chown(path, pw.pw_uid, pw.pw_gid)

    _run(
        _as_user(
            user,
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
        ),
        "pg_ctl start",
        cwd=base,
        log=log,
        timeout=timeout + 10,
    )
    info["pid"] = _postmaster_pid(datadir)
    try:
        _create_database(info)
    except BaseException:
        stop_postgres(info)
        raise
    return info


def _create_database(pg: Mapping[str, Any]) -> None:
    """``CREATE DATABASE mlflow`` unless it exists, logging in with the pgpass file."""
    psql = [
        str(Path(pg["bindir"]) / "psql"),
        "-X",
        "-q",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        HOST,
        "-p",
        str(pg["port"]),
        "-U",
        pg["user"],
        "-d",
        "postgres",
        "-tA",
    ]
    env = libpq_env(pg["pgpass"])
    query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
    try:
        exists = _run([*psql, "-c", query], "psql", env=env).stdout.strip()
    except ServerError as exc:
        if "password authentication failed" not in str(exc):
            raise
        raise ServerError(
            f"{exc}\n{pg['pgpass']} does not hold this cluster's password; "
            "delete it and start again to set a new one"
        ) from None
    if exists != "1":
        _run([*psql, "-c", f"CREATE DATABASE {DATABASE}"], "CREATE DATABASE", env=env)


def stop_postgres(pg: Mapping[str, Any] | None, timeout: float = 30) -> None:
    """``pg_ctl stop -m fast`` (then immediate, then SIGKILL); a no-op if not running."""
    if not pg:
        return
    datadir, user, bindir = Path(pg["datadir"]), pg["user"], Path(pg["bindir"])
    pid = _postmaster_pid(datadir) or pg.get("pid")
    if not (datadir / "postmaster.pid").exists() and not pid_alive(pid):
        return
    for mode in ("fast", "immediate"):
        try:
            _run(
                _as_user(
                    user,
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(datadir),
                        "-m",
                        mode,
                        "-w",
                        "-t",
                        str(int(timeout)),
                        "stop",
                    ],
                ),
                f"pg_ctl stop -m {mode}",
                cwd=Path(pg.get("base", datadir.parent)),
                timeout=timeout + 10,
            )
        except ServerError:
            if not (datadir / "postmaster.pid").exists():
                break
            continue
        break
    if pid_alive(pid) and "postgres" in _cmdline(pid):
        os.kill(pid, signal.SIGKILL)
    _wait_gone([pid] if pid else [], timeout=10)


# ----------------------------------------------------------------------------- MLflow server


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(pid_alive(p) for p in pids)


def start_mlflow_server(
    backend_uri: str,
    artifacts_dir: str | Path,
    port: int,
    host: str = HOST,
    *,
    log_path: str | Path | None = None,
    workers: int = 1,
    timeout: float = 90,
    pgpass: str | Path | None = None,
) -> subprocess.Popen:
    """Start ``mlflow server`` (proxied artifacts in ``artifacts_dir``) and wait for /health.

    The server runs in its own session (so Ctrl-C in a terminal goes to us, not to it) with its
    output in ``log_path`` (default: ``<artifacts_dir>/../mlflow-server.log``).  ``pgpass``
    (the libpq password file of a PostgreSQL backend) reaches it as ``PGPASSFILE``.  Raises
    :class:`ServerError` with the log tail if it exits or does not answer within ``timeout``.
    """
    if host != HOST:
        raise ServerError(f"refusing to bind {host!r}: this helper serves on {HOST} only")
    artifacts_dir = Path(artifacts_dir).resolve()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else artifacts_dir.parent / MLFLOW_LOG
    _require_free(port, "MLflow server")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(artifacts_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    env = {**os.environ, **SERVER_ENV}
    if pgpass is not None:
        env = libpq_env(pgpass, env)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=artifacts_dir.parent,
            start_new_session=True,
        )
    proc.log_path = str(log_path)  # type: ignore[attr-defined]
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise ServerError(
                    f"mlflow server exited with code {proc.returncode} before "
                    f"answering {url}/health\n--- {log_path} (tail) ---\n"
                    f"{_tail(log_path)}"
                )
            if health_ok(url, timeout=1.0):
                return proc
            if time.monotonic() > deadline:
                raise ServerError(
                    f"mlflow server did not answer {url}/health within "
                    f"{timeout}s\n--- {log_path} (tail) ---\n{_tail(log_path)}"
                )
            time.sleep(0.2)
    except BaseException:  # timeout, early exit, Ctrl-C: leave nothing behind
        stop_mlflow_server(proc)
        raise


def stop_mlflow_server(server: subprocess.Popen | int | None, timeout: float = 15) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL; a no-op if it is gone."""
    if server is None:
        return
    proc = server if isinstance(server, subprocess.Popen) else None
    pid = proc.pid if proc else int(server)
    if proc is None and pid_alive(pid) and "mlflow" not in _cmdline(pid):
        return  # the pid was recycled by an unrelated process: leave it alone
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        pgid = None
    if pgid != pid:  # not a group leader (started elsewhere): signal only the process
        pgid = None
    members = group_members(pgid) if pgid else ([pid] if pid_alive(pid) else [])

    def signal_all(sig: int) -> None:
        try:
            if pgid:
                os.killpg(pgid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    if members:
        signal_all(signal.SIGTERM)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        if not _wait_gone(members, timeout=timeout if proc is None else 3):
            signal_all(signal.SIGKILL)
            for p in members:  # in case a child left the group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, signal.SIGKILL)
            _wait_gone(members, timeout=5)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def stop(
    workdir: str | Path | None = None,
    *,
    server: subprocess.Popen | int | None = None,
    postgres: Mapping[str, Any] | None = None,
) -> None:
    """Stop the MLflow server, then PostgreSQL.  Idempotent.

    Give the handles (``server`` Popen or pid, ``postgres`` dict from :func:`start_postgres`),
    or a ``workdir`` whose state file (written by :func:`start`) names them, or both.
    """
    state: dict[str, Any] = {}
    if workdir is not None:
        state = load_state(workdir) or {}
    try:
        stop_mlflow_server(server if server is not None else state.get("mlflow_pid"))
    finally:
        stop_postgres(postgres if postgres is not None else state.get("postgres"))
        if workdir is not None:
            with contextlib.suppress(FileNotFoundError):
                (Path(workdir) / STATE_FILE).unlink()


# ----------------------------------------------------------------------------- both together


def load_state(workdir: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(workdir) / STATE_FILE).read_text())
    except FileNotFoundError:
        return None


def start(
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    backend: str = "postgres",
    port: int = DEFAULT_PORT,
    pg_port: int | None = None,
    durable: bool = True,
    timeout: float = 90,
    notify: Callable[[str], None] = _note,
) -> tuple[dict[str, Any], subprocess.Popen]:
    """Start the backend store and the MLflow server; write ``<workdir>/server.json``.

    Returns ``(state, server_process)``; ``state["tracking_uri"]`` is the http URI.
    """
    if backend not in ("postgres", "sqlite"):
        raise ServerError(f"unknown backend {backend!r} (postgres or sqlite)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    old = load_state(workdir)
    if old and (pid_alive(old.get("mlflow_pid")) or pid_alive((old.get("postgres") or {}).get("pid"))):
        raise ServerError(
            f"a server from {workdir / STATE_FILE} is still running "
            f"({old.get('tracking_uri')}); run `stop` first"
        )
    _require_free(port, "MLflow server")
    pg = None
    if backend == "postgres":
        if pg_port is None:
            pg_port = next(p for p in free_ports(2) if p != port)
        pg = start_postgres(workdir, pg_port, durable=durable, notify=notify)
        backend_uri = pg["uri"]
    else:
        backend_uri = f"sqlite:///{workdir / 'server.db'}"
    try:
        proc = start_mlflow_server(
            backend_uri,
            workdir / "artifacts",
            port,
            log_path=workdir / MLFLOW_LOG,
            timeout=timeout,
            pgpass=pg and pg["pgpass"],
        )
    except BaseException:
        stop_postgres(pg)
        raise
    state = {
        "backend": backend,
        "backend_uri": backend_uri,
        "tracking_uri": f"http://{HOST}:{port}",
        "port": port,
        "mlflow_pid": proc.pid,
        "mlflow_log": str(workdir / MLFLOW_LOG),
        "artifacts": str(workdir / "artifacts"),
        "postgres": pg,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    tmp = workdir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(workdir / STATE_FILE)
    return state, proc


@contextlib.contextmanager
def running_server(tmpdir: str | Path, backend: str = "postgres") -> Iterator[str]:
    """A throw-away server on free loopback ports in ``tmpdir``; yields its http URI.

    The state file in ``tmpdir`` names the pids and ports while it runs.  Everything is
    stopped (and a PostgreSQL directory outside ``tmpdir`` removed) when the block exits.
    """
    tmpdir = Path(tmpdir).resolve()
    port = free_port()
    state: dict[str, Any] | None = None
    proc = None
    try:
        state, proc = start(tmpdir, backend=backend, port=port, durable=False)
        yield state["tracking_uri"]
    finally:
        pg = (state or {}).get("postgres") or (load_state(tmpdir) or {}).get("postgres")
        stop(tmpdir, server=proc, postgres=pg)
        if pg and not Path(pg["base"]).is_relative_to(tmpdir):
            shutil.rmtree(pg["base"], ignore_errors=True)


def status(workdir: str | Path = DEFAULT_WORKDIR) -> dict[str, Any]:
    """What the state file says, plus whether each part is alive now."""
    state = load_state(workdir)
    if not state:
        return {"running": False, "workdir": str(Path(workdir).resolve())}
    pg = state.get("postgres")
    state["mlflow_alive"] = pid_alive(state.get("mlflow_pid"))
    state["healthy"] = health_ok(state["tracking_uri"])
    if pg:
        state["postgres_alive"] = pid_alive(_postmaster_pid(Path(pg["datadir"])) or pg.get("pid"))
    state["running"] = state["healthy"] and (not pg or state["postgres_alive"])
    return state


# ----------------------------------------------------------------------------- migration


def migrate(
    src_uri: str,
    dst_uri: str,
    experiment: str = "shallownet",
    *,
    dst_experiment: str | None = None,
    include_deleted: bool = False,
    log=print,
) -> dict[str, str]:
    """Copy every run of ``experiment`` from ``src_uri`` to ``dst_uri`` (see
    ``tracking.copy_experiment``) with this module's fast-failing HTTP settings; returns
    {old_id: new_id}."""
    from . import tracking

    with http_env():
        try:
            return tracking.copy_experiment(
                src_uri,
                dst_uri,
                experiment,
                dst_experiment=dst_experiment,
                include_deleted=include_deleted,
                log=log,
            )
        except (LookupError, tracking.TrackingError) as err:
            raise ServerError(str(err)) from None


# ----------------------------------------------------------------------------- CLI


def _print_uri(state: Mapping[str, Any]) -> None:
    uri = state["tracking_uri"]
    print(f"tracking.uri={uri}", flush=True)
    print(
        f"# or: export MLFLOW_TRACKING_URI={uri}   (backend: {state['backend_uri']}; "
        f"log: {state['mlflow_log']})",
        file=sys.stderr,
        flush=True,
    )


def _print_access(state: Mapping[str, Any]) -> None:
    """How another local account gets in: over HTTP as is, to PostgreSQL with a copy of pgpass."""
    if not state.get("postgres"):
        return
    pgpass = state["postgres"]["pgpass"]
    print(
        f"# PostgreSQL wants a password ({PG_AUTH}); yours is in {pgpass} (mode 0600)\n"
        f"# other local accounts: use tracking.uri (MLflow's HTTP API has no login); for SQL "
        f"access: install -m 600 -o THEM {pgpass} ~THEM/.pgpass",
        file=sys.stderr,
        flush=True,
    )


def _cmd_start(args: argparse.Namespace) -> int:
    state, proc = start(
        args.workdir, backend=args.backend, port=args.port, pg_port=args.pg_port, timeout=args.timeout
    )
    _print_uri(state)
    _print_access(state)
    if args.detach:
        print(
            f"# running in the background; stop with: python -m shallownet.server stop "
            f"--workdir {args.workdir}",
            file=sys.stderr,
            flush=True,
        )
        return 0

    def _interrupt(signum, _frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a shell's `&` ignores it
        signal.signal(sig, _interrupt)
    print("# serving in the foreground; Ctrl-C stops it", file=sys.stderr, flush=True)
    code = 0
    try:
        while proc.poll() is None:
            time.sleep(0.5)
        print(
            f"mlflow server exited with code {proc.returncode}\n--- log tail ---\n"
            f"{_tail(state['mlflow_log'])}",
            file=sys.stderr,
        )
        code = 1
    except KeyboardInterrupt:
        print("# stopping ...", file=sys.stderr, flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        stop(args.workdir, server=proc, postgres=state.get("postgres"))
        print("# stopped", file=sys.stderr, flush=True)
    return code


def _cmd_stop(args: argparse.Namespace) -> int:
    state = load_state(args.workdir)
    if not state:
        print(f"no server state in {Path(args.workdir) / STATE_FILE}: nothing to stop")
        return 0
    stop(args.workdir)
    print(f"stopped {state['tracking_uri']} ({state['backend']})")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    st = status(args.workdir)
    if "tracking_uri" not in st:
        print(f"not running (no {Path(args.workdir) / STATE_FILE})")
        return 1
    print(f"tracking.uri={st['tracking_uri']}")
    print(
        f"running={st['running']} healthy={st['healthy']} mlflow_pid={st['mlflow_pid']} "
        f"alive={st['mlflow_alive']}"
    )
    print(f"backend={st['backend']} {st['backend_uri']}")
    if st.get("postgres"):
        print(
            f"postgres pid={st['postgres']['pid']} alive={st['postgres_alive']} "
            f"data={st['postgres']['datadir']}"
        )
    print(f"artifacts={st['artifacts']} log={st['mlflow_log']}")
    return 0 if st["running"] else 1


def _cmd_migrate(args: argparse.Namespace) -> int:
    migrate(
        args.src,
        args.dst,
        args.experiment,
        dst_experiment=args.to_experiment,
        include_deleted=args.include_deleted,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shallownet.server", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start", help="start PostgreSQL (or SQLite) + mlflow server on 127.0.0.1")
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="MLflow port (default 5000)")
    p.add_argument("--pg-port", type=int, default=None, help="PostgreSQL port (default: free)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR)
    p.add_argument("--detach", action="store_true", help="return after start; `stop` ends it")
    p.add_argument("--timeout", type=float, default=90, help="seconds to wait for /health")
    p.set_defaults(func=_cmd_start)
    for name, func, text in (
        ("stop", _cmd_stop, "stop a detached server"),
        ("status", _cmd_status, "show the server's state"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--workdir", default=DEFAULT_WORKDIR)
        p.set_defaults(func=func)
    p = sub.add_parser("migrate", help="copy an experiment's runs to another tracking URI")
    p.add_argument("--from", dest="src", required=True, help="e.g. sqlite:///outputs/mlflow.db")
    p.add_argument("--to", dest="dst", required=True, help="e.g. http://127.0.0.1:5000")
    p.add_argument("--experiment", default="shallownet")
    p.add_argument("--to-experiment", default=None, help="destination name (default: same)")
    p.add_argument("--include-deleted", action="store_true")
    p.set_defaults(func=_cmd_migrate)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # e.g. Ctrl-C while starting: the helpers have cleaned up
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
