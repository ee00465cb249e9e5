"""shallownet's joblib launcher runs each job as Hydra's example launcher does, on public APIs:
no Singleton state is shipped to a worker, which keeps its own plugin registry and ConfigStore.
The sweeps of test_sweep.py and test_faults*.py run through it."""

import pickle
from pathlib import Path

import yaml

from hydra_plugins import shallownet_joblib

# The task function as a sweep hands it to joblib: a reference to shallownet's task function
# (built by hand, so that this process does not import it)
TASK = b"cshallownet.sweep.task\nhydra_main\n."


def config_store_in_a_worker(task):
    """Run in a loky worker: which configs its ConfigStore holds before the task is unpickled,
    and after the steps a job takes before it composes (shallownet_joblib.worker_configs)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    before = "train_schema.yaml" in store.list("")
    fn = pickle.loads(task)
    shallownet_joblib.worker_configs()
    return before, "train_schema.yaml" in store.list(""), sorted(store.list("hydra/launcher")), fn.__module__


def test_a_fresh_worker_has_shallownets_and_the_plugins_configs_before_its_job_composes():
    from joblib import Parallel, delayed

    shallownet_joblib.fresh_workers()  # a new pool: nothing imported in its workers yet
    try:
        results = Parallel(n_jobs=2, backend="loky")(
            delayed(config_store_in_a_worker)(TASK) for _ in range(2)
        )
    finally:
        shallownet_joblib.fresh_workers()
    for before, after, launchers, module in results:
        assert (before, after, module) == (False, True, "shallownet.sweep.task")
        assert {"joblib.yaml", "submitit_local.yaml", "submitit_slurm.yaml"} <= set(launchers)


def test_joblib_options_are_the_stock_launchers():
    options = shallownet_joblib.joblib_options(
        {"n_jobs": 2, "backend": None, "pre_dispatch": "2*n_jobs", "batch_size": "4", "max_nbytes": None}
    )
    assert options["backend"] == "loky" and options["n_jobs"] == 2
    assert (
        options["pre_dispatch"] == "2*n_jobs" and options["batch_size"] == 4 and options["max_nbytes"] is None
    )


def test_the_parallel_launcher_is_this_one():
    conf = (
        Path(__file__).resolve().parents[1]
        / "src"
        / "shallownet"
        / "conf"
        / "hydra"
        / "launcher"
        / "parallel.yaml"
    )
    target = yaml.safe_load(conf.read_text())["_target_"]
    assert target == "hydra_plugins.shallownet_joblib.JoblibLauncher"
