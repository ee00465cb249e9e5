"""Imported once by a sweep's fork server: what every job needs, loaded before workers fork.

A joblib sweep runs its jobs in loky worker processes. Started loky's default way, each worker
is a fresh interpreter that imports MLflow, scikit-learn, pandas and matplotlib again (about
3 s of CPU here) before its first job can start. Instead, the sweep callback
(``experiments.sweep.preload_workers``) starts one fork server that imports this module while
the launching process opens the store and the parent run, and loky forks every worker from that
server with all of this already in memory.

Nothing here opens a store, a file or a thread that a forked worker would inherit.
"""

import gc

import matplotlib

matplotlib.use("Agg")

import mlflow  # noqa: E402,F401
import mlflow.pyfunc  # noqa: E402,F401
import pandas  # noqa: E402,F401
import pyarrow.parquet  # noqa: E402,F401
import sklearn.datasets  # noqa: E402,F401
import sklearn.metrics  # noqa: E402,F401
import threadpoolctl  # noqa: E402,F401
from hydra_plugins.hydra_joblib_launcher import _core  # noqa: E402,F401 - runs each job
from matplotlib.backends import backend_agg  # noqa: E402,F401
from mlflow.models import infer_signature  # noqa: E402,F401
from mlflow.store.tracking import sqlalchemy_store  # noqa: E402,F401 - opens the store

from . import plots, tracking, train  # noqa: E402,F401

# Provenance recorded with every run, the same for all of a sweep's jobs: computed once here
# (a git call and a scan of the installed packages) instead of once per worker.
tracking.environment_tags()
tracking.pip_freeze()

# Keep the collector off everything loaded so far, in this server and in every worker forked
# from it (the Python docs' advice for a process that forks workers). Without it, the
# gc.collect() that loky runs between jobs walked these ~390,000 objects for 0.19 s each time.
gc.freeze()
