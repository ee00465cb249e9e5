"""The recorder: the one object that writes runs to the store. It opens the store once, claims
runs, takes their live points and heartbeat, records what a fitted run leaves and ends runs.

It runs in the process that trains (``Recorder()``), or in a process of its own
(started by ``record.remote`` through ``procs.start_child``) that imports MLflow
while the caller composes its config and trains: the same methods, called through a pipe.
"""

import os
import signal
import sys
import time

from . import claims, contents, provenance, schema, tracking
from ..console import first_line
from .messages import Claimed, Skip
from ..names import TAG_HEARTBEAT


class Recorder:
    def __init__(self, client=None):
        self.client = client  # an MlflowClient already open (a sweep's), else ``open`` makes one

    def open(self, tr, experiment_id=None):
        """Connect to the store of ``tr`` (config.Tracking); the id of its experiment
        (``experiment_id`` when a sweep already knows it). Raises on an unusable store."""
        self.client = tracking.connect(tr.uri, tr.timeout, tr.retries)
        return experiment_id or tracking.ensure_experiment(tr.uri, tr.experiment, self.client)

    def claim(self, experiment_id, ticket):
        """Claimed: our RUNNING run (owned by this process), or the run that makes it
        redundant (``record.claims``)."""

        def create():
            tags = {
                **ticket.tags,
                **tracking.owner_tags(pid=ticket.owner_pid),
                **provenance.environment_tags(),
            }
            return tracking.create_run(
                self.client, experiment_id, ticket.name, tags, ticket.params, ticket.parent, ticket.dataset
            )

        got = claims.claim(
            self.client,
            experiment_id,
            ticket.config_hash,
            ticket.run_key,
            ticket.data_fingerprint,
            create,
            compete=ticket.compete,
        )
        other = got.skipped_for
        skip = other and Skip(
            other.info.run_id, other.info.status, other.data.metrics.get("final_test_accuracy")
        )
        return Claimed(got.run_id, skip, got.retrain)

    def live(self, run_id, steps, values):
        """The curve points at ``steps`` ({key: values at those steps}) and a heartbeat."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v[i]), now, int(s)) for i, s in enumerate(steps) for k, v in values.items()
        ]
        self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(TAG_HEARTBEAT, str(now))])

    def beat(self, run_ids):
        """A heartbeat for each run of ``run_ids`` (runs trained elsewhere: a sweep's workers)."""
        from mlflow.entities import RunTag

        now = str(int(time.time() * 1000))
        for run_id in run_ids:
            self.client.log_batch(run_id, tags=[RunTag(TAG_HEARTBEAT, now)])

    def record(self, experiment_id, run_id, rec):
        """A fitted run's model, metrics and files of record (``messages.RunRecord``): the model
        first, then the metrics (they land even when logging the model failed), then
        curves.parquet and environment.txt into the run's folder of files (``rec.files``). A
        FINISHED run's test AUC is computed here unless its caller did (``contents.with_test_auc``)."""
        rec = contents.with_test_auc(rec)
        model_id = None
        try:
            if rec.weights:
                # Before the metrics: given none, MLflow links none to the model by itself (it
                # would copy every point at step 0, reading each key's history back).
                model_id = tracking.log_model(
                    run_id, experiment_id, rec.weights, rec.feature_names, rec.classes
                ).model_id
        finally:
            batch = tracking.metric_batch(
                rec.curves, rec.summary, rec.max_points, model_id, planned=rec.planned, already=rec.already
            )
            tracking.log_metrics(self.client, run_id, batch)
        contents.write_curves(rec.files, rec.curves)  # pandas is loaded with mlflow here
        contents.write_environment(rec.files, provenance.pip_freeze())

    def load_scoring(self):
        """Import what ``record`` needs for a test AUC now (while the caller trains)."""
        contents.load_scoring()

    def log_files(self, run_id, folder):
        """The files under ``folder`` as the run's artifacts."""
        tracking.log_files(self.client, run_id, folder)

    def end(self, run_id, status, tags=None):
        tracking.end_run(self.client, run_id, status, tags)

    def submit(self, method, *args):
        """``method`` called now: the answer of ``record.remote.RemoteRecorder.submit``."""
        return Done(getattr(self, method)(*args))

    def close(self):
        pass


class Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


# ------------------------------------------------------------------------------ its own process


def serve(conn, recorder):
    """Answer requests ``(id, method, args)`` with ``(id, True, result)`` or ``(id, False,
    (error type, first line))`` until the caller closes the pipe or says ``close``."""
    while True:
        try:
            rid, method, args = conn.recv()
        except (EOFError, OSError):
            return
        if method == "close":
            conn.send((rid, True, None))
            return
        try:
            reply = (rid, True, getattr(recorder, method)(*args))
        except Exception as err:
            reply = (rid, False, (type(err).__name__, first_line(err)))
        conn.send(reply)


def main(argv=None):
    """The recorder's process: the stop signals are its caller's to act on (a signal to the
    whole group must not end a record halfway); it dies with its caller."""
    from ..procs import child_begins
    from ..stop import SIGNALS

    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked by the caller while it started us
    conn = child_begins(argv or sys.argv)
    tracking.quiet_mlflow()
    schema.warm_up()  # imports mlflow now, while the caller composes and trains
    provenance.environment_tags(), provenance.pip_freeze()  # computed once per process
    try:
        serve(conn, Recorder())
    finally:
        conn.close()
    os._exit(0)  # MLflow's atexit hooks have nothing of ours to flush
