"""Everything that talks to MLflow. Imported only after the config and data are known good
(``import mlflow`` alone costs ~2 s)."""

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from importlib import metadata
from pathlib import Path


from .. import checkout

from ..console import first_line
from .points import recorded_steps

# Re-exported for the modules that still read them here (shallownet.names defines them).
from ..names import (  # noqa: F401
    DEFAULT_EXPERIMENT,
    DEFAULT_URI,
    MEMBERS_ARTIFACT,
    METRIC_KEYS,
    TAG_CODE,
    TAG_CONFIG_HASH,
    TAG_DATA,
    TAG_DIVERGED,
    TAG_FAILURE,
    TAG_HEARTBEAT,
    TAG_MIGRATED,
    TAG_NOTE,
    TAG_OWNER,
    TAG_PARENT,
    TAG_REPRODUCES,
    TAG_ROLE,
    TAG_RUN_KEY,
    TAG_SESSION,
    TAG_SKIPPED_FOR,
    TAG_STUDY,
    TAG_SWEEP,
)

MODEL_DIR = Path(__file__).resolve().parents[1] / "model"
PYFUNC_FILE = Path(__file__).resolve().parents[1] / "pyfunc_model.py"
MODEL_PACKAGES = ("mlflow", "numpy", "pandas")  # the distributions PYFUNC_FILE and MODEL_DIR import


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable server, unwritable path, full disk)."""


def configure(uri, timeout=10, retries=2, create=True):
    """Bound MLflow's HTTP retries (its defaults retry for minutes) and check the store is
    reachable; create the directory of a sqlite store (unless ``create`` is false: a
    reader). Call before importing mlflow."""
    quiet_mlflow()
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(retries))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
                r.read()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(
                f"tracking server unreachable at {uri} ({reason}). {_server_advice()}"
            ) from None
    elif uri.startswith("sqlite:///") and create:
        try:
            sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TrackingError(f"cannot create the store directory for {uri}: {err}") from None


def quiet_mlflow():
    """MLflow's settings read when it is imported: no telemetry, progress bars or INFO lines."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network calls home
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # no "Creating initial tables" INFO
    os.environ.pop("MLFLOW_RUN_ID", None)  # would override parent_run_id


def _server_advice():
    """How this user starts a server (``make server`` needs the checkout's Makefile), and their
    own default embedded store (from a checkout, its outputs/; else the per-user one)."""
    from .store import user_data_dir

    top = checkout.root()
    start = "make server" if top and (top / "Makefile").is_file() else "python -m shallownet.server start"
    folder = top / "outputs" if top else user_data_dir()
    return (
        f"Start one with '{start}', or use the embedded store: tracking.uri=sqlite:///{folder / 'mlflow.db'}"
    )


def sqlite_path(uri):
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def artifact_root(uri):
    """Artifacts of an embedded sqlite store live beside it (outputs/mlartifacts)."""
    if uri.startswith("sqlite:///"):
        return (sqlite_path(uri).resolve().parent / "mlartifacts").as_uri()
    return None  # a server decides (--serve-artifacts)


def connect(uri, timeout=10, retries=2, create=True):
    """configure(), then an MlflowClient on ``uri`` (also the fluent API's tracking URI) whose
    store exists and has its schema: a new sqlite store is created (shallownet.record.schema), one
    another process is creating is waited for. ``create=False`` (a reader): a sqlite store
    must exist with its schema complete; nothing is created, locked or written on opening.
    Raises TrackingError."""
    configure(uri, timeout, retries, create)
    import mlflow
    from mlflow.tracking import MlflowClient

    from . import schema

    given, uri = uri, _patient(uri)
    mlflow.set_tracking_uri(uri)
    # MLflow also exports the URI to MLFLOW_TRACKING_URI: child processes (demo -> reproduce,
    # report) get the user's URI, not this process's lock-timeout variant
    os.environ["MLFLOW_TRACKING_URI"] = given
    try:
        if uri.startswith("sqlite:///"):
            (schema.ensure if create else schema.require)(sqlite_path(uri))
        return MlflowClient(uri)  # a store at MLflow's latest schema: verified, not migrated
    except Exception as err:
        raise TrackingError(first_line(err)) from None


