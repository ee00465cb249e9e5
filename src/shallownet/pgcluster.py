"""The PostgreSQL cluster behind ``make server``, made by ``initdb --pwfile`` and run by ``pg_ctl``:
on 127.0.0.1 and a socket in a 0700 directory, every login with the password (scram-sha-256),
whose plain text is in ``<workdir>/pgpass`` (0600). Where the data go, as which account: README."""

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

from . import procs
from .net import LOOPBACK

HOST, DATABASE, PGPASS, PG_AUTH = LOOPBACK, "mlflow", "pgpass", "scram-sha-256"
DRIVER = "postgresql+psycopg"  # psycopg 3, a dependency (SQLAlchemy 2.0 reads postgresql:// as psycopg2)
TOOLS = ("initdb", "pg_ctl", "postgres", "psql", "createdb")


class ServerError(RuntimeError):
    """A server could not be started, found or stopped."""


def find_pg_bindir() -> Path:
    """$PG_BINDIR if set, else the newest /usr/lib/postgresql/*/bin, else initdb's directory on PATH."""
    debian = sorted(Path("/usr/lib/postgresql").glob("[0-9]*/bin"), key=lambda p: float(p.parent.name))
    on_path = Path(shutil.which("initdb") or "/usr/bin/initdb").parent
    bindir = Path(os.environ.get("PG_BINDIR") or (debian or [on_path])[-1])
    if not all((bindir / tool).is_file() for tool in TOOLS):
        raise ServerError(
            f"PostgreSQL server binaries ({', '.join(TOOLS)}) not found in {bindir}. Install them (Debian: "
            "`apt-get install -y postgresql-15`), point $PG_BINDIR at them, or use `--backend sqlite`."
        )
    return bindir


def pg_user() -> str:
    """The OS account that runs PostgreSQL (which refuses to run as root)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in (os.environ.get("SHALLOWNET_PG_USER"), "postgres", "nobody"):
        with contextlib.suppress(KeyError, TypeError):
            if pwd.getpwnam(name).pw_uid != 0:
                return name
    raise ServerError("running as root with no unprivileged account for PostgreSQL: set SHALLOWNET_PG_USER")


def _run(cmd, user=None, cwd="/", env=None, check=True) -> subprocess.CompletedProcess:
    """``cmd`` as ``user`` (None: as we are; as root, subprocess switches). Never a secret in
    ``cmd``: every local account can read /proc/PID/cmdline."""
    pw = pwd.getpwnam(user) if user and os.geteuid() == 0 else None
    as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []} if pw else {}
    env = {**(env or os.environ), "LC_ALL": "C"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **as_user)
    if check and res.returncode != 0:
        raise ServerError(f"{Path(cmd[0]).name} failed ({res.returncode}): {shlex.join(cmd)}\n{res.stderr}")
    return res


def _own_dir(path: Path, user: str) -> bool:
    """Make ``path`` a 0700 directory of ``user``; True if ``user`` can reach and write it."""
    pw = pwd.getpwnam(user)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_symlink() or path.stat().st_uid not in (pw.pw_uid, os.geteuid()):
        raise ServerError(f"{path} is not a directory of {user}")
    os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(0o700)
    return _run(["test", "-w", str(path), "-a", "-x", str(path)], user, check=False).returncode == 0


def _cluster_dir(workdir: Path, user: str) -> Path:
    if _own_dir(workdir / "postgres", user):
        return workdir / "postgres"
    with contextlib.suppress(OSError):
        (workdir / "postgres").rmdir()
    base = Path(tempfile.gettempdir(), "shallownet-pg-" + hashlib.sha1(bytes(workdir)).hexdigest()[:12])
    if not _own_dir(base, user):
        raise ServerError(f"PostgreSQL's account {user!r} cannot write {base}")
    return base


def libpq_env(pgpass, env=None) -> dict[str, str]:
    """``env`` for a libpq client logging in with ``pgpass`` (PGPASSWORD would win over it)."""
    return {**{k: v for k, v in (env or os.environ).items() if k != "PGPASSWORD"}, "PGPASSFILE": str(pgpass)}


def _write_private(path: Path, text: str) -> None:
    """``text`` in ``path``, mode 0600 (libpq ignores a password file others can read)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)


