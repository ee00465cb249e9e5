"""Hydra's joblib launcher, but a pool worker keeps the plugins it discovered.

Before each job, Hydra's joblib ``execute_job`` restores the launching process's singletons
(``Singleton.set_state``), which leaves out the plugin registry and rebuilds it: every
``hydra_plugins`` package is walked and imported again, 26 ms of each job here, for a registry
that cannot change within a sweep. ``execute_job`` below hands the worker's registry back into
the state it restores, so only a worker's first job discovers the plugins. Everything else is
Hydra's. Selected by conf/hydra/launcher/parallel.yaml.
"""

from unittest import mock

from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as _JoblibLauncher

_HYDRA_EXECUTE_JOB = _core.execute_job


def execute_job(idx, overrides, hydra_context, config, task_function, singleton_state):
    """Hydra's ``execute_job`` with this process's plugin registry kept (if it has one)."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    known = Singleton._instances.get(Plugins)
    if known is not None:
        instances = {**singleton_state["instances"], Plugins: known}
        singleton_state = {**singleton_state, "instances": instances}
    return _HYDRA_EXECUTE_JOB(idx, overrides, hydra_context, config, task_function, singleton_state)


class JoblibLauncher(_JoblibLauncher):
    def launch(self, job_overrides, initial_job_idx):
        # _core.launch hands joblib the module's execute_job by name: ours, for this launch
        with mock.patch.object(_core, "execute_job", execute_job):
            return super().launch(job_overrides, initial_job_idx)
