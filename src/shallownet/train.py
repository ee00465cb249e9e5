"""One run, or the runs of one job that stacks seeds: a validated config -> data -> NumPy
training -> MLflow runs, written by a recorder (``record.recorder``: its own process for a single
run, so that this one never imports MLflow). Hydra is not here: ``shallownet.sweep.task`` hands
``run`` the composed config as plain values; a sweep's launcher (``sweep.launcher``) uses the
steps here (prepare, claim, record_fitted) around its compute workers.

A run is a story of six steps (``run``): prepare (config, data, identity), open the store,
claim the configuration (a sweep job skips one that an identical run already finished),
train (with a heartbeat and live metrics), record, report. Whatever happens after the claim,
the run ends FINISHED, FAILED (with ``failure_reason``) or KILLED (Ctrl-C/SIGTERM, with the
metrics measured so far). A run that cannot start raises ``RunError``, caught in one place:
``sweep.cli.main`` for a single run (one line, its exit code), ``sweep.task.run_job`` for a
sweep's job (its outcome). Exit codes: 0 finished, 1 diverged or failed, 2 bad config or data (nothing
recorded), 3 tracking store unusable, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.
"""

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from . import compute, config, datasets, identity
from .console import emit, first_line, say
from .fit import Curves, Fit, fit_stacked, layer_sizes
from .job import Job, Outcome, RunError
from .model import MLP
from .names import (
    TAG_CODE,
    TAG_CONFIG_HASH,
    TAG_DATA,
    TAG_FAILURE,
    TAG_ROLE,
    TAG_RUN_KEY,
    TAG_SESSION,
    TAG_SWEEP,
)
from .record import contents, store
from .record.messages import Ticket
from .record.pulse import Pulse
from .stop import STOP


@dataclass
class Spec:
    """A run about to start: its validated config (with its identity) and its data."""

    run: config.RunConfig
    split: datasets.Split
    job: Job  # the job of this run (one of several when the job trains several seeds)


class Phases:
    """Seconds per phase of a run, printed with SHALLOWNET_PROFILE=1 (``make bench`` reads it)."""

    def __init__(self):
        self.seconds, self.t0 = {}, time.perf_counter()
        self.last = self.t0

    def mark(self, phase):
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now

    def elapsed(self):
        return time.perf_counter() - self.t0


# ------------------------------------------------------------------------------ the steps


def prepare(cfg, job):
    """Validate the config, load the data, fix each run's identity: [Spec], one per seed the
    job trains (its ``seeds``, else its ``seed``). RunError(2) if bad."""
    try:
        c = config.validate(cfg)
        seeds = c.pop("seeds", None)
        c["dataset"] = datasets.resolved(c["dataset"])  # recorded so that any directory re-runs it
        # Loading may import scikit-learn: a KeyboardInterrupt inside a C extension's import
        # surfaces as ImportError ("initialization failed"), so a stop waits for the data.
        with STOP.deferred():
            split = datasets.load(c["dataset"])
        STOP.check()
        config.check_output(c, len(split.classes))
        config.check_memory(
            {**c, "seeds": seeds}, len(split.y_train), len(split.y_test), split.X_train.shape[1]
        )
    except (config.ConfigError, datasets.DataError) as err:
        raise RunError(2, "CONFIG_ERROR", f"config error: {err}") from None
    force = bool(c.pop("force", False))
    c.pop("stack_seeds", None)
    if seeds is None:
        return [_spec(c, split, force, job)]
    return [_spec({**c, "seed": seed}, split, force, job.for_seed(seed)) for seed in seeds]


def _spec(c, split, force, job):
    def key_of(chash):
        return identity.run_key(chash, split.fingerprint)

    return Spec(config.RunConfig.of(c, key_of, job.swept_values(), force), split, job)


def open_store(recorder, spec, job):
    """The experiment's id; the store's schema is created once, under a lock, never
    interrupted halfway. RunError(3) if it cannot be used."""
    tr = spec.run.tracking
    with STOP.deferred():
        try:
            opening = recorder.submit("open", tr, job.sweep.experiment_id if job.sweep else None)
            if tr.log_plots:
                contents.load_plotting()  # meanwhile
            exp_id = opening.result()
        except Exception as err:  # unreachable server, locked, broken or full store
            raise RunError(
                3, "TRACKING_ERROR", f"tracking store {tr.uri} unusable: {first_line(err)}"
            ) from None
    STOP.check()
    return exp_id


def run_tags(spec, job):
    """The run's tags but its owner and provenance (the recorder adds those)."""
    split, sweep = spec.split, job.sweep
    tags = {
        TAG_CONFIG_HASH: spec.run.config_hash,
        TAG_RUN_KEY: spec.run.run_key,
        TAG_DATA: split.fingerprint,
        TAG_CODE: identity.code_fingerprint(),
        "overrides": " ".join(job.overrides),
        "n_params": str(MLP.n_params_for(layer_sizes(spec.run, split))),
        "n_train": str(len(split.y_train)),
        "n_test": str(len(split.y_test)),
        "train_class_balance": _balance(split.y_train, len(split.classes)),
        "test_class_balance": _balance(split.y_test, len(split.classes)),
        "test_is_train": str(split.test_is_train).lower(),
        TAG_ROLE: "child" if job.in_sweep else "single",
    }
    if sweep:
        tags.update({TAG_SWEEP: sweep.sweep_id, TAG_SESSION: sweep.session})
    if os.environ.get("SHALLOWNET_REPRODUCES"):  # set by shallownet-reproduce
        tags.update(contents.reproduction_tags(os.environ["SHALLOWNET_REPRODUCES"]))
    return tags


