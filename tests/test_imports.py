"""No work at import time: importing shallownet's modules takes no signal and loads no MLflow;
the entry point (shallownet.sweep.cli) takes the signals, and its console lines go through logging."""

import ast
import logging.config
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIN, cli_env

from shallownet import console

SRC = Path(__file__).resolve().parents[1] / "src" / "shallownet"

PROBE = """
import signal, sys
before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
import {module}
changed = [s.name for s in before if signal.getsignal(s) is not before[s]]
print(changed, "mlflow" in sys.modules)
"""


@pytest.mark.parametrize(
    "module",
    ["shallownet.train", "shallownet.fit", "shallownet.model", "shallownet.config", "shallownet.sweep.task"],
)
def test_importing_takes_no_signal_and_loads_no_mlflow(module):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.replace("{module}", module)],
        capture_output=True,
        text=True,
        check=True,
        env=cli_env(),
    ).stdout
    assert out.strip() == "[] False"


def test_names_imports_nothing():
    tree = ast.parse((SRC / "names.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_the_store_modules_read_their_names_from_names():
    for module in ("fit", "config", "identity", "record/contents", "job"):
        tree = ast.parse((SRC / f"{module}.py").read_text())
        sources = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "tracking" not in sources, module


@pytest.mark.parametrize("command", [["shallownet-train"], ["python", "-m", "shallownet"]])
def test_a_bad_override_exits_2_with_one_line(tmp_path, command):
    exe = [str(BIN / command[0]), *command[1:]]
    proc = subprocess.run(
        [*exe, "activation=nope", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "shallownet: config error: activation=nope: no such option; valid choices: identity, "
        "leaky_relu, relu, sigmoid, tanh"
    ]
    assert not (tmp_path / "mlflow.db").exists()  # refused before anything was recorded


def _catches_sighup(pid):
    """Whether process ``pid`` has a handler for SIGHUP (its SigCgt mask): Python's own start-up
    takes SIGINT, not SIGHUP, and STOP.install takes SIGHUP last."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGHUP - 1) & 1)
    return False


def test_ctrl_c_while_the_entry_point_imports_exits_130_with_one_line(tmp_path):
    """The entry point takes SIGINT before its heavy imports and holds it until they are
    done: a Ctrl-C then is an interrupt (130, one line), not a traceback from an import."""
    proc = subprocess.Popen(
        [str(BIN / "shallownet-train"), f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    while not _catches_sighup(proc.pid):  # the first thing cli.main does
        assert proc.poll() is None
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert err.splitlines() == ["shallownet: interrupted"]
    assert out == ""
    assert not (tmp_path / "mlflow.db").exists()


class Writes:
    """A stream that keeps each write() call."""

    def __init__(self):
        self.calls = []

    def write(self, text):
        self.calls.append(text)

    def flush(self):
        pass


def test_emit_writes_each_line_in_one_call_to_its_stream(monkeypatch):
    out, err = Writes(), Writes()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    console.emit("a line with 100% in it")
    console.emit("to stderr", err)
    console.say("a message")
    assert out.calls == ["a line with 100% in it\n"]
    assert err.calls == ["to stderr\n", "shallownet: a message\n"]


def test_emit_is_not_silenced_by_hydras_logging_config(monkeypatch):
    """Hydra's job_logging=disabled (conf/train.yaml) turns off every existing logger and sets
    the root to ERROR: shallownet's lines still show, once, and none reaches the root's
    handlers (Hydra's, in a job)."""
    console.configure()
    loggers = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    disabled = [lg.disabled for lg in loggers]
    root = logging.getLogger()
    root_state = root.level, list(root.handlers)
    rooted = []
    logging.config.dictConfig(
        {
            "version": 1,
            "root": {"level": "INFO", "handlers": ["keep"]},
            "handlers": {"keep": {"()": lambda: _Keep(rooted)}},
            "disable_existing_loggers": True,
        }
    )
    out = Writes()
    monkeypatch.setattr(sys, "stdout", out)
    try:
        console.emit("still here")
    finally:  # the other tests of this process keep their logging as it was
        for lg, was in zip(loggers, disabled):
            lg.disabled = was
        root.setLevel(root_state[0])
        root.handlers[:] = root_state[1]
    assert out.calls == ["still here\n"]
    assert rooted == []


class _Keep(logging.Handler):
    def __init__(self, kept):
        super().__init__()
        self.kept = kept

    def emit(self, record):
        self.kept.append(record.getMessage())
