"""Which tracking store a command uses when none is given, and how to look at it.

The default store is one place, whatever the working directory:

1. ``$SHALLOWNET_TRACKING_URI``, else ``$MLFLOW_TRACKING_URI`` (MLflow's own variable);
2. else, when shallownet runs from a git checkout (``make venv``), the checkout's
   ``outputs/mlflow.db`` (what ``make ui`` opens);
3. else (a wheel installed anywhere) ``mlflow.db`` in the per-user data directory,
   ``$XDG_DATA_HOME/shallownet`` (``~/.local/share/shallownet``).

Every command prints the store it used and the command that opens the MLflow UI on it.
"""

import os
import shlex
import shutil
import sys
from pathlib import Path

from .. import checkout

ENV_VAR = "SHALLOWNET_TRACKING_URI"
UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def user_data_dir():
    """$XDG_DATA_HOME/shallownet, else ~/.local/share/shallownet (the XDG base directories)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "shallownet"


def default_uri():
    """The store of a command given none (see the module docstring); a sqlite URI with an
    absolute path, or the environment's URI as it is."""
    for var in (ENV_VAR, "MLFLOW_TRACKING_URI"):
        if os.environ.get(var):
            return os.environ[var]
    top = checkout.root()
    folder = top / "outputs" if top else user_data_dir()
    return f"sqlite:///{folder / 'mlflow.db'}"


def absolute(uri):
    """``uri`` with a relative sqlite path made absolute (a command to paste anywhere)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        path, sep, query = uri[len(prefix) :].partition("?")
        return f"{prefix}{Path(path).resolve()}{sep}{query}"
    return uri


def _mlflow_command():
    """`mlflow` when it is the one on PATH, else the full path of this environment's own."""
    beside = Path(sys.executable).parent / "mlflow"
    if not beside.exists() or shutil.which("mlflow") == str(beside):
        return "mlflow"
    return str(beside)


def ui_lines(uri, page=""):
    """The lines that tell where a command's runs are: the store, and how to see ``page``
    (a path of the UI, e.g. '#/experiments/1/runs/ID') in the MLflow UI."""
    uri = absolute(uri)
    if uri.startswith(("http://", "https://")):  # a tracking server serves its own UI
        return [f"MLflow store: {uri}", f"MLflow UI: {uri.rstrip('/')}/{page}"]
    command = f"{_mlflow_command()} ui --backend-store-uri {shlex.quote(uri)}"
    return [f"MLflow store: {uri}", f"MLflow UI: {command}   then open {UI_ADDRESS}/{page}"]


def ui_page(experiment_id, run_id):
    """The run's page in the MLflow UI, relative to the UI's address (``ui_lines``)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"
