"""A compute worker: a sweep's process that fits jobs and writes what their runs leave (weights,
config, plots), importing NumPy, the model, the data and matplotlib, never MLflow or Hydra. The
sweep's launcher hands it one ``Task`` at a time and records the ``Fitted`` runs it returns
(``shallownet.sweep.launcher``); ``procs.start_child`` starts its process.

A stop signal (the sweep's, forwarded, or one sent to this worker alone) ends the training of
its task KILLED with the epochs done, names the signal in the runs' reasons, returns them, and
the worker takes no further task. Between tasks a signal ends it at once.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from .fit import Curves, fit_stacked
from .record import contents
from .record.messages import RunRecord
from .stop import SIGNALS, STOP


READY = "ready"  # what a worker says once started: its stop handlers are in place
STARTED = "started"  # what it answers first to a task: it is training it


@dataclass(frozen=True)
class Task:
    """The runs of one job: RunConfigs alike but for their seed, trained stacked on ``split``;
    each run's files go to ``folder``/seed<k>."""

    runs: tuple
    split: object  # datasets.Split
    folder: str


@dataclass(frozen=True)
class Fitted:
    """How one run's training ended, and its record (its files are under ``record.files``)."""

    status: str  # FINISHED | DIVERGED | FAILED | KILLED
    reason: str | None
    diverged_at: int | None
    test_accuracy: float | None
    record: RunRecord


def fit_task(task):
    """[Fitted], one per run of ``task``."""
    curves = [Curves(run.epochs) for run in task.runs]
    fits = fit_stacked(list(task.runs), task.split, curves)  # a stop ends it KILLED
    with STOP.deferred():  # what the runs measured is kept whole
        return [
            leave(fit, run, task.split, Path(task.folder) / f"seed{run.seed}", log_files=True)
            for fit, run in zip(fits, task.runs)
        ]


def leave(fit, run, split, folder, live_points=0, log_files=False):
    """A Fitted of ``fit``: its record under ``folder``, and its files there too if
    ``log_files`` (else the caller writes them, ``contents.write_files``)."""
    status = contents.store_status(fit.status, STOP.requested)
    record = contents.record_of(fit, run, split, status, folder, live_points)
    if log_files:
        contents.write_files(record.files, run, fit, split, status, run.tracking.log_plots)
    n = fit.curves.n
    acc = float(fit.curves.values["test_accuracy"][n - 1]) if n else None
    return Fitted(fit.status, signed(fit), fit.diverged_at, acc, record)


def signed(fit):
    """A stopped training's reason with the signal that stopped it: 'interrupted at epoch 812
    (SIGTERM)'."""
    if fit.status == "KILLED" and STOP.requested:
        return f"{fit.reason} ({STOP.describe()})"
    return fit.reason


# ------------------------------------------------------------------------------ its process


def main(argv=None):
    from .procs import child_begins

    conn = child_begins(argv or sys.argv)
    contents.load_plotting()

    STOP.install()
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # a stop that came meanwhile ends us here
        with STOP.deferred():
            conn.send(READY)
        while not STOP.requested:
            task = conn.recv()
            with STOP.deferred():
                conn.send(STARTED)
            fitted = fit_task(task)
            with STOP.deferred():
                conn.send((fitted, STOP.requested))  # True: stopped, this worker leaves
    except (KeyboardInterrupt, EOFError, OSError):
        pass  # stopped, or the launcher closed the pipe: nothing of ours is left to do
