"""hydra-submitit's SLURM launcher, but a job that SLURM ends before it could report (cancelled
while pending, killed after KillWait, its node lost) becomes a KILLED outcome of the sweep
instead of an exception that aborts the launching process with its other jobs' runs RUNNING.

A job that SLURM stops with a signal (scancel, the time limit's SIGUSR2 or SIGTERM) records
its own run KILLED with what it measured, within KillWait (shallownet.stop); this launcher
only speaks for the jobs that could not. Selected by conf/hydra/launcher/slurm.yaml.

A sweep whose jobs cannot be submitted at all (no sbatch, or an sbatch that cannot reach a
controller) stops in one line naming sbatch's own reason, exit 3, its parent run FAILED.

No Singleton state travels with a job: each one, in its own process, rebuilds what Hydra needs
as Hydra's example launcher does (``__call__``): ``Plugins.instance()`` registers the plugins'
configs, ``shallownet.sweep.schema.register`` shallownet's, and the job's config is composed by
the launcher's config loader and set as the HydraConfig before ``run_job``.
"""

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SlurmLauncher
from omegaconf import OmegaConf, open_dict


CLUSTER = "slurm"  # submitit's executor name; its SLURM parameters are prefixed with it


class SubmitError(RuntimeError):
    """sbatch refused the jobs or could not be run (its first line of stderr)."""


class SlurmLauncher(_SlurmLauncher):
    """hydra-submitit's launch() with submitit's public API, taken apart where it fails: the
    submission (one line instead of a traceback) and the collection of each job's result (a job
    that left none is reported KILLED instead of raising, which would lose the others)."""

    def launch(self, job_overrides, initial_job_idx):
        from shallownet.sweep.session import SweepAbort, abandon_open_sweep

        try:
            missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
            if missing:  # submitit would raise its own RuntimeError, in a traceback
                raise SubmitError(f"{' and '.join(missing)} not found on PATH (no SLURM client here)")
            jobs = self.submit(job_overrides, initial_job_idx)
        except SubmitError as err:
            reason = f"hydra/launcher=slurm cannot submit the sweep's jobs: {err}"
            abandon_open_sweep(reason)
            raise SweepAbort(3, reason) from None
        return [self.result(job) for job in jobs]

    def submit(self, job_overrides, initial_job_idx):
        """The sweep's jobs as one SLURM array (submitit Jobs); SubmitError if sbatch fails.
        submitit prints sbatch's stderr, then raises it again inside a traceback."""
        from submitit.core.utils import FailedJobError

        executor, params = self.executor(), self.job_params(job_overrides, initial_job_idx)
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                return executor.map_array(self, *zip(*params))
            except FailedJobError as err:
                lines = [line for line in str(err).splitlines() if line.strip()]
                raise SubmitError(lines[-1] if lines else "sbatch failed") from None
            except OSError as err:  # no sbatch at all
                raise SubmitError(f"cannot run sbatch ({err.strerror or err})") from None

    def executor(self):
        """submitit's SLURM executor with the launcher's parameters, as hydra-submitit makes it."""
        import submitit

        params, init_keys = self.params, {"max_num_timeout", "submitit_folder"}
        init = {"folder": params["submitit_folder"]}
        if "max_num_timeout" in params:
            init[f"{CLUSTER}_max_num_timeout"] = params["max_num_timeout"]
        executor = submitit.AutoExecutor(cluster=CLUSTER, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in base else f"{CLUSTER}_{k}": v for k, v in params.items() if k not in init_keys}
        )
        return executor

    def __call__(self, sweep_overrides, job_dir_key, job_num, job_id):
        """One job, in the SLURM job's process: its JobReturn."""
        import submitit
        from hydra.core.plugins import Plugins

        from shallownet.sweep.schema import register

        setup_globals()
        Plugins.instance()  # this process's registry: the plugins' configs in its ConfigStore
        register()  # shallownet's schema in this process's ConfigStore
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(sweep_overrides))
        with open_dict(sweep_config.hydra.job) as job:
            job.id = submitit.JobEnvironment().job_id
            job.num = job_num
        HydraConfig.instance().set_config(sweep_config)
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=sweep_config,
            job_dir_key=job_dir_key,
            job_subdir_key="hydra.sweep.subdir",
        )

    def job_params(self, job_overrides, initial_job_idx):
        """[(overrides, sweep dir key, job index, job id)]: the arguments of this launcher's
        __call__ in each job, as hydra-submitit passes them (without its singletons)."""
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        return [
            (list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}")
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx)
        ]

    def result(self, job):
        """The job's JobReturn, or (SLURM ended it before it reported) a KILLED outcome."""
        from submitit.core.utils import UncompletedJobError

        try:
            return job.results()[0]
        except UncompletedJobError:
            return self.lost(job)

    def lost(self, job):
        """Report a job that never reported: KILLED, with SLURM's word for how it ended."""
        from shallownet import job as jobs
        from shallownet.sweep.session import current_session

        overrides, _, num, *_ = job.submission().args
        session = current_session()
        sweep = jobs.Sweep(**json.loads(session.job_env[jobs.ENV])) if session else None
        out_dir = Path(str(self.config.hydra.sweep.dir)) / str(num)
        jobs.Job(overrides=list(overrides), sweep=sweep, num=num, out_dir=out_dir, in_sweep=True).report(
            jobs.Outcome("KILLED", f"SLURM ended job {job.job_id} before it reported ({job.state})")
        )
        ret = JobReturn()
        ret.status, ret.return_value = JobStatus.COMPLETED, 0.0
        return ret
