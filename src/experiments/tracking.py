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


# ---- reading runs for reports
# Every MLflow call that shallownet-report (and reproduce --sweep) makes: runs searched into a
# DataFrame, the latest sweep, a sweep's members, artifacts, the report logged to the parent
# and the parent's description. The report package itself never imports mlflow.

SEARCH_PAGE = 1000


class RunsNotFound(LookupError):
    """No such experiment, sweep or runs in the store (one line for the user)."""


def require_store(uri):
    """Refuse a store that does not exist yet (reading must never create one): a missing
    sqlite file or file-store directory raises TrackingError; servers are checked on use."""
    if uri.startswith("sqlite:"):
        if not uri.startswith("sqlite:///"):
            raise TrackingError(f"unsupported sqlite tracking URI {uri!r}: use sqlite:///PATH")
        path = uri[len("sqlite:///"):].split("?", 1)[0]
        if not path or path == ":memory:":
            raise TrackingError(f"tracking store {uri!r} has no file")
        if not Path(path).is_file():
            raise TrackingError(f"tracking store not found: no sqlite file at {path} "
                                "(pass --tracking-uri or set MLFLOW_TRACKING_URI)")
    elif uri.startswith("file:") or "://" not in uri:
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        if not Path(path).exists():
            raise TrackingError(f"tracking store not found: {path}")


def open_store(uri, timeout=20, retries=0):
    """An MlflowClient on an existing store (require_store, then connect)."""
    require_store(uri)
    return connect(uri, timeout, retries)


def runs_frame(runs):
    """Run objects -> a DataFrame shaped like ``mlflow.search_runs``'s: run_id, experiment_id,
    status, artifact_uri, start_time, end_time (UTC datetimes), then metrics.*, params.*,
    tags.* columns in sorted order (None where a run lacks the key)."""
    import pandas as pd

    rows = []
    for r in runs:
        row = {"run_id": r.info.run_id, "experiment_id": r.info.experiment_id,
               "status": r.info.status, "artifact_uri": r.info.artifact_uri,
               "start_time": r.info.start_time, "end_time": r.info.end_time}
        row.update({f"metrics.{k}": v for k, v in r.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update({f"tags.{k}": v for k, v in r.data.tags.items()})
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    keys = sorted({k for row in rows for k in row if k not in base},
                  key=lambda k: (("metrics.", "params.", "tags.").index(k[:k.index(".") + 1]), k))
    df = pd.DataFrame(rows, columns=base + keys)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], unit="ms", utc=True)
    for col in (k for k in keys if k.startswith("metrics.")):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def search_runs_frame(client, experiment_ids, filter_string=""):
    """Every active run matching ``filter_string`` (all pages), as runs_frame()."""
    runs, token = [], None
    while True:
        page = client.search_runs(list(experiment_ids), filter_string or "",
                                  max_results=SEARCH_PAGE, page_token=token)
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs_frame(runs)


def require_experiment(client, name):
    """The id of the named experiment (RunsNotFound when the store has none)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        raise RunsNotFound(f"experiment {name!r} not found in the tracking store")
    return exp.experiment_id


def _filter_quote(s):
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


def latest_sweep_id(client, experiment_name):
    """The sweep_id of the most recently started parent run of the experiment."""
    exp = require_experiment(client, experiment_name)
    parents = search_runs_frame(client, [exp], f"tags.`{TAG_ROLE}` = 'parent'")
    col = f"tags.{TAG_SWEEP}"
    if col in parents:
        parents = parents[parents[col].notna()]
    if parents.empty or col not in parents:
        raise RunsNotFound(f"no sweep (parent run) found in experiment {experiment_name!r}")
    parents = parents.sort_values(["start_time", "run_id"], kind="mergesort")
    return str(parents.iloc[-1][col])


def download_artifact(client, run_id, path, dst):
    """Local Path of a run's artifact file under ``dst``/run_id, or None when it does not exist
    or cannot be read (a crashed run)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        d = Path(dst) / run_id
        d.mkdir(parents=True, exist_ok=True)
        local = Path(client.download_artifacts(run_id, path, str(d)))
    except Exception:
        return None
    return local if local.is_file() else None


def sweep_members(client, parent_run_id, dst):
    """Run ids in the parent's MEMBERS_ARTIFACT ({"run_ids": [...]}: the run used for every
    config of the sweep, other sweeps' included), or None when the parent has none."""
    p = download_artifact(client, parent_run_id, MEMBERS_ARTIFACT, dst)
    if p is None:
        return None
    try:
        ids = json.loads(p.read_text())["run_ids"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(i) for i in ids]


