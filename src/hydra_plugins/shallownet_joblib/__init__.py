"""Hydra's joblib launcher, but a pool worker keeps the plugins it discovered, and a worker
stopped by a signal of its own costs its job only.

Before each job, Hydra's joblib ``execute_job`` restores the launching process's singletons
(``Singleton.set_state``), which leaves out the plugin registry and rebuilds it: every
``hydra_plugins`` package is walked and imported again, 26 ms of each job here, for a registry
that cannot change within a sweep. ``execute_job`` below hands the worker's registry back into
the state it restores, so only a worker's first job discovers the plugins.

A worker that receives SIGINT, SIGTERM or SIGHUP by itself (an admin's ``kill``, a watchdog)
ends its job's run KILLED with what it measured, and starts no job after it: those return
``shallownet.job.NOT_STARTED``. The worker cannot leave loky's pool by exiting (loky takes a
worker's death for a broken pool and SIGKILLs the others, their records half written), so once
the batch is through, ``launch`` shuts the pool down (its workers exit cleanly) and gives the
jobs that did not start to fresh workers, under their own job numbers. A stop of the sweep
itself (the launcher's own signal) ends the batch instead. Everything else is Hydra's.
Selected by conf/hydra/launcher/parallel.yaml.
"""

from dataclasses import dataclass
from unittest import mock

from hydra.core.utils import JobStatus
from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as _JoblibLauncher
from shallownet.job import NOT_STARTED
from shallownet.stop import STOP

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


@dataclass(frozen=True)
class Numbered:
    """``execute_job`` for a batch of given job numbers (Hydra numbers a batch from its first
    job on): the i-th job of the batch runs as job ``nums[i]`` (its output dir, its record)."""

    nums: tuple

    def __call__(self, idx, *args):
        return execute_job(self.nums[idx], *args)


def not_started(ret):
    return ret.status == JobStatus.COMPLETED and ret.return_value == NOT_STARTED


def fresh_workers():
    """Shut the pool down once its jobs are through: its workers exit cleanly, and the next
    batch starts new ones (forked from the same preloaded server)."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor(reuse=True).shutdown(wait=True)


class JoblibLauncher(_JoblibLauncher):
    def launch(self, job_overrides, initial_job_idx):
        """Hydra's launch, then the jobs a stopped worker did not start, in fresh workers,
        until all ran or the sweep itself is stopping. [JobReturn], in the batch's order."""
        nums = range(initial_job_idx, initial_job_idx + len(job_overrides))
        returns = dict(zip(nums, self._launch(job_overrides, nums)))
        while not STOP.requested and (again := [n for n, r in returns.items() if not_started(r)]):
            fresh_workers()
            batch = [job_overrides[n - initial_job_idx] for n in again]
            returns.update(zip(again, self._launch(batch, again)))
        return [returns[n] for n in nums]

    def _launch(self, job_overrides, nums):
        # _core.launch hands joblib the module's execute_job by name: ours, for this launch
        with mock.patch.object(_core, "execute_job", Numbered(tuple(nums))):
            return super().launch(job_overrides, 0)
