"""A joblib launcher on Hydra's public plugin API, where a worker stopped by a signal of its own
costs its job only.

Each job runs in a loky worker as Hydra's example launcher plugin runs one (``execute_job``):
the job's config composed by the launcher's config loader, set as the HydraConfig, then Hydra's
``run_job``. No Singleton state travels with a job: a worker keeps its own plugin registry and
ConfigStore across its jobs. The ConfigStore holds Hydra's own configs once hydra is imported,
the plugins' once the registry has discovered them (``Plugins.instance()``, a worker's first
job), and shallownet's schema once ``shallownet.sweep.schema.register`` has run (each job).

A worker that receives SIGINT, SIGTERM or SIGHUP by itself (an admin's ``kill``, a watchdog)
ends its job's run KILLED with what it measured, and starts no job after it: those return
``shallownet.job.NOT_STARTED``. The worker cannot leave loky's pool by exiting (loky takes a
worker's death for a broken pool and SIGKILLs the others, their records half written), so once
the batch is through, ``launch`` shuts the pool down (its workers exit cleanly) and gives the
jobs that did not start to fresh workers, under their own job numbers. A stop of the sweep
itself (the launcher's own signal) ends the batch instead. Selected by
conf/hydra/launcher/parallel.yaml.
"""

import logging
import signal
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as _JoblibLauncher
from omegaconf import open_dict

from shallownet.job import NOT_STARTED
from shallownet.stop import SIGNALS, STOP

log = logging.getLogger(__name__)


def worker_start():
    """Run by loky in each worker as it starts, before its first job: the sweep's launching
    process decides when jobs stop (it forwards Ctrl-C, SIGTERM and SIGHUP to the jobs in
    flight), so a signal meant for the whole process group must not kill a worker that holds
    no job yet (its death would break the pool); each job takes the signals again
    (SweepCallback.on_job_start). And the worker dies with the launcher, even one killed -9."""
    from shallownet import procs

    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    procs.die_with_parent()


def worker_configs():
    """This process's ConfigStore as a job's composition needs it: Hydra's globals, the plugins'
    configs (its own plugin registry) and shallownet's schema."""
    from hydra.core.plugins import Plugins

    from shallownet.sweep.schema import register

    setup_globals()
    Plugins.instance()
    register()


def execute_job(idx, overrides, hydra_context, config, task_function):
    """Job ``idx`` with these overrides, in this process, as Hydra's example launcher runs one.
    Returns its JobReturn."""
    worker_configs()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def start_resource_trackers():
    """Start multiprocessing's and loky's resource trackers (helper processes of the sweep's
    group) with SIGHUP blocked, a mask they keep: they ignore SIGINT and SIGTERM themselves, but
    a closed terminal's SIGHUP killed them, and their relaunch printed tracebacks. A SIGHUP
    meanwhile waits in this process and is handled once they are started."""
    import multiprocessing.resource_tracker

    from joblib.externals.loky.backend import resource_tracker

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        multiprocessing.resource_tracker.ensure_running()
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def not_started(ret):
    return ret.status == JobStatus.COMPLETED and ret.return_value == NOT_STARTED


def fresh_workers():
    """Shut the pool down once its jobs are through: its workers exit cleanly, and the next
    batch starts new ones."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor(reuse=True).shutdown(wait=True)


def joblib_options(options):
    """Joblib.Parallel's arguments from the launcher's config: Hydra's loky backend (its
    threading backend cannot run Hydra jobs), numbers given as strings made numbers, as the
    stock launcher does. ``run`` has loky start its workers with ``worker_start``."""
    options = dict(options, backend="loky")
    for key in ("pre_dispatch", "batch_size", "max_nbytes"):
        if options.get(key):
            try:
                options[key] = int(options[key])
            except ValueError:  # "2*n_jobs", "auto", "1M": joblib reads those itself
                pass
    return options


class JoblibLauncher(_JoblibLauncher):
    """The stock joblib launcher's config and set-up; its launch is this module's."""

    def launch(self, job_overrides, initial_job_idx):
        """The batch's jobs, then those a stopped worker did not start, in fresh workers, until
        all ran or the sweep itself is stopping. [JobReturn], in the batch's order."""
        nums = range(initial_job_idx, initial_job_idx + len(job_overrides))
        returns = dict(zip(nums, self.run(job_overrides, nums)))
        while not STOP.requested and (again := [n for n, r in returns.items() if not_started(r)]):
            fresh_workers()
            batch = [job_overrides[n - initial_job_idx] for n in again]
            returns.update(zip(again, self.run(batch, again)))
        return [returns[n] for n in nums]

    def run(self, job_overrides, nums):
        """The jobs ``job_overrides``, the i-th as job number ``nums[i]``, in loky's workers."""
        from joblib import Parallel, delayed, parallel_config

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        options = joblib_options(self.joblib)
        start_resource_trackers()  # before loky starts them, its first workers
        shown = ",".join(f"{k}={v}" for k, v in options.items())
        log.info(f"Joblib.Parallel({shown}) is launching {len(job_overrides)} jobs")
        log.info(f"Launching jobs, sweep output dir : {sweep_dir}")
        for num, overrides in zip(nums, job_overrides):
            log.info(f"\t#{num} : {' '.join(filter_overrides(overrides))}")
        # the loky backend with an initializer: joblib's parallel_config passes it to loky
        with parallel_config(backend=options.pop("backend"), initializer=worker_start):
            return Parallel(**options)(
                delayed(execute_job)(
                    num, list(overrides), self.hydra_context, self.config, self.task_function
                )
                for num, overrides in zip(nums, job_overrides)
            )
