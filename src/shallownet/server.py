"""A local MLflow tracking server backed by PostgreSQL (see shallownet.pgcluster) or SQLite,
bound to 127.0.0.1 only. MLflow's HTTP API has no login: a single-machine development server.

    state, proc = start(workdir, backend="postgres", port=5000)   # writes <workdir>/server.json
    stop(workdir)                                     # idempotent, leaves nothing running
    with running_server(tmp_path) as uri: ...         # free ports, everything stopped after

CLI: ``python -m shallownet.server start [--backend postgres|sqlite] [--port 5000]
[--workdir outputs/server] [--detach]``, ``status|stop [--workdir ...]``,
``migrate --from sqlite:///outputs/mlflow.db --to http://127.0.0.1:5000 [--experiment shallownet]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import procs
from .pgcluster import HOST, PG_AUTH, PGPASS, ServerError, find_pg_bindir, libpq_env, pg_driver, pg_user
from .pgcluster import start_postgres, stop_postgres
from .procs import alive as pid_alive
from .procs import group_members

__all__ = ["HOST", "PGPASS", "ServerError", "find_pg_bindir", "libpq_env", "pg_driver", "pg_user"]
__all__ += ["start_postgres", "stop_postgres", "pid_alive", "group_members"]
STATE_FILE, MLFLOW_LOG, DEFAULT_WORKDIR, DEFAULT_PORT = (
    "server.json",
    "mlflow-server.log",
    "outputs/server",
    5000,
)
# clients of a server fail fast; the server itself runs no job runner and sends no telemetry
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
SERVER_ENV |= {"DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _require_free(port: int) -> None:
    if not port_is_free(port):
        raise ServerError(f"port {HOST}:{port} is already in use; pick another port")


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """True if ``GET <url>/health`` answers 200 (loopback: no proxy)."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url.rstrip("/") + "/health", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def _tail(path: str | Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return f"--- {path} (tail) ---\n" + "\n".join(
            Path(path).read_text(errors="replace").splitlines()[-lines:]
        )
    return f"(no log at {path})"


