"""Shared helpers: run the console scripts in a temporary directory with its own store."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def cli_env(env=None):
    """This process's environment without an MLflow URI or run id of its own, plus ``env``."""
    full_env = dict(os.environ)
    full_env.pop("MLFLOW_TRACKING_URI", None)
    full_env.pop("MLFLOW_RUN_ID", None)
    full_env.update(env or {})
    return full_env


def run_cli(args, cwd, timeout=600, env=None, **kw):
    """Run a console script (shallownet-train, ...) in ``cwd``; returns CompletedProcess."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
        **kw,
    )


@pytest.fixture
def store(tmp_path):
    """(working dir, tracking uri) of a fresh embedded store in tmp_path."""
    db = tmp_path / "mlflow.db"
    return tmp_path, f"sqlite:///{db}"


def client_for(uri):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def runs_of(uri, experiment="shallownet", filter_string=""):
    client = client_for(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], filter_string, max_results=1000)


@pytest.fixture
def drawn(monkeypatch):
    """The report's figures as the code under test saves them (saved as usual too): a list of
    matplotlib Figures to read through the Axes' public API."""
    from shallownet.report import figures

    figs = []
    save = figures._save

    def keep(fig, path):
        figs.append(fig)
        return save(fig, path)

    monkeypatch.setattr(figures, "_save", keep)
    return figs