SQLITE_BUSY_SECONDS = 60


def _patient(uri):
    """A sqlite URI whose connections wait up to a minute for a lock (sqlite's default, 5 s,
    made jobs of a busy machine fail with 'database is locked'), unless it sets its own."""
    if uri.startswith("sqlite:///") and "timeout=" not in uri:
        return f"{uri}{'&' if '?' in uri else '?'}timeout={SQLITE_BUSY_SECONDS}"
    return uri


def ensure_experiment(uri, name, client=None):
    """Create (or find) the experiment once and return its id."""
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


# ---------------------------------------------------------------------------- runs


def runs_tagged(client, experiment_id, tag, value):
    """Every active run of the experiment whose tag ``tag`` is ``value``, any status."""
    return client.search_runs([experiment_id], f"tags.`{tag}` = '{value}'", max_results=10000)


def latest_run(client, experiment_name, filter_string):
    """The most recently started run of the named experiment matching the filter."""
    exp = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs(
        [exp.experiment_id], filter_string, order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0]


def find_run(client, run_id):
    """The run ``run_id``, or None when the store has none (MLflow: RESOURCE_DOES_NOT_EXIST)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def running_runs(client, experiment_id):
    return client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=10000)


def owner_tags(heartbeat=True, pid=None):
    """Process ``pid`` (default: this one) as the owner of the runs it trains (shallownet.procs)."""
    from ..procs import owner

    tags = {TAG_OWNER: json.dumps(owner(pid), sort_keys=True)}
    if heartbeat:
        tags[TAG_HEARTBEAT] = str(int(time.time() * 1000))
    return tags


def run_owner(run):
    """(owner dict or None, heartbeat ms or None) of a stored run."""
    tags = run.data.tags
    try:
        who = json.loads(tags[TAG_OWNER])
    except (KeyError, ValueError):
        who = None
    beat = tags.get(TAG_HEARTBEAT)
    return who, int(beat) if beat and beat.isdigit() else (run.info.start_time or None)


def create_run(client, experiment_id, name, tags, params=(), parent_run_id=None, dataset=None):
    """A RUNNING run with its tags, params and (``dataset``: the fields of an MLflow Dataset)
    its training data as a dataset input; returns it (an MLflow Run, as created)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Param

    if parent_run_id:
        tags = {**tags, TAG_PARENT: parent_run_id}
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params])
    if dataset:
        _log_dataset(
            client,
            run.info.run_id,
            DatasetInput(Dataset(**dataset), tags=[InputTag("mlflow.data.context", "training")]),
        )
    return run


def _log_dataset(client, run_id, dataset_input, attempts=3):
    """log_inputs, again when two runs logging the same new dataset at once collide on
    MLflow's unique (experiment, name, digest) row: the second attempt finds the row. The
    dataset input is a label for the UI, so a store that keeps refusing it costs the run
    nothing else."""
    for attempt in range(attempts):
        try:
            client.log_inputs(run_id, datasets=[dataset_input])
            return True
        except Exception:
            time.sleep(0.05 * (attempt + 1))
    return False


def end_run(client, run_id, status, tags=None):
    """Set end tags (e.g. failure_reason) and the terminal status of a run."""
    from mlflow.entities import RunTag

    if tags:
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    client.set_terminated(run_id, status)


def step_aside(client, run_id, winner_id):
    """A claim that lost to an older one: say so, end it and delete it (a deleted run stays in
    the store, restorable, but out of every search and of the UI's lists)."""
    end_run(
        client,
        run_id,
        "KILLED",
        {TAG_SKIPPED_FOR: winner_id, TAG_FAILURE: f"stepped aside: run {winner_id} trains this config"},
    )
    client.delete_run(run_id)


def reopen_run(client, run, tags):
    """A run RUNNING again (a resumed sweep's parent) with new tags, and without the reason
    its earlier session ended."""
    client.update_run(run.info.run_id, status="RUNNING")
    set_tags(client, run.info.run_id, tags)
    if TAG_FAILURE in run.data.tags:
        client.delete_tag(run.info.run_id, TAG_FAILURE)