def start_mlflow_server(
    backend_uri, artifacts_dir, port, host=HOST, *, log_path=None, timeout=90.0, pgpass=None
):
    """``mlflow server`` with proxied artifacts, in its own session (Ctrl-C in a terminal
    reaches us, not it), its output in ``log_path`` (default: beside ``artifacts_dir``);
    returns the Popen once /health answers. A PostgreSQL ``backend_uri`` names its password
    file (``passfile=``); ``pgpass`` also hands it over as PGPASSFILE."""
    if host != HOST:
        raise ServerError(f"refusing to bind {host!r}: this server listens on {HOST} only")
    artifacts_dir = Path(artifacts_dir).resolve()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path or artifacts_dir.parent / MLFLOW_LOG)
    _require_free(port)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri, "--serve-artifacts"]
    cmd += [
        "--artifacts-destination",
        str(artifacts_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, **SERVER_ENV}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=libpq_env(pgpass, env) if pgpass else env, cwd=artifacts_dir.parent,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not health_ok(f"http://{host}:{port}", timeout=1.0):
            if proc.poll() is not None:
                raise ServerError(f"mlflow server exited with code {proc.returncode}\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ServerError(f"mlflow server did not answer within {timeout}s\n{_tail(log_path)}")
            time.sleep(0.2)
    except BaseException:  # also Ctrl-C: leave nothing behind
        stop_mlflow_server(proc)
        raise
    return proc


def stop_mlflow_server(server: subprocess.Popen | int | None, timeout: float = 15) -> None:
    """SIGTERM the server and its children, wait, SIGKILL what is left; a no-op if it is gone."""
    pid = server.pid if isinstance(server, subprocess.Popen) else server
    tree = procs.with_children(pid) if pid else []
    if tree and (isinstance(server, subprocess.Popen) or "mlflow" in " ".join(tree[0].cmdline())):
        procs.end(tree, timeout)  # (a bare pid that now names another program is left alone)
    if isinstance(server, subprocess.Popen):
        server.wait(timeout=5)


def load_state(workdir: str | Path) -> dict[str, Any] | None:
    with contextlib.suppress(FileNotFoundError):
        return json.loads((Path(workdir) / STATE_FILE).read_text())
    return None


def stop(workdir=None, *, server=None, postgres=None) -> None:
    """Stop MLflow, then PostgreSQL, named by handles or by ``<workdir>/server.json``. Idempotent."""
    state = (load_state(workdir) or {}) if workdir is not None else {}
    try:
        stop_mlflow_server(server if server is not None else state.get("mlflow_pid"))
    finally:
        stop_postgres(postgres if postgres is not None else state.get("postgres"))
        if workdir is not None:
            Path(workdir, STATE_FILE).unlink(missing_ok=True)


def start(
    workdir=DEFAULT_WORKDIR,
    *,
    backend="postgres",
    port=DEFAULT_PORT,
    pg_port=None,
    durable=True,
    timeout=90.0,
):
    """Start the store and the MLflow server, write ``<workdir>/server.json``; returns
    ``(state, server_process)``, ``state["tracking_uri"]`` being the http URI."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    old = load_state(workdir)
    if old and (pid_alive(old["mlflow_pid"]) or pid_alive((old["postgres"] or {}).get("pid"))):
        raise ServerError(f"a server from {workdir / STATE_FILE} is still running; run `stop` first")
    _require_free(port)
    pg = None
    if backend == "postgres":
        pg = start_postgres(
            workdir, pg_port or next(p for p in iter(free_port, 0) if p != port), durable=durable
        )
    uri = pg["uri"] if pg else f"sqlite:///{workdir / 'server.db'}"
    try:
        proc = start_mlflow_server(
            uri, workdir / "artifacts", port, timeout=timeout, pgpass=pg and pg["pgpass"]
        )
    except BaseException:
        stop_postgres(pg)
        raise
    state = {"backend": backend, "backend_uri": uri, "tracking_uri": f"http://{HOST}:{port}", "port": port}
    state.update(
        mlflow_pid=proc.pid, mlflow_log=str(workdir / MLFLOW_LOG), artifacts=str(workdir / "artifacts")
    )
    state.update(postgres=pg, started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    Path(workdir, STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return state, proc


@contextlib.contextmanager
def running_server(tmpdir: str | Path, backend: str = "postgres") -> Iterator[str]:
    """A throw-away server on free loopback ports in ``tmpdir``; yields its http URI. Stops
    everything on exit and removes a PostgreSQL directory made outside ``tmpdir``."""
    tmpdir, state, proc = Path(tmpdir).resolve(), {}, None
    try:
        state, proc = start(tmpdir, backend=backend, port=free_port(), durable=False)
        yield state["tracking_uri"]
    finally:
        stop(tmpdir, server=proc, postgres=state.get("postgres"))
        if state.get("postgres") and not Path(state["postgres"]["base"]).is_relative_to(tmpdir):
            shutil.rmtree(state["postgres"]["base"], ignore_errors=True)


def migrate(
    src_uri, dst_uri, experiment="shallownet", *, dst_experiment=None, include_deleted=False, log=print
):
    """Copy every run of ``experiment`` to ``dst_uri`` (``tracking.copy_experiment``); {old_id: new_id}."""
    from . import tracking

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


def _say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def _print_access(state: dict[str, Any]) -> None:
    """How another local account gets in: over HTTP as is, to PostgreSQL with a copy of pgpass."""
    if state.get("postgres"):
        pgpass = state["postgres"]["pgpass"]
        _say(f"PostgreSQL wants a password ({PG_AUTH}); yours is in {pgpass} (mode 0600)")
        _say(
            f"other local accounts: use tracking.uri; for SQL: install -m 600 -o THEM {pgpass} ~THEM/.pgpass"
        )


def _cmd_start(args: argparse.Namespace) -> int:
    state, proc = start(
        args.workdir, backend=args.backend, port=args.port, pg_port=args.pg_port, timeout=args.timeout
    )
    print(f"tracking.uri={state['tracking_uri']}", flush=True)
    _say(f"or: export MLFLOW_TRACKING_URI={state['tracking_uri']}   (log: {state['mlflow_log']})")
    _print_access(state)
    if args.detach:
        _say(
            f"running in the background; stop with: python -m shallownet.server stop --workdir {args.workdir}"
        )
        return 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a shell's `&` ignores it
        signal.signal(sig, signal.default_int_handler)
    _say("serving in the foreground; Ctrl-C stops it")
    try:
        proc.wait()
        print(
            f"mlflow server exited with code {proc.returncode}\n{_tail(state['mlflow_log'])}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        _say("stopping ...")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stop(args.workdir, server=proc, postgres=state["postgres"])
        _say("stopped")


def _cmd_stop(args: argparse.Namespace) -> int:
    state = load_state(args.workdir)
    stop(args.workdir)
    print(
        f"stopped {state['tracking_uri']} ({state['backend']})"
        if state
        else "no server state: nothing to stop"
    )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    st = load_state(args.workdir)
    if not st:
        print(f"not running (no {Path(args.workdir) / STATE_FILE})")
        return 1
    pg_ok = not st["postgres"] or pid_alive(st["postgres"]["pid"])
    healthy = health_ok(st["tracking_uri"])
    print(
        f"tracking.uri={st['tracking_uri']}\nrunning={healthy and pg_ok} healthy={healthy} mlflow_pid={st['mlflow_pid']}"
    )
    print(f"backend={st['backend']} {st['backend_uri']}\nartifacts={st['artifacts']} log={st['mlflow_log']}")
    return 0 if healthy and pg_ok else 1


def _cmd_migrate(args: argparse.Namespace) -> int:
    for key, value in HTTP_ENV.items():
        os.environ.setdefault(key, value)
    migrate(
        args.src,
        args.dst,
        args.experiment,
        dst_experiment=args.to_experiment,
        include_deleted=args.include_deleted,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shallownet.server", description=__doc__.split("\n")[0])
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
        ("status", _cmd_status, "its state"),
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
