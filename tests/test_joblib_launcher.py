"""shallownet's joblib launcher: a pool worker keeps its plugin registry across jobs.

Hydra's ``Singleton.set_state``, run before every job, rebuilds the registry (every
``hydra_plugins`` package walked again); ``hydra_plugins.shallownet_joblib.execute_job`` hands
the worker's own registry back into the state. The sweeps of test_sweep.py run through it.
"""

from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton

from hydra_plugins import shallownet_joblib


def restoring(calls):
    """Stands in for Hydra's execute_job: restores the singletons as it does, notes the registry."""

    def execute_job(idx, overrides, hydra_context, config, task_function, singleton_state):
        Singleton.set_state(singleton_state)
        calls.append(Plugins.instance())
        return idx

    return execute_job


def test_a_worker_discovers_the_plugins_once(monkeypatch):
    registry = Plugins.instance()
    state = Singleton.get_state()  # what the launching process sends: no registry in it
    assert Plugins not in state["instances"]
    calls = []
    monkeypatch.setattr(shallownet_joblib, "_HYDRA_EXECUTE_JOB", restoring(calls))
    assert [shallownet_joblib.execute_job(i, [], None, None, None, state) for i in range(3)] == [0, 1, 2]
    assert len(calls) == 3 and all(p is registry for p in calls)
    assert Plugins not in state["instances"]  # the state itself is left as it came


def test_hydras_own_restore_rebuilds_the_registry():
    """The cost this launcher saves: Hydra's set_state alone makes a new registry per job."""
    registry = Plugins.instance()
    Singleton.set_state(Singleton.get_state())
    assert Plugins.instance() is not registry


def test_the_parallel_launcher_is_this_one():
    from pathlib import Path

    import yaml

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
    assert target == "hydra_plugins.shallownet_joblib.JoblibLauncher" and target.endswith("JoblibLauncher")