def _balance(y, k):
    """The fraction of class 1 (two classes), else of every class: '0.3333,0.3333,0.3333'."""
    shares = np.bincount(y, minlength=k) / len(y)
    return f"{shares[1]:.4f}" if k == 2 else ",".join(f"{s:.4f}" for s in shares)


def dataset_input(spec):
    """What MLflow's Datasets column and lineage show of the run's data."""
    d, split = spec.run.dataset, spec.split
    source = (
        {"path": str(d["path"])}
        if d["name"] == "csv"
        else {"generator": f"shallownet.datasets.{d['name']}", "params": d}
    )
    profile = {
        "n_train": len(split.y_train),
        "n_test": len(split.y_test),
        "n_features": int(split.X_train.shape[1]),
        "test_is_train": split.test_is_train,
    }
    return {
        "name": spec.run.dataset_label,
        "digest": split.fingerprint[:16],
        "source_type": "local" if d["name"] == "csv" else "code",
        "source": json.dumps(source, sort_keys=True, default=str),
        "profile": json.dumps(profile, sort_keys=True),
    }


def ticket(spec, job, owner_pid=None):
    """What the recorder needs to claim the run of ``spec``, trained by process ``owner_pid``
    (default: this one)."""
    return Ticket(
        name=spec.run.name,
        tags=run_tags(spec, job),
        params=spec.run.params,
        config_hash=spec.run.config_hash,
        run_key=spec.run.run_key,
        data_fingerprint=spec.split.fingerprint,
        compete=job.in_sweep and not spec.run.force,
        owner_pid=owner_pid or os.getpid(),
        parent=job.sweep.parent_run_id if job.sweep else os.environ.get("SHALLOWNET_REPRODUCES"),
        dataset=dataset_input(spec),
    )


def claim(recorder, exp_id, spec, job, owner_pid=None):
    """Our RUNNING run (trained by process ``owner_pid``, default this one), or the run that
    makes it redundant (record.claims): a Claimed. RunError(3)."""
    with STOP.deferred():
        try:
            return recorder.claim(exp_id, ticket(spec, job, owner_pid))
        except Exception as err:
            raise RunError(
                3, "TRACKING_ERROR", f"cannot create a run in {spec.run.tracking.uri}: {first_line(err)}"
            ) from None


def train_live(recorder, claimed, job):
    """fit_stacked() of the claimed runs [(spec, run id)] with each run's pulse beating:
    heartbeat, live metrics, and for a single run a progress line. [(Fit, points sent)]."""
    specs = [spec for spec, _ in claimed]
    curves = [Curves(spec.run.epochs) for spec in specs]
    on_beat = None if job.in_sweep else _progress_line(time.perf_counter())
    pulses = [
        Pulse(recorder, run_id, cv, spec.run.tracking.max_points, on_beat=on_beat)
        for (spec, run_id), cv in zip(claimed, curves)
    ]
    try:
        STOP.check()  # a stop requested while the runs were being created: they end now, KILLED
        with contextlib.ExitStack() as beating:
            for pulse in pulses:
                beating.enter_context(pulse)
            fits = fit_stacked([spec.run for spec in specs], specs[0].split, curves)
    except KeyboardInterrupt:  # between fit's own checks: still a stopped training
        fits = [Fit(None, cv, "KILLED", f"interrupted at epoch {cv.n}", None, 0.0) for cv in curves]
    return [(f, pulse.sent) for f, pulse in zip(fits, pulses)]


def _progress_line(t0):
    def line(curves):
        n, planned = curves.n, curves.planned
        if not n:
            return
        spent = time.perf_counter() - t0
        eta = spent / n * (planned - n)
        emit(
            f"shallownet: epoch {n}/{planned} train_loss={curves.values['train_loss'][n - 1]:.4g}"
            f" ({spent:.0f}s, ETA {eta:.0f}s)",
            sys.stderr,
        )

    return line


def record_trained(recorder, exp_id, run_id, spec, fit, live_points, phases):
    """Record a run trained here: the recorder logs the model (FINISHED only) and the metrics
    while this process writes the files, then logs those. (status, reason): ``end_record``."""
    with tempfile.TemporaryDirectory() as tmp, STOP.deferred():
        fitted = compute.leave(fit, spec.run, spec.split, tmp, live_points)
        status = contents.store_status(fit.status, STOP.requested)

        def send():
            record = fitted.record
            if contents.scoring_is_loaded():
                record = contents.with_test_auc(record)
            logged = recorder.submit("record", exp_id, run_id, record)
            contents.write_files(
                fitted.record.files,
                spec.run,
                fit,
                spec.split,
                status,
                spec.run.tracking.log_plots,
                phases.mark,
            )
            logged.result()
            phases.mark("model_and_metrics")
            recorder.log_files(run_id, fitted.record.files)
            phases.mark("artifacts")

        return fitted, end_record(recorder, run_id, fitted, send)


