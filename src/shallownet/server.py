"""``make server``: MLflow's tracking server on 127.0.0.1 over PostgreSQL (shallownet.pgcluster)
or SQLite, its state in ``<workdir>/server.json``. MLflow's HTTP API has no login (see the README).

CLI: ``python -m shallownet.server start [--backend postgres|sqlite] [--port 5000] [--detach]``,
``stop`` and ``status``, each with ``--workdir`` (default outputs/server).
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from . import procs
from .net import free_port, health_ok, port_is_free
from .pgcluster import HOST, PG_AUTH, ServerError, libpq_env, start_postgres, stop_postgres
from .stop import STOP

STATE_FILE, MLFLOW_LOG, DEFAULT_WORKDIR = "server.json", "mlflow-server.log", "outputs/server"
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
SERVER_ENV |= {"DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1"}


def _tail(path) -> str:
    with contextlib.suppress(OSError):
        lines = Path(path).read_text(errors="replace").splitlines()[-40:]
        return f"--- {path} (tail) ---\n" + "\n".join(lines)
    return f"(no log at {path})"


def start_mlflow_server(backend_uri, artifacts_dir, port, *, timeout=90, pgpass=None):
    """``mlflow server`` on 127.0.0.1:``port`` serving ``artifacts_dir``, its log beside it, in a
    session of its own (a terminal's Ctrl-C reaches us, not it); the Popen once /health answers.
    ``pgpass``, a PostgreSQL store's password file, is handed over as PGPASSFILE."""
    if not port_is_free(port):  # else /health might be another server's answer
        raise ServerError(f"port {HOST}:{port} is already in use; pick another port")
    artifacts_dir = Path(artifacts_dir).resolve()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    log_path, env = artifacts_dir.parent / MLFLOW_LOG, {**os.environ, **SERVER_ENV}
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri, "--workers", "1"]
    cmd += ["--serve-artifacts", "--artifacts-destination", str(artifacts_dir)]
    cmd += ["--host", HOST, "--port", str(port)]
    with open(log_path, "ab") as log:
        io = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": subprocess.STDOUT}
        env = libpq_env(pgpass, env) if pgpass else env
        proc = subprocess.Popen(cmd, env=env, cwd=artifacts_dir.parent, start_new_session=True, **io)
    deadline = time.monotonic() + timeout
    try:
        while not health_ok(f"http://{HOST}:{port}", timeout=1.0):
            if proc.poll() is not None:
                raise ServerError(f"mlflow server exited with code {proc.returncode}\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ServerError(f"mlflow server did not answer within {timeout}s\n{_tail(log_path)}")
            time.sleep(0.2)
    except BaseException:  # Ctrl-C too: leave nothing behind
        stop_mlflow_server(proc)
        raise
    return proc


def stop_mlflow_server(server: subprocess.Popen | int | None, timeout: float = 15) -> None:
    """SIGTERM the server (a Popen or a pid) and its children, wait, SIGKILL what is left (psutil
    reaps our own children); a no-op once it is gone or when its pid now names another program."""
    tree = procs.family(getattr(server, "pid", server)) if server else []
    with contextlib.suppress(psutil.Error):
        if tree and "mlflow" in " ".join(tree[0].cmdline()):
            procs.end(tree, timeout)


def load_state(workdir) -> dict | None:
    with contextlib.suppress(FileNotFoundError):
        return json.loads(Path(workdir, STATE_FILE).read_text())
    return None


def stop(workdir, *, server=None, postgres=None) -> None:
    """Stop MLflow, then PostgreSQL, named by handles or by ``<workdir>/server.json``. Idempotent."""
    state = load_state(workdir) or {}
    try:
        stop_mlflow_server(server or state.get("mlflow_pid"))
    finally:
        stop_postgres(postgres or state.get("postgres"))
        Path(workdir, STATE_FILE).unlink(missing_ok=True)


def start(workdir=DEFAULT_WORKDIR, *, backend="postgres", port=5000, pg_port=None, durable=True, timeout=90):
    """Start the store and the MLflow server, write ``<workdir>/server.json``; returns
    ``(state, server_process)``, ``state["tracking_uri"]`` being the http URI."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    old = load_state(workdir) or {}
    if procs.alive(old.get("mlflow_pid")) or procs.alive((old.get("postgres") or {}).get("pid")):
        raise ServerError(f"a server from {workdir / STATE_FILE} is still running; run `stop` first")
    pg_port = pg_port or next(p for p in iter(free_port, None) if p != port)
    pg = start_postgres(workdir, pg_port, durable=durable) if backend == "postgres" else None
    uri = pg["uri"] if pg else f"sqlite:///{workdir / 'server.db'}"
    try:
        pgpass = pg["pgpass"] if pg else None
        proc = start_mlflow_server(uri, workdir / "artifacts", port, timeout=timeout, pgpass=pgpass)
    except BaseException:
        stop_postgres(pg)
        raise
    state = {"backend": backend, "backend_uri": uri, "tracking_uri": f"http://{HOST}:{port}", "port": port}
    state |= {"mlflow_pid": proc.pid, "mlflow_log": str(workdir / MLFLOW_LOG), "postgres": pg}
    state |= {"artifacts": str(workdir / "artifacts"), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Path(workdir, STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return state, proc


@contextlib.contextmanager
def running_server(tmpdir, backend="postgres"):
    """A throw-away server on free loopback ports in ``tmpdir``; yields its http URI. Everything
    is stopped on exit, and a PostgreSQL directory made outside ``tmpdir`` removed."""
    tmpdir = Path(tmpdir).resolve()
    state, proc = start(tmpdir, backend=backend, port=free_port(), durable=False)
    try:
        yield state["tracking_uri"]
    finally:
        stop(tmpdir, server=proc, postgres=state["postgres"])
        if state["postgres"] and not Path(state["postgres"]["base"]).is_relative_to(tmpdir):
            shutil.rmtree(state["postgres"]["base"], ignore_errors=True)


def _say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def _print_access(state: dict) -> None:
    """How another local account gets in: over HTTP as is, to PostgreSQL with a copy of pgpass."""
    if state.get("postgres"):
        pgpass = state["postgres"]["pgpass"]
        _say(f"PostgreSQL wants a password ({PG_AUTH}); yours is in {pgpass} (mode 0600)")
        _say(f"other local accounts: use tracking.uri; SQL: install -m 600 -o THEM {pgpass} ~THEM/.pgpass")


def _cmd_start(args) -> int:
    STOP.install()  # SIGINT, SIGTERM, SIGHUP: the first raises KeyboardInterrupt, the next ones wait
    state, proc = start(args.workdir, backend=args.backend, port=args.port, pg_port=args.pg_port)
    print(f"tracking.uri={state['tracking_uri']}", flush=True)
    _say(f"or: export MLFLOW_TRACKING_URI={state['tracking_uri']}   (log: {state['mlflow_log']})")
    _print_access(state)
    if args.detach:
        _say(f"in the background; stop it with: python -m shallownet.server stop --workdir {args.workdir}")
        return 0
    _say("serving in the foreground; Ctrl-C stops it")
    try:
        proc.wait()
        _say(f"mlflow server exited with code {proc.returncode}\n{_tail(state['mlflow_log'])}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(args.workdir, server=proc, postgres=state["postgres"])
        _say("stopped")


def _cmd_stop(args) -> int:
    state = load_state(args.workdir)
    stop(args.workdir)
    print(f"stopped {state['tracking_uri']} ({state['backend']})" if state else "nothing to stop")
    return 0


def _cmd_status(args) -> int:
    st = load_state(args.workdir)
    if not st:
        print(f"not running (no {Path(args.workdir) / STATE_FILE})")
        return 1
    healthy = health_ok(st["tracking_uri"])
    running = healthy and (not st["postgres"] or procs.alive(st["postgres"]["pid"]))
    print(f"tracking.uri={st['tracking_uri']}\nrunning={running} healthy={healthy} pid={st['mlflow_pid']}")
    print(f"backend={st['backend']} {st['backend_uri']}\nartifacts={st['artifacts']} log={st['mlflow_log']}")
    return 0 if running else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shallownet.server", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start", help="start PostgreSQL (or SQLite) + mlflow server on 127.0.0.1")
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--port", type=int, default=5000, help="MLflow port (default 5000)")
    p.add_argument("--pg-port", type=int, default=None, help="PostgreSQL port (default: a free one)")
    p.add_argument("--detach", action="store_true", help="return after start; `stop` ends it")
    for name, func in (("start", _cmd_start), ("stop", _cmd_stop), ("status", _cmd_status)):
        p = sub.choices.get(name) or sub.add_parser(name, help=f"{name} a server started with --detach")
        p.add_argument("--workdir", default=DEFAULT_WORKDIR)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a signal while starting: what had started is stopped
        print("interrupted", file=sys.stderr)
        return STOP.exit_code


if __name__ == "__main__":
    sys.exit(main())
