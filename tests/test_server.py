"""shallownet.server: PostgreSQL/SQLite-backed MLflow servers on loopback, and migration.

These start real servers (PostgreSQL 15 binaries + `mlflow server`), so they are slow.
A machine without the PostgreSQL binaries or a driver FAILS here (it does not skip).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from shallownet import migrate, net, pgcluster, server
from shallownet.record import tracking

# ----------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _fast_http(monkeypatch):
    """Clients fail fast and talk to loopback directly (never through a proxy)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def require_postgres():
    """Fail (never skip) with a clear message when PostgreSQL cannot be used here."""
    try:
        pgcluster.find_pg_bindir()
    except server.ServerError as exc:
        pytest.fail(f"PostgreSQL is required for this test: {exc}", pytrace=False)


def listeners(port):
    """(address, family) of every LISTEN socket on ``port``, as psutil sees them."""
    return [
        (c.laddr.ip, 4 if c.family == socket.AF_INET else 6)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def server_pids(state):
    """Every live process of a running server: mlflow and the postmaster, with their children."""
    roots = [state["mlflow_pid"]] + ([state["postgres"]["pid"]] if state.get("postgres") else [])
    procs = [psutil.Process(pid) for pid in roots]
    return {p.pid for p in procs + [c for p in procs for c in p.children(recursive=True)] if alive(p.pid)}


def ports_of(state):
    ports = [state["port"]]
    if state.get("postgres"):
        ports.append(state["postgres"]["port"])
    return ports


def assert_loopback_only(state):
    for port in ports_of(state):
        found = listeners(port)
        assert found, f"nothing listens on port {port}"
        assert found == [("127.0.0.1", 4)] * len(found), f"port {port} listens on {found}"


def assert_all_gone(pids, ports):
    assert pids, "no pids were recorded"
    left = [p for p in pids if alive(p)]
    assert not left, f"processes still running after stop: {left}"
    for port in ports:
        assert not listeners(port), f"port {port} still has a listener"
        assert net.port_is_free(port), f"port {port} still bound"


AUTH_ERRORS = ("password authentication failed", "no password supplied")


def psql_as(account, pg, host, env=None, sql="SELECT 1"):
    """``sql`` through psql on ``host`` (127.0.0.1 or the socket directory) as the OS account
    ``account`` (None: this one), with no password but what ``env`` gives it."""
    if os.geteuid() != 0:
        pytest.fail("these tests switch accounts with runuser: run them as root", pytrace=False)
    clean = {k: v for k, v in os.environ.items() if k not in ("PGPASSFILE", "PGPASSWORD")}
    cmd = [
        str(Path(pg["bindir"]) / "psql"),
        "-X",
        "-w",
        "-tA",
        "-h",
        host,
        "-p",
        str(pg["port"]),
        "-U",
        pg["user"],
        "-d",
        "mlflow",
        "-c",
        sql,
    ]
    if account is not None:
        cmd = ["runuser", "-u", account, "--", *cmd]
    return subprocess.run(
        cmd, env={**clean, **(env or {})}, cwd="/", capture_output=True, text=True, timeout=30
    )


def assert_refused(res, also=()):
    assert res.returncode != 0 and res.stdout.strip() != "1", res
    assert any(err in res.stderr for err in (*AUTH_ERRORS, *also)), res.stderr


def pg_hosts(pg):
    return [server.HOST] + ([pg["socket_dir"]] if pg["socket_dir"] else [])


def password_in(pgpass):
    return Path(pgpass).read_text().splitlines()[0].rpartition(":")[2]


def assert_nowhere(password, state):
    """The password is in no process's command line or environment, no state file or log."""
    assert len(password) >= 20
    pids, seen = server_pids(state), 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            cmdline, environ = proc.cmdline(), proc.environ()
        except psutil.NoSuchProcess:  # a PostgreSQL backend that ended meanwhile holds nothing
            continue
        assert not any(password in arg for arg in cmdline), pid
        assert not any(password in f"{k}={v}" for k, v in environ.items()), pid
        seen += 1
    assert seen >= 3, pids
    environ = Path(f"/proc/{state['mlflow_pid']}/environ").read_bytes().split(b"\0")
    assert f"PGPASSFILE={state['postgres']['pgpass']}".encode() in environ
    for path in (
        Path(state["mlflow_log"]),
        Path(state["postgres"]["log"]),
        Path(state["mlflow_log"]).parent / server.STATE_FILE,
    ):
        assert password not in path.read_text(errors="replace"), path


def record_commands(monkeypatch):
    """The command line of every process started from here on (initdb, pg_ctl, psql, ...)."""
    seen = []

    class Recording(subprocess.Popen):
        def __init__(self, args, *rest, **kw):
            seen.append(args if isinstance(args, str) else " ".join(map(str, args)))
            super().__init__(args, *rest, **kw)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return seen


def exercise(uri, artifacts_dir, tmp_path):
    """Log a run through the server and read it back with a fresh client."""
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("roundtrip")
    run_id = client.create_run(exp_id, run_name="r1", tags={"kind": "roundtrip"}).info.run_id
    losses = [1.0, 0.5, 0.25, 0.125]
    metrics = [Metric("loss", v, 1_700_000_000_000 + i, i) for i, v in enumerate(losses)]
    metrics.append(Metric("acc", 0.75, 1_700_000_000_100, 3))
    params = [Param("lr", "0.1"), Param("hidden", "16")]
    client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("seed", "0")])
    local = tmp_path / "report.txt"
    local.write_text("hello from the roundtrip\n")
    client.log_artifact(run_id, str(local), artifact_path="reports")
    client.set_terminated(run_id, status="FINISHED")

    fresh = MlflowClient(tracking_uri=uri)
    run = fresh.get_run(run_id)
    assert run.info.run_name == "r1"
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1", "hidden": "16"}
    assert run.data.tags["kind"] == "roundtrip" and run.data.tags["seed"] == "0"
    assert run.data.metrics == {"loss": 0.125, "acc": 0.75}
    history = fresh.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in sorted(history, key=lambda m: m.step)] == [
        (i, v, 1_700_000_000_000 + i) for i, v in enumerate(losses)
    ]
    # proxied artifacts: the run points at the server, the bytes sit in its artifacts dir
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    assert [f.path for f in fresh.list_artifacts(run_id, "reports")] == ["reports/report.txt"]
    out = tmp_path / "download"
    out.mkdir()
    got = fresh.download_artifacts(run_id, "reports/report.txt", dst_path=str(out))
    assert Path(got).read_text() == "hello from the roundtrip\n"
    stored = list(Path(artifacts_dir).rglob("report.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "hello from the roundtrip\n"
    assert [e.name for e in fresh.search_experiments()].count("roundtrip") == 1
    return run_id


# ----------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_sqlite_server_via_cli_detach_status_stop(tmp_path):
    workdir = tmp_path / "srv"
    port = net.free_port()
    cli = [sys.executable, "-m", "shallownet.server"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = subprocess.run(
        [*cli, "start", "--backend", "sqlite", "--port", str(port), "--workdir", str(workdir), "--detach"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"tracking.uri=http://127.0.0.1:{port}\n"
        assert "MLFLOW_TRACKING_URI" in started.stderr
        state = json.loads((workdir / "server.json").read_text())
        assert state["backend_uri"] == f"sqlite:///{workdir.resolve() / 'server.db'}"
        assert state["postgres"] is None
        pids, ports = server_pids(state), ports_of(state)
        assert_loopback_only(state)
        status = subprocess.run(
            [*cli, "status", "--workdir", str(workdir)], capture_output=True, text=True, timeout=60, env=env
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running=True healthy=True" in status.stdout
        exercise(state["tracking_uri"], state["artifacts"], tmp_path)
        assert (workdir / "server.db").stat().st_size > 0
    finally:
        stopped = subprocess.run(
            [*cli, "stop", "--workdir", str(workdir)], capture_output=True, text=True, timeout=60, env=env
        )
    assert stopped.returncode == 0, stopped.stderr
    assert_all_gone(pids, ports)
    status = subprocess.run(
        [*cli, "status", "--workdir", str(workdir)], capture_output=True, text=True, timeout=60, env=env
    )
    assert status.returncode == 1 and "not running" in status.stdout


@pytest.mark.slow
def test_missing_postgres_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_BINDIR", str(tmp_path / "no-such-bin"))
    with pytest.raises(server.ServerError, match="apt-get install -y postgresql-15"):
        pgcluster.start_postgres(tmp_path / "w", net.free_port())
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "shallownet.server",
            "start",
            "--workdir",
            str(tmp_path / "w"),
            "--port",
            str(net.free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2 and "PostgreSQL server binaries" in cli.stderr
    assert cli.stdout == ""  # no tracking.uri line for a server that is not there


@pytest.mark.slow
def test_server_that_dies_reports_its_log_and_leaves_nothing(tmp_path):
    port = net.free_port()
    with pytest.raises(server.ServerError, match="exited with code") as err:
        server.start_mlflow_server("nosuchscheme://nowhere", tmp_path / "artifacts", port, timeout=60)
    assert "nosuchscheme" in str(err.value)  # the log tail names the cause
    assert (tmp_path / server.MLFLOW_LOG).exists()
    assert not listeners(port) and net.port_is_free(port)


class SharedServer:
    """One PostgreSQL-backed server for several tests (each start costs ~15 s).

    Started lazily through :func:`server.running_server`; a test that stops it (the
    clean-stop test, last in this file) just makes the next user start a new one.
    """

    def __init__(self, root):
        self.root, self.count, self.stack = root, 0, None

    def get(self):
        if self.stack is None:
            require_postgres()
            self.count += 1
            workdir = self.root / f"srv{self.count}"
            stack = contextlib.ExitStack()
            self.uri = stack.enter_context(server.running_server(workdir, backend="postgres"))
            self.stack, self.workdir = stack, workdir
            self.state = server.load_state(workdir)
        return self.uri, self.state

    def stop(self):
        if self.stack is not None:
            stack, self.stack = self.stack, None
            stack.close()


@pytest.fixture(scope="module")
def pg_shared(tmp_path_factory):
    shared = SharedServer(tmp_path_factory.mktemp("pgserver"))
    try:
        yield shared
    finally:
        shared.stop()


@pytest.fixture
def pg_server(pg_shared):
    return pg_shared.get()


@pytest.mark.slow
def test_server_binds_loopback_only(pg_server):
    uri, state = pg_server
    assert uri.startswith("http://127.0.0.1:")
    assert net.health_ok(uri)
    assert_loopback_only(state)
    # the postgres config allows nothing but the socket and 127.0.0.1
    hba = Path(state["postgres"]["datadir"]) / "pg_hba.conf"
    rules = [
        line.split() for line in hba.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert rules == [
        ["local", "all", "all", "scram-sha-256"],
        ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"],
    ]
    # the server hashes passwords with scram-sha-256 and keeps only the verifier
    pg, env = state["postgres"], {"PGPASSFILE": state["postgres"]["pgpass"]}
    shown = psql_as(None, pg, server.HOST, env, sql="SHOW password_encryption")
    assert shown.stdout.strip() == "scram-sha-256", shown.stderr
    stored = psql_as(None, pg, server.HOST, env, sql="SELECT rolpassword FROM pg_authid WHERE rolcanlogin")
    assert stored.stdout.strip().startswith("SCRAM-SHA-256$4096:"), stored.stderr
    assert password_in(pg["pgpass"]) not in stored.stdout


@pytest.mark.slow
def test_postgres_wants_the_password_from_pgpass(pg_server, tmp_path, capsys):
    _, state = pg_server
    pg = state["postgres"]
    pgpass = Path(pg["pgpass"])
    # the file: libpq format, ours alone
    st = pgpass.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert pgpass.parent == Path(state["artifacts"]).parent
    lines = pgpass.read_text().splitlines()
    assert [line.rpartition(":")[0] for line in lines] == [
        f"{host}:*:*:{pg['user']}" for host in pg_hosts(pg)
    ]  # any port: restarts change it
    for host in pg_hosts(pg):
        # another local account, with no password or a guessed one: refused, no SQL runs;
        # on the socket it may not even get through the 0700 directory
        also = ("Permission denied",) if host != server.HOST else ()
        assert_refused(psql_as("nobody", pg, host), also)
        assert_refused(psql_as("nobody", pg, host, {"PGPASSWORD": "guess"}), also)
        # the accounts running the test and PostgreSQL need the password too
        assert_refused(psql_as(None, pg, host, {"HOME": str(tmp_path)}))
        assert_refused(psql_as(pg["user"], pg, host))
        # with the pgpass file, the owner gets in
        ok = psql_as(None, pg, host, {"PGPASSFILE": str(pgpass)})
        assert ok.returncode == 0 and ok.stdout.strip() == "1", ok.stderr
    assert "PGPASSWORD" not in pgcluster.libpq_env(pgpass, {"PGPASSWORD": "x"})
    password = password_in(pgpass)
    assert password not in state["backend_uri"] and "passfile=" in state["backend_uri"]
    assert_nowhere(password, state)
    # what `make server` prints about it
    server._print_access(state)
    hint = capsys.readouterr().err
    assert len(hint.splitlines()) == 2 and f"install -m 600 -o THEM {pgpass}" in hint


def wait_for_line(proc, prefix, timeout=120):
    """The first stdout line of ``proc`` that starts with ``prefix``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix) or not line:
            return line
    return ""


@pytest.mark.slow
def test_stop_and_ctrl_c_leave_nothing_running_and_a_restart_keeps_the_cluster(tmp_path, monkeypatch):
    """`stop` ends a detached server, Ctrl-C a foreground one: no process of either is left
    (psutil), no port bound; the cluster and its password survive the restart, and no
    process ever had the password on its command line (initdb, pg_ctl, createdb, mlflow)."""
    require_postgres()
    commands = record_commands(monkeypatch)
    workdir = tmp_path / "srv"
    cli = [sys.executable, "-m", "shallownet.server"]
    state, _ = server.start(workdir, port=net.free_port(), durable=False)
    base = Path(state["postgres"]["base"])
    try:
        pgpass = Path(state["postgres"]["pgpass"])
        password, before = password_in(pgpass), pgpass.read_text()
        MlflowClient(tracking_uri=state["tracking_uri"]).create_experiment("kept")
        pids, ports = server_pids(state), ports_of(state)
        assert len(pids) >= 3
        stopped = subprocess.run([*cli, "stop", "--workdir", str(workdir)], capture_output=True, text=True)
        assert stopped.returncode == 0 and stopped.stdout.startswith("stopped http://127.0.0.1:"), stopped
        assert_all_gone(pids, ports)

        port = net.free_port()
        fg = subprocess.Popen(
            [*cli, "start", "--port", str(port), "--workdir", str(workdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_for_line(fg, "tracking.uri=") == f"tracking.uri=http://127.0.0.1:{port}\n"
            state = server.load_state(workdir)
            pids, ports = server_pids(state), ports_of(state)
            assert len(pids) >= 3 and pgpass.read_text() == before
            client = MlflowClient(tracking_uri=state["tracking_uri"])
            assert client.get_experiment_by_name("kept") is not None
            fg.send_signal(signal.SIGINT)
            _, err = fg.communicate(timeout=120)
        finally:
            fg.kill()
        assert fg.returncode == 0, err
        assert err.rstrip().endswith("# stopped") and "Traceback" not in err, err
        assert_all_gone(pids, ports)
        assert server.load_state(workdir) is None
        # no upgrade path: a cluster whose password file is gone is refused, nothing starts
        pgpass.unlink()
        with pytest.raises(server.ServerError, match="pgpass is gone"):
            server.start(workdir, port=port, durable=False)
        assert not listeners(port) and server.load_state(workdir) is None
        assert {"initdb", "pg_ctl", "createdb", "mlflow"} <= {
            word.rpartition("/")[2] for cmd in commands for word in cmd.split()
        }
        assert not [cmd for cmd in commands if password in cmd]
    finally:
        server.stop(workdir)
        if not base.is_relative_to(tmp_path):
            shutil.rmtree(base, ignore_errors=True)


def _history(client, run_id):
    run = client.get_run(run_id)
    return {
        key: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }


def _artifacts(client, run_id, dest):
    dest.mkdir(parents=True)
    if not client.list_artifacts(run_id):
        return {}
    root = Path(client.download_artifacts(run_id, "", dst_path=str(dest)))
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_migrate_sqlite_store_to_postgres_server(pg_server, tmp_path):
    uri, _ = pg_server
    src_uri = f"sqlite:///{tmp_path / 'src.db'}"
    src = MlflowClient(tracking_uri=src_uri)
    exp_id = src.create_experiment("shallownet", artifact_location=(tmp_path / "src-artifacts").as_uri())
    t0 = 1_700_000_000_000
    parent = src.create_run(exp_id, start_time=t0, run_name="sweep", tags={"sweep": "lr"}).info.run_id
    src.log_batch(parent, params=[Param("sweep.n", "2")], metrics=[Metric("best_acc", 0.9, t0 + 500, 0)])
    (tmp_path / "summary.json").write_text('{"best": 0.9}\n')
    src.log_artifact(parent, str(tmp_path / "summary.json"))
    children = []
    for i, lr in enumerate(["0.1", "0.01"]):
        child = src.create_run(
            exp_id, start_time=t0 + 10 + i, run_name=f"lr={lr}", tags={"mlflow.parentRunId": parent}
        ).info.run_id
        hist = [Metric("loss", 1.0 / (s + 1) + i, t0 + 100 * s, s) for s in range(6)]
        hist += [Metric("loss", 9.0, t0 + 1000, 2)]  # a repeated step is history too
        hist += [Metric("acc", 0.5 + 0.1 * s, t0 + 100 * s, s) for s in range(3)]
        src.log_batch(child, params=[Param("lr", lr), Param("seed", str(i))], metrics=hist)
        curves = tmp_path / f"curves{i}"
        curves.mkdir()
        (curves / "loss.csv").write_text(f"step,loss\n0,{1 + i}\n")
        src.log_artifacts(child, str(curves), artifact_path="curves")
        src.set_terminated(child, status="FINISHED" if i == 0 else "FAILED", end_time=t0 + 2000 + i)
        children.append(child)
    src.set_terminated(parent, status="FINISHED", end_time=t0 + 3000)

    id_map = migrate.migrate(src_uri, uri, "shallownet", log=lambda *_: None)
    assert set(id_map) == {parent, *children}
    assert len(set(id_map.values())) == 3 and not set(id_map.values()) & set(id_map)

    dst = MlflowClient(tracking_uri=uri)
    dst_exp = dst.get_experiment_by_name("shallownet")
    dst_runs = dst.search_runs([dst_exp.experiment_id])
    assert sorted(r.info.run_id for r in dst_runs) == sorted(id_map.values())
    for old, new in id_map.items():
        a, b = src.get_run(old), dst.get_run(new)
        assert b.info.run_name == a.info.run_name
        assert b.info.status == a.info.status
        assert (b.info.start_time, b.info.end_time) == (a.info.start_time, a.info.end_time)
        assert b.data.params == a.data.params
        assert b.data.metrics == a.data.metrics
        assert _history(dst, new) == _history(src, old)
        expected_tags = dict(a.data.tags)
        if "mlflow.parentRunId" in expected_tags:
            expected_tags["mlflow.parentRunId"] = id_map[expected_tags["mlflow.parentRunId"]]
        expected_tags[tracking.TAG_MIGRATED] = old
        assert b.data.tags == expected_tags
        assert b.info.artifact_uri.startswith("mlflow-artifacts:")
        assert _artifacts(dst, new, tmp_path / "dst" / new) == _artifacts(src, old, tmp_path / "src" / old)
    # parent links point at the new parent
    for child in children:
        assert dst.get_run(id_map[child]).data.tags["mlflow.parentRunId"] == id_map[parent]
    assert "mlflow.parentRunId" not in dst.get_run(id_map[parent]).data.tags
    assert len(_history(dst, id_map[children[0]])["loss"]) == 7
    assert _artifacts(dst, id_map[children[1]], tmp_path / "c1") == {"curves/loss.csv": "step,loss\n0,2\n"}
    # running it again copies nothing new
    assert migrate.migrate(src_uri, uri, "shallownet", log=lambda *_: None) == id_map
    assert len(dst.search_runs([dst_exp.experiment_id])) == 3


@pytest.mark.slow
def test_postgres_server_roundtrip_and_clean_stop(pg_shared, tmp_path):
    uri, state = pg_shared.get()
    workdir = pg_shared.workdir
    try:
        assert uri == state["tracking_uri"] == f"http://127.0.0.1:{state['port']}"
        assert state["backend_uri"].startswith("postgresql+")
        assert "@127.0.0.1:" in state["backend_uri"]
        assert state["postgres"]["user"] != "root"
        pids, ports = server_pids(state), ports_of(state)
        assert len(pids) >= 3  # mlflow server, its uvicorn, the postmaster (+ workers)
        assert_loopback_only(state)
        run_id = exercise(uri, state["artifacts"], tmp_path)

        # the run really is in PostgreSQL, not in some fallback store
        engine = sqlalchemy.create_engine(state["backend_uri"])
        try:
            with engine.connect() as conn:
                rows = (
                    conn.execute(
                        sqlalchemy.text(
                            "SELECT r.run_uuid FROM runs r JOIN experiments e "
                            "ON r.experiment_id = e.experiment_id WHERE e.name = 'roundtrip'"
                        )
                    )
                    .scalars()
                    .all()
                )
                listen = conn.execute(sqlalchemy.text("SHOW listen_addresses")).scalar()
        finally:
            engine.dispose()
        assert rows == [run_id]
        assert listen == "127.0.0.1"
    finally:
        pg_shared.stop()  # leaves running_server(): stop both, remove the state file
    assert_all_gone(pids, ports)
    assert server.load_state(workdir) is None
    assert not Path(state["postgres"]["base"]).exists() or Path(state["postgres"]["base"]).is_relative_to(
        workdir
    )
    server.stop(workdir, postgres=state["postgres"])  # idempotent: nothing left to stop


def test_migrating_a_missing_experiment_is_one_line(tmp_path):
    """shallownet.migrate from a store without the experiment: one ServerError naming it, nothing
    created in the destination."""
    src_uri = f"sqlite:///{tmp_path / 'src.db'}"
    dst_uri = f"sqlite:///{tmp_path / 'dst.db'}"
    MlflowClient(tracking_uri=src_uri).create_experiment("other")
    with pytest.raises(migrate.MigrateError, match="no experiment 'shallownet' in sqlite:///"):
        migrate.migrate(src_uri, dst_uri, "shallownet", log=lambda *_: None)
    assert MlflowClient(tracking_uri=dst_uri).get_experiment_by_name("shallownet") is None