def record_fitted(recorder, exp_id, run_id, fitted):
    """Record a run a compute worker trained (its files are written): (status, reason)."""

    def send():
        recorder.record(exp_id, run_id, fitted.record)
        recorder.log_files(run_id, fitted.record.files)

    return end_record(recorder, run_id, fitted, send)


def end_record(recorder, run_id, fitted, send):
    """``send()`` the record with signals deferred, then end the run: KILLED if a stop came at
    any point; returns (status, reason). A store that fails midway leaves the run FAILED with
    the reason, or (store gone) to the next run that meets it: RunError(3)."""
    with STOP.deferred():
        try:
            send()
            status, reason = final_status(fitted)
            recorder.end(run_id, status, contents.end_tags(fitted.diverged_at, reason))
        except Exception as err:
            why = _recording_error(err)
            try:
                recorder.end(run_id, "FAILED", {TAG_FAILURE: f"recording failed: {why}"})
            except Exception:
                pass  # the store is gone: the run's owner will be gone too, and it is closed then
            raise RunError(3, "TRACKING_ERROR", f"recording run {run_id} failed: {why}") from None
    return status, reason


def final_status(fitted):
    """(status, reason) of a run once recorded: a stop that came after its training ended
    makes it KILLED too, with the stop named."""
    status, reason = contents.store_status(fitted.status, STOP.requested), fitted.reason
    if status == "KILLED" and fitted.status != "KILLED":
        reason = (
            f"{reason} ({STOP.describe()})" if reason else f"interrupted ({STOP.describe()}) while recording"
        )
    return status, reason


def _recording_error(err):
    if (
        isinstance(err, OSError)
        and err.errno == 28
        or "disk is full" in str(err)
        or "No space left" in str(err)
    ):
        return f"disk full ({first_line(err)})"
    return first_line(err)


# ------------------------------------------------------------------------------ the story


def run(cfg, job, phases=None, recorder=None):
    """Train the job's configurations (one, or one per seed it stacks) and record each run
    through ``recorder`` (``record.remote.RemoteRecorder``; None: one in this process);
    returns their [Outcome] (RunError if they cannot start)."""
    phases = phases or Phases()
    specs = prepare(cfg, job)
    phases.mark("config_and_data")
    recorder = recorder or _local_recorder()
    exp_id = open_store(recorder, specs[0], job)
    phases.mark("open_store")  # waits for the recorder's import of mlflow, if still under way
    claims_ = [(spec, claim(recorder, exp_id, spec, spec.job)) for spec in specs]
    phases.mark("store_run_params")
    outcomes = {
        spec.run.seed: skipped(got.skipped_for, spec, phases.elapsed())
        for spec, got in claims_
        if got.run_id is None
    }
    todo = [(spec, got.run_id) for spec, got in claims_ if got.run_id is not None]
    for spec, got in claims_:
        if got.retrain and job.in_sweep:
            say(f"{spec.job.shown or spec.run.name}: training again: {got.retrain}")
    if todo:
        with STOP.deferred():  # a local recorder imports here: train_live takes a stop as KILLED
            if not contents.scoring_is_loaded():
                recorder.submit("load_scoring")  # the recorder imports it while this process trains
        trained = train_live(recorder, todo, job)
        phases.mark("train")
        for (spec, run_id), (fitted, live_points) in zip(todo, trained):
            outcomes[spec.run.seed] = _recorded(recorder, exp_id, run_id, spec, fitted, live_points, phases)
    return [outcomes[spec.run.seed] for spec in specs]


def _local_recorder():
    from .record.recorder import Recorder  # imports mlflow when it opens the store

    return Recorder()


def _recorded(recorder, exp_id, run_id, spec, fit, live_points, phases):
    """Record one run trained here and end it; its Outcome."""
    fitted, (status, reason) = record_trained(recorder, exp_id, run_id, spec, fit, live_points, phases)
    phases.mark("end_run")
    return outcome_of(fitted, status, reason, exp_id, run_id, spec.run.name, phases.elapsed())


def outcome_of(fitted, status, reason, exp_id, run_id, name, seconds):
    shown = "DIVERGED" if fitted.status == "DIVERGED" else status
    page = store.ui_page(exp_id, run_id)
    return Outcome(shown, reason or "", run_id, fitted.test_accuracy, seconds, name, page)


def skipped(other, spec, seconds):
    """The Outcome of a run not trained: ``other`` (a messages.Skip) stands for its config."""
    why = "an identical run FINISHED" if other.status == "FINISHED" else "an identical run is in progress"
    return Outcome(
        "SKIPPED", f"{why}: {other.run_id}", other.run_id, other.test_accuracy, seconds, spec.run.name
    )