def delete_run(client, run_id):
    client.delete_run(run_id)


def log_metrics(client, run_id, metrics):
    client.log_batch(run_id, metrics=metrics)


def log_files(client, run_id, folder):
    """Every file under ``folder`` as the run's artifacts (relative paths kept)."""
    client.log_artifacts(run_id, str(folder))


def log_params(client, run_id, params):
    """Params not yet on the run (a resumed sweep logs its rule again: same values)."""
    from mlflow.entities import Param

    have = client.get_run(run_id).data.params
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items() if k not in have])


def log_round(client, run_id, metrics, step):
    """One round of an adaptive sweep: its metrics at step = round."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])


def set_tags(client, run_id, tags):
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def outcome_of(run):
    """FINISHED | DIVERGED | FAILED | KILLED | RUNNING, as a sweep counts its configs."""
    status = run.info.status
    if status == "FAILED" and TAG_DIVERGED in run.data.tags:
        return "DIVERGED"
    return status if status in ("FINISHED", "FAILED", "KILLED", "RUNNING") else "FAILED"


def deciding_runs(runs):
    """The run that stands for each configuration (config_hash): of the runs of its latest
    identity (run_key), the first FINISHED one, else the latest. Runs without a config_hash
    (parents) are all kept. The sweep counts these, and the report reports them."""
    by_config = {}
    for run in sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id)):
        by_config.setdefault(run.data.tags.get(TAG_CONFIG_HASH, run.info.run_id), []).append(run)
    chosen = []
    for group in by_config.values():
        key = group[-1].data.tags.get(TAG_RUN_KEY)
        same = [r for r in group if r.data.tags.get(TAG_RUN_KEY) == key]
        finished = [r for r in same if r.info.status == "FINISHED"]
        chosen.append(finished[0] if finished else same[-1])
    return chosen


def log_members(client, parent_id, run_ids):
    import tempfile

    folder, _, name = MEMBERS_ARTIFACT.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps({"run_ids": sorted(run_ids)}, indent=1) + "\n")
        client.log_artifact(parent_id, str(path), folder)


def log_summary(client, parent_id, counts, note=None):
    """A parent's counters (metrics at step 0) and its description."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    tags = [RunTag(TAG_NOTE, note)] if note else []
    client.log_batch(parent_id, metrics=[Metric(k, float(v), now, 0) for k, v in counts.items()], tags=tags)


def metric_batch(curves, summary, max_points, model_id=None, planned=None, already=0):
    """Metric objects: every curve at the recorded epochs (step = epoch) beyond the first
    ``already`` of them (sent live by the Pulse), plus the summaries (step 0), which are also
    the metrics of the logged model ``model_id`` when given."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    # The summaries first: MLflow stores a long batch in chunks, and a run whose record was
    # cut short then still has its final values.
    out = [Metric(k, float(v), now, 0, model_id=model_id) for k, v in summary.items() if v is not None]
    n = len(curves["epoch"])
    if n:
        steps = recorded_steps(planned or n, n, max_points)[already:]
        for key in METRIC_KEYS:
            values = curves[key]
            out.extend(Metric(key, float(values[s]), now, int(s)) for s in steps)
    return out


def model_signature(feature_names, classes):
    """A DataFrame of the named features in, one probability column per class out: MLflow
    refuses an input without these columns and reorders misordered ones by name."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in feature_names]),
        outputs=Schema([ColSpec("double", name) for name in classes]),
    )