def runs_by_id(client, experiment_ids, run_ids, chunk=100):
    """The active runs with these ids (searched in ``experiment_ids``, then looked up one by
    one for any other experiment's), as runs_frame(); unknown or deleted ids are skipped."""
    wanted = list(dict.fromkeys(run_ids))
    found = {}
    for i in range(0, len(wanted), chunk):
        ids = ", ".join(_filter_quote(r) for r in wanted[i:i + chunk])
        page, token = [], None
        while True:
            res = client.search_runs(list(experiment_ids), f"attributes.run_id IN ({ids})",
                                     max_results=SEARCH_PAGE, page_token=token)
            page.extend(res)
            token = getattr(res, "token", None)
            if not token:
                break
        found.update({r.info.run_id: r for r in page})
    for rid in (r for r in wanted if r not in found):
        try:
            run = client.get_run(rid)
        except Exception:
            continue
        if run.info.lifecycle_stage == "active":
            found[rid] = run
    return runs_frame([found[r] for r in wanted if r in found])


def latest_per_config(runs):
    """A resumed sweep can hold the same config twice (a failed job run again): keep the most
    recently started run of each config_hash (runs without one are all kept)."""
    col = f"tags.{TAG_CONFIG_HASH}"
    if col not in runs:
        return runs
    runs = runs.sort_values(["start_time", "run_id"], kind="mergesort")
    dup = runs[col].notna() & runs.duplicated(col, keep="last")
    return runs[~dup].reset_index(drop=True)


def load_sweep_runs(client, experiment_name, sweep, dst=None):
    """(sweep_id, DataFrame of the sweep's parent and child runs). ``sweep`` is a sweep_id or
    'latest'. The children are the runs tagged with the sweep_id plus the runs its parent's
    MEMBERS_ARTIFACT lists (configs that another sweep had already finished), then the latest
    run of each config_hash."""
    import tempfile

    import pandas as pd

    exp = require_experiment(client, experiment_name)
    if sweep == "latest":
        sweep = latest_sweep_id(client, experiment_name)
    runs = search_runs_frame(client, [exp], f"tags.{TAG_SWEEP} = {_filter_quote(sweep)}")
    if runs.empty:
        raise RunsNotFound(f"sweep {sweep!r} not found in experiment {experiment_name!r}")
    role = runs.get(f"tags.{TAG_ROLE}")
    parent_ids = sorted(runs.loc[role == "parent", "run_id"]) if role is not None else []
    members = []
    with tempfile.TemporaryDirectory(prefix="shallownet-members-") as tmp:
        for pid in parent_ids:
            members += sweep_members(client, pid, dst or tmp) or []
    extra = [r for r in dict.fromkeys(members) if r not in set(runs["run_id"])]
    if extra:
        runs = pd.concat([runs, runs_by_id(client, [exp], extra)], ignore_index=True)
    return sweep, latest_per_config(runs)


def load_experiment_runs(client, experiment_name, filter_string=""):
    """Every active run of the experiment matching the filter (parents included)."""
    exp = require_experiment(client, experiment_name)
    runs = search_runs_frame(client, [exp], filter_string)
    role = runs.get(f"tags.{TAG_ROLE}")
    children = runs if role is None else runs[role != "parent"]
    if children.empty:
        raise RunsNotFound(f"no runs in experiment {experiment_name!r} match {filter_string!r}"
                           if filter_string else f"no runs in experiment {experiment_name!r}")
    return runs


def log_report_files(client, run_id, paths, artifact_path="report"):
    """Log the files to the run under ``artifact_path``; returns their artifact paths."""
    out = []
    for p in paths:
        client.log_artifact(run_id, str(p), artifact_path=artifact_path)
        out.append(f"{artifact_path}/{Path(p).name}")
    return out


def artifact_page(exp_id, run_id, path):
    """The MLflow UI's page of one artifact of a run (a link relative to the UI's root)."""
    return f"#/experiments/{exp_id}/runs/{run_id}/artifactPath/{path}"


NOTE_MAX_CHARS = 8000  # MLflow's limit on a tag value


def set_description(client, run_id, markdown):
    """The run's description in the MLflow UI (the TAG_NOTE tag, rendered as markdown); cut
    to MLflow's tag limit, with a last line saying so."""
    if len(markdown) > NOTE_MAX_CHARS:
        cut = "\n\n(description cut to MLflow's tag limit)"
        markdown = markdown[:NOTE_MAX_CHARS - len(cut)] + cut
    client.set_tag(run_id, TAG_NOTE, markdown)