def _initdb(pg: dict, durable: bool) -> None:
    """A new cluster whose superuser needs a new password, kept in ``pgpass``."""
    password = secrets.token_urlsafe(24)  # URL-safe: nothing to escape in the pgpass file
    pwfile = Path(pg["base"], "initdb-password")  # in the 0700 directory, for initdb alone
    _write_private(pwfile, password + "\n")
    os.chown(pwfile, pwd.getpwnam(pg["user"]).pw_uid, -1)
    cmd = [f"{pg['bindir']}/initdb", f"--pgdata={pg['datadir']}", f"--username={pg['user']}"]
    cmd += [f"--pwfile={pwfile}", f"--auth={PG_AUTH}", "--encoding=UTF8", "--locale=C"]
    try:
        _run(cmd + ([] if durable else ["--no-sync"]), pg["user"], pg["base"])
    finally:
        pwfile.unlink(missing_ok=True)
    # the socket and 127.0.0.1 only: initdb's pg_hba.conf also lets in ::1 and replication
    Path(pg["datadir"], "pg_hba.conf").write_text(
        f"local all all {PG_AUTH}\nhost all all {HOST}/32 {PG_AUTH}\n"
    )
    hosts = [HOST] + ([pg["socket_dir"]] if pg["socket_dir"] else [])
    fields = [h.replace("\\", "\\\\").replace(":", "\\:") for h in hosts]  # any port, any database
    _write_private(Path(pg["pgpass"]), "".join(f"{h}:*:*:{pg['user']}:{password}\n" for h in fields))


def start_postgres(workdir, port: int, *, durable: bool = True, timeout: int = 60) -> dict:
    """Create (once) and start the cluster on 127.0.0.1:``port`` with a database ``mlflow``
    (``durable=False``: no fsync); returns its handle: ``uri`` (naming ``pgpass``), ``pid``, paths."""
    workdir = Path(workdir).resolve()
    bindir, user = find_pg_bindir(), pg_user()
    base, pgpass = _cluster_dir(workdir, user), workdir / PGPASS
    sockdir = base / "run"  # a socket path holds 107 bytes
    pg = {"user": user, "port": port, "bindir": str(bindir), "base": str(base), "pgpass": str(pgpass)}
    pg |= {"datadir": str(base / "data"), "log": str(base / "postgres.log")}
    pg["socket_dir"] = str(sockdir) if len(str(sockdir)) <= 85 else None
    pg["uri"] = f"{DRIVER}://{user}@{HOST}:{port}/{DATABASE}?passfile={urllib.parse.quote(str(pgpass))}"
    if procs.alive(postmaster_pid(pg)):
        raise ServerError(f"PostgreSQL is already running on {pg['datadir']}; stop it first")
    if not (base / "data" / "PG_VERSION").exists():
        _initdb(pg, durable)
    elif not pgpass.exists():
        raise ServerError(f"{pgpass} is gone, and with it the cluster's password: delete {base}")
    _own_dir(sockdir, user)
    conf = {"listen_addresses": HOST, "port": port, "unix_socket_directories": pg["socket_dir"] or ""}
    conf |= {"password_encryption": PG_AUTH, "max_connections": 50} | ({} if durable else {"fsync": "off"})
    options = " ".join(f"-c {key}={shlex.quote(str(value))}" for key, value in conf.items())  # via a shell
    ctl = [f"{bindir}/pg_ctl", f"--pgdata={pg['datadir']}", f"--log={pg['log']}", f"--timeout={timeout}"]
    try:  # also on Ctrl-C: the postmaster has a session of its own
        _run([*ctl, "--wait", f"--options={options}", "start"], user, base)
        pg["pid"] = postmaster_pid(pg)
        createdb = [f"{bindir}/createdb", "-w", "-h", HOST, "-p", str(port), "-U", user, DATABASE]
        res = _run(createdb, env=libpq_env(pgpass), check=False)
        if res.returncode != 0 and "already exists" not in res.stderr:
            raise ServerError(f"createdb {DATABASE} failed: {res.stderr.strip()}")
    except BaseException:
        stop_postgres(pg)
        raise
    return pg


def postmaster_pid(pg: dict) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(pg["datadir"], "postmaster.pid").read_text().split()[0])
    return None


def stop_postgres(pg: dict | None) -> None:
    """``pg_ctl stop -m fast``, then SIGTERM/SIGKILL for what is left. A no-op if it is not running."""
    if not pg or not procs.alive(postmaster_pid(pg)):
        return
    server = procs.family(postmaster_pid(pg))
    ctl = [f"{pg['bindir']}/pg_ctl", f"--pgdata={pg['datadir']}", "--mode=fast", "--wait", "stop"]
    _run(ctl, pg["user"], check=False)
    procs.end(server, timeout=5)