def log_model(run_id, experiment_id, weights, feature_names, classes):
    """An MLflow pyfunc model (model from code + weights) of run ``run_id`` whose predict gives
    every class's probability, from the weights file ``weights`` (``contents.save_net``). ``Model.log`` with the run's id: pyfunc.log_model would need
    (and start) an "active run", a process-wide state that a sweep worker's next job would
    inherit."""
    import mlflow
    from mlflow.models import Model

    # Without an active run, MLflow files the logged model under the experiment that
    # MLFLOW_EXPERIMENT_ID names (else under experiment 0, in ./mlruns): name the run's.
    os.environ["MLFLOW_EXPERIMENT_ID"] = str(experiment_id)

    # What pyfunc_model.py imports, pinned to this environment: MLflow infers none (inferring
    # loads the model in a subprocess).
    reqs = [f"{pkg}=={metadata.version(pkg)}" for pkg in MODEL_PACKAGES]
    with warnings.catch_warnings():  # the signature is explicit; an example would cost a reload
        warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
        return Model.log(
            None,
            name="model",
            flavor=mlflow.pyfunc,
            run_id=run_id,
            python_model=str(PYFUNC_FILE),
            artifacts={"weights": str(weights)},
            code_paths=[str(MODEL_DIR)],
            signature=model_signature(feature_names, classes),
            pip_requirements=reqs,
        )


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
        path = uri[len("sqlite:///") :].split("?", 1)[0]
        if not path or path == ":memory:":
            raise TrackingError(f"tracking store {uri!r} has no file")
        if not Path(path).is_file():
            raise TrackingError(
                f"no store at {path} (not found: pass --tracking-uri or set MLFLOW_TRACKING_URI)"
            )
    elif uri.startswith("file:") or "://" not in uri:
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        if not Path(path).exists():
            raise TrackingError(f"no store at {path} (not found)")


def open_store(uri, timeout=20, retries=0):
    """A reader's MlflowClient on an existing store (require_store, then connect without
    creating anything): works on a read-only file system, and never takes the schema lock."""
    require_store(uri)
    return connect(uri, timeout, retries, create=False)


def runs_frame(runs):
    """Run objects -> a DataFrame shaped like ``mlflow.search_runs``'s: run_id, experiment_id,
    status, artifact_uri, start_time, end_time (UTC datetimes), then metrics.*, params.*,
    tags.* columns in sorted order (None where a run lacks the key)."""
    import pandas as pd

    rows = []
    for r in runs:
        row = {
            "run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id,
            "status": r.info.status,
            "artifact_uri": r.info.artifact_uri,
            "start_time": r.info.start_time,
            "end_time": r.info.end_time,
        }
        row.update({f"metrics.{k}": v for k, v in r.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update({f"tags.{k}": v for k, v in r.data.tags.items()})
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    keys = sorted(
        {k for row in rows for k in row if k not in base},
        key=lambda k: (("metrics.", "params.", "tags.").index(k[: k.index(".") + 1]), k),
    )
    df = pd.DataFrame(rows, columns=base + keys)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], unit="ms", utc=True)
    for col in (k for k in keys if k.startswith("metrics.")):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def search_all(client, experiment_ids, filter_string="", view_type=None, order_by=None):
    """Every run matching ``filter_string`` (all pages): the active ones, or those of
    ``view_type`` (an mlflow ViewType), in ``order_by`` order if given."""
    runs, token = [], None
    extra = {"run_view_type": view_type} if view_type is not None else {}
    while True:
        page = client.search_runs(
            list(experiment_ids),
            filter_string or "",
            max_results=SEARCH_PAGE,
            order_by=order_by,
            page_token=token,
            **extra,
        )
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def search_runs_frame(client, experiment_ids, filter_string=""):
    """Every active run matching ``filter_string`` (all pages), as runs_frame()."""
    return runs_frame(search_all(client, experiment_ids, filter_string))


