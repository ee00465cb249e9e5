"""Imported once by a sweep's fork server: what every job needs, loaded before workers fork.

A joblib sweep runs its jobs in loky worker processes. Started loky's default way, each worker
is a fresh interpreter that imports MLflow, scikit-learn, pandas and matplotlib again (about
3 s of CPU here) before its first job can start. Instead, the sweep callback
(``shallownet.sweep.start_workers``, called by the preflight as soon as it has composed the
sweep's config) starts one fork server that imports this module while the launching process
checks the jobs and opens the store and the parent run, and loky forks every worker from that
server with all of this already in memory.

Nothing here opens a store, a file or a thread that a forked worker would inherit.
"""

import gc
import os
import signal

from . import procs
from .stop import SIGNALS

# The fork server: the sweep's launching process decides when jobs stop (it forwards Ctrl-C,
# SIGTERM and SIGHUP to the jobs in flight and waits for their records), so a signal meant for
# the whole process group must not kill this server, whose death would kill every worker at
# once. It dies with the launcher instead, even one killed with -9, and its workers die with it.
for sig in SIGNALS:
    signal.signal(sig, signal.SIG_IGN)
procs.die_with_parent()
os.register_at_fork(after_in_child=procs.die_with_parent)

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import mlflow  # noqa: E402,F401
import mlflow.pyfunc  # noqa: E402,F401
import pandas  # noqa: E402,F401
import pyarrow.parquet  # noqa: E402,F401
import sklearn.datasets  # noqa: E402,F401
import sklearn.metrics  # noqa: E402,F401
import threadpoolctl  # noqa: E402,F401
from hydra_plugins.hydra_joblib_launcher import _core  # noqa: E402,F401 - runs each job
from hydra_plugins.shallownet_joblib import execute_job  # noqa: E402,F401 - around it
from matplotlib.backends import backend_agg  # noqa: E402,F401
from mlflow.models import infer_signature  # noqa: E402,F401
from mlflow.store.tracking import sqlalchemy_store  # noqa: E402,F401 - opens the store

from . import claims, fit, plots, record, tracking, train  # noqa: E402,F401

# Provenance recorded with every run, the same for all of a sweep's jobs: computed once here
# (a git call and a scan of the installed packages) instead of once per worker.
tracking.environment_tags()
tracking.pip_freeze()

# shallownet.train takes the stop signals when imported (for the processes that record runs):
# give them back to SIG_IGN here. Workers take them again at each job (SweepCallback.on_job_start).
for sig in SIGNALS:
    signal.signal(sig, signal.SIG_IGN)

# Keep the collector off everything loaded so far, in this server and in every worker forked
# from it (the Python docs' advice for a process that forks workers). Without it, the
# gc.collect() that loky runs between jobs walked these ~390,000 objects for 0.19 s each time.
gc.freeze()
