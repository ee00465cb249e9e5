"""Everything that talks to MLflow. Imported only after the config and data are known good
(``import mlflow`` alone costs ~2 s)."""

import functools
import json
import os
import platform
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(__file__).resolve().parents[1] / "model"
PYFUNC_FILE = Path(__file__).resolve().parent / "pyfunc_model.py"
METRIC_KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr")

# The names every part of shallownet (train, sweep, report, reproduce, demo) and its users'
# queries rely on: defined here once.
DEFAULT_URI = "sqlite:///outputs/mlflow.db"
DEFAULT_EXPERIMENT = "shallownet"
TAG_ROLE = "shallownet.role"  # parent | child | single | reproduction
TAG_STUDY = "shallownet.experiment"  # the experiment file a sweep ran
TAG_SWEEP = "sweep_id"
TAG_CONFIG_HASH = "config_hash"
TAG_DATA = "data_fingerprint"
TAG_FAILURE = "failure_reason"
TAG_DIVERGED = "diverged_at_epoch"
TAG_REPRODUCES = "reproduces"
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI (markdown)
MEMBERS_ARTIFACT = "sweep/members.json"  # a parent's {"run_ids": [...]}: every config's run


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable server, unwritable path)."""


def configure(uri, timeout=10, retries=2):
    """Bound MLflow's HTTP retries (its defaults retry for minutes) and check the store is
    reachable; create the directory of a sqlite store. Call before importing mlflow."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(retries))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network calls home
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.pop("MLFLOW_RUN_ID", None)  # would override parent_run_id
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
                r.read()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(
                f"tracking server unreachable at {uri} ({reason}). Start one with "
                f"'make server', or use the embedded store: tracking.uri=sqlite:///outputs/mlflow.db"
            ) from None
    elif uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TrackingError(f"cannot create the store directory for {uri}: {err}") from None


def artifact_root(uri):
    """Artifacts of an embedded sqlite store live beside it (outputs/mlartifacts)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    return None  # a server decides (--serve-artifacts)


def connect(uri, timeout=10, retries=2):
    """configure(), then an MlflowClient on ``uri`` (also the fluent API's tracking URI)."""
    configure(uri, timeout, retries)
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def ensure_experiment(uri, name, client=None):
    """Create (or find) the experiment once and return its id. The first use of a new sqlite
    store also creates and migrates its schema here, in one process."""
    client = client or connect(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(uri))
    except Exception:  # created meanwhile by another process
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def finished_run(client, experiment_id, chash):
    """A FINISHED run with this config_hash in the experiment, or None."""
    runs = client.search_runs(
        [experiment_id], f"tags.config_hash = '{chash}' and attributes.status = 'FINISHED'",
        max_results=1)
    return runs[0] if runs else None


def _git(*args):
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def environment_tags():
    """Code and machine provenance: git state, versions, host/CPU/OS. Computed once per
    process (a joblib worker runs many jobs from the same tree and environment)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    tags = {
        "git_commit": commit or "unknown",
        "git_dirty": "unknown" if status is None else str(bool(status)).lower(),
        "python_version": platform.python_version(),
        "host": platform.node(),
        "cpu": _cpu(),
        "os": platform.platform(),
        "cpu_count": str(os.cpu_count()),
    }
    for pkg in ("numpy", "mlflow", "hydra-core", "omegaconf", "scikit-learn", "matplotlib"):
        try:
            tags[f"version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return tags


@functools.lru_cache(maxsize=1)
def pip_freeze():
    """`pip freeze`-style listing of the running environment, without spawning pip."""
    dists = {(d.metadata["Name"] or "").lower(): d.version for d in metadata.distributions()}
    return "".join(f"{name}=={ver}\n" for name, ver in sorted(dists.items()) if name)


def subsample_steps(n, max_points):
    """At most max_points epochs out of n, evenly spread, always the first and the last."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def metric_batch(curves, summary, max_points, model_id=None):
    """Metric objects: every curve at the subsampled epochs (step = epoch), plus summaries
    (step 0), which are also the metrics of the logged model ``model_id`` when given."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    n = len(curves["epoch"])
    out = []
    if n:
        steps = subsample_steps(n, max_points)
        for key in METRIC_KEYS:
            values = curves[key]
            out.extend(Metric(key, float(values[s]), now, int(s)) for s in steps)
    out.extend(Metric(k, float(v), now, 0, model_id=model_id) for k, v in summary.items() if v is not None)
    return out


def save_net(net, path):
    """Weights and architecture in one .npz: what the pyfunc model loads."""
    meta = {"layer_sizes": net.layer_sizes, "hidden_activation": net.hidden_activation,
            "output_activation": net.output_activation, "dtype": net.dtype.name,
            "leaky_relu_alpha": net.leaky_relu_alpha}
    arrays = {f"W{i}": W for i, W in enumerate(net.weights)}
    arrays.update({f"b{i}": b for i, b in enumerate(net.biases)})
    np.savez(path, meta=json.dumps(meta), **arrays)


def log_model(net, X_example, workdir):
    """An MLflow pyfunc model (model from code + weights) whose predict gives probabilities."""
    import mlflow
    from mlflow.models import infer_signature

    try:  # MLflow maps every installed distribution to its modules (~0.8 s per process) just to
        # check the two requirements below against the running environment: seed that map.
        from mlflow.utils import requirements_utils as ru

        if ru._MODULES_TO_PACKAGES is None:
            ru._MODULES_TO_PACKAGES = {"numpy": ["numpy"], "mlflow": ["mlflow"]}
    except (ImportError, AttributeError):
        pass
    weights = Path(workdir) / "net.npz"
    save_net(net, weights)
    example = np.asarray(X_example[:5], dtype=net.dtype)
    proba = net.forward(example)
    proba = proba[:, 0] if proba.shape[1] == 1 else proba
    reqs = [f"numpy=={metadata.version('numpy')}", f"mlflow=={metadata.version('mlflow')}"]
    with warnings.catch_warnings():  # the signature is explicit; an example would cost a reload
        warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
        return mlflow.pyfunc.log_model(
            name="model", python_model=str(PYFUNC_FILE), artifacts={"weights": str(weights)},
            code_paths=[str(MODEL_DIR)], signature=infer_signature(example, proba),
            pip_requirements=reqs)