def require_experiment(client, name):
    """The id of the named experiment (RunsNotFound when the store has none)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        raise RunsNotFound(f"experiment {name!r} not found in the tracking store")
    return exp.experiment_id


def _filter_quote(s):
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


def latest_sweep_id(client, experiment_name):
    """The sweep_id of the parent run most recently run: started or resumed (a parent's
    heartbeat tag is set when its sweep opens it, resumes included); ties by run id."""
    exp = require_experiment(client, experiment_name)
    parents = [
        r for r in search_all(client, [exp], f"tags.`{TAG_ROLE}` = 'parent'") if r.data.tags.get(TAG_SWEEP)
    ]
    if not parents:
        raise RunsNotFound(f"no sweep (parent run) found in experiment {experiment_name!r}")

    def last_opened(run):
        _, beat = run_owner(run)  # the heartbeat, else the start time
        return (max(run.info.start_time or 0, beat or 0), run.info.run_id)

    return str(max(parents, key=last_opened).data.tags[TAG_SWEEP])


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


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def get_runs(client, experiment_ids, run_ids, chunk=100):
    """The active runs with these ids (searched in ``experiment_ids``, then looked up one by
    one for any other experiment's); unknown or deleted ids are skipped."""
    wanted = list(dict.fromkeys(run_ids))
    found = {}
    for part in _chunks(wanted, chunk):
        ids = ", ".join(_filter_quote(r) for r in part)
        found.update(
            {r.info.run_id: r for r in search_all(client, experiment_ids, f"attributes.run_id IN ({ids})")}
        )
    for rid in (r for r in wanted if r not in found):
        try:
            run = client.get_run(rid)
        except Exception:
            continue
        if run.info.lifecycle_stage == "active":
            found[rid] = run
    return [found[r] for r in wanted if r in found]


def load_sweep_runs(client, experiment_name, sweep, dst=None):
    """(sweep_id, DataFrame of the sweep's parent and child runs). ``sweep`` is a sweep_id or
    'latest'. The children are the runs tagged with the sweep_id plus the runs its parent's
    MEMBERS_ARTIFACT lists (configs that another sweep had already finished), reduced to
    the run that stands for each config (``deciding_runs``, as the sweep counts them)."""
    import tempfile

    exp = require_experiment(client, experiment_name)
    if sweep == "latest":
        sweep = latest_sweep_id(client, experiment_name)
    runs = search_all(client, [exp], f"tags.{TAG_SWEEP} = {_filter_quote(sweep)}")
    if not runs:
        raise RunsNotFound(f"sweep {sweep!r} not found in experiment {experiment_name!r}")
    members = []
    with tempfile.TemporaryDirectory(prefix="shallownet-members-") as tmp:
        for run in runs:
            if run.data.tags.get(TAG_ROLE) == "parent":
                members += sweep_members(client, run.info.run_id, dst or tmp) or []
    have = {r.info.run_id for r in runs}
    runs += get_runs(client, [exp], [r for r in dict.fromkeys(members) if r not in have])
    return sweep, runs_frame(deciding_runs(runs))


def load_experiment_runs(client, experiment_name, filter_string=""):
    """Every active run of the experiment matching the filter (parents included)."""
    exp = require_experiment(client, experiment_name)
    runs = search_runs_frame(client, [exp], filter_string)
    role = runs.get(f"tags.{TAG_ROLE}")
    children = runs if role is None else runs[role != "parent"]
    if children.empty:
        raise RunsNotFound(
            f"no runs in experiment {experiment_name!r} match {filter_string!r}"
            if filter_string
            else f"no runs in experiment {experiment_name!r}"
        )
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
        markdown = markdown[: NOTE_MAX_CHARS - len(cut)] + cut
    client.set_tag(run_id, TAG_NOTE, markdown)


# ---- copying an experiment to another store (shallownet.migrate)


def copy_experiment(src_uri, dst_uri, experiment, *, dst_experiment=None, include_deleted=False, log=print):
    """``_copy_experiment``, with MLflow's errors as one TrackingError."""
    from mlflow.exceptions import MlflowException

    try:
        return _copy_experiment(src_uri, dst_uri, experiment, dst_experiment, include_deleted, log)
    except MlflowException as err:
        raise TrackingError(f"migration failed: {first_line(err)}") from err


def _copy_experiment(src_uri, dst_uri, experiment, dst_experiment, include_deleted, log):
    """Copy every run of ``experiment`` from ``src_uri`` to ``dst_uri``; return {old_id: new_id}.

    Copies run name, status, start/end time, params, tags, every metric with its full history
    (value, timestamp, step), dataset inputs and artifacts; ``mlflow.parentRunId`` tags are
    remapped to the new ids (parents are created before children).  Each copied run gets the
    tag ``shallownet.migrated_from=<old id>`` (set last), and runs already carrying it in the
    destination are skipped, so re-running the migration does not duplicate runs.  Logged
    models (MLflow 3 ``LoggedModel`` entities), traces and registry entries are not copied.
    """
    from mlflow.entities import Metric, Param, RunTag, ViewType
    from mlflow.tracking import MlflowClient

    src, dst = MlflowClient(tracking_uri=src_uri), MlflowClient(tracking_uri=dst_uri)
    src_exp = src.get_experiment_by_name(experiment)
    if src_exp is None:
        raise LookupError(f"no experiment {experiment!r} in {src_uri}")
    name = dst_experiment or experiment
    dst_exp = dst.get_experiment_by_name(name)
    if dst_exp is None:
        exp_tags = {k: v for k, v in src_exp.tags.items() if not k.startswith("mlflow.")}
        dst_exp_id = dst.create_experiment(name, tags=exp_tags or None)
    else:
        dst_exp_id = dst_exp.experiment_id
        if dst_exp.lifecycle_stage == "deleted":
            raise LookupError(f"experiment {name!r} is deleted in {dst_uri}; restore it")

    view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
    oldest_first = ["attributes.start_time ASC"]
    runs = search_all(src, [src_exp.experiment_id], view_type=view, order_by=oldest_first)
    id_map: dict[str, str] = {}
    for run in search_all(dst, [dst_exp_id], view_type=ViewType.ALL):
        if TAG_MIGRATED in run.data.tags:
            id_map[run.data.tags[TAG_MIGRATED]] = run.info.run_id
    already = set(id_map)

    # parents before children (any depth)
    by_id = {r.info.run_id: r for r in runs}
    ordered, placed = [], set()

    def place(run, seen=()):
        rid = run.info.run_id
        if rid in placed:
            return
        parent = run.data.tags.get(TAG_PARENT)
        if parent in by_id and parent not in seen:
            place(by_id[parent], (*seen, rid))
        placed.add(rid)
        ordered.append(run)

    for run in runs:
        place(run)

    copied = 0
    for run in ordered:
        old = run.info.run_id
        if old in already:
            continue
        tags = dict(run.data.tags)
        tags.pop(TAG_MIGRATED, None)
        parent = tags.pop(TAG_PARENT, None)
        if parent is not None:
            if parent in id_map:
                tags[TAG_PARENT] = id_map[parent]
            else:
                log(f"warning: run {old}: parent {parent} was not migrated; link dropped")
        new = dst.create_run(
            dst_exp_id, start_time=run.info.start_time, tags=tags, run_name=run.info.run_name
        ).info.run_id
        params = [Param(k, v) for k, v in run.data.params.items()]
        for chunk in _chunks(params, 100):
            dst.log_batch(new, params=chunk)
        metrics = []
        for key in sorted(run.data.metrics):
            for m in src.get_metric_history(old, key):
                metrics.append(
                    Metric(
                        m.key,
                        m.value,
                        m.timestamp,
                        m.step,
                        dataset_name=m.dataset_name,
                        dataset_digest=m.dataset_digest,
                    )
                )
        for chunk in _chunks(metrics, 1000):
            dst.log_batch(new, metrics=chunk)
        if run.inputs and run.inputs.dataset_inputs:
            for chunk in _chunks(list(run.inputs.dataset_inputs), 100):
                dst.log_inputs(new, datasets=chunk)
        if src.list_artifacts(old):
            with tempfile.TemporaryDirectory(prefix="shallownet-migrate-") as tmp:
                local = src.download_artifacts(old, "", dst_path=tmp)
                dst.log_artifacts(new, local)
        if run.info.status != "RUNNING":
            dst.set_terminated(new, status=run.info.status, end_time=run.info.end_time)
        if run.info.lifecycle_stage == "deleted":
            dst.delete_run(new)
        dst.log_batch(new, tags=[RunTag(TAG_MIGRATED, old)])
        id_map[old] = new
        copied += 1
    log(
        f"migrated {copied} run(s) of experiment {experiment!r} to {dst_uri} "
        f"(experiment {name!r}, id {dst_exp_id}); {len(already & set(by_id))} already there"
    )
    return {old: id_map[old] for old in by_id if old in id_map}
