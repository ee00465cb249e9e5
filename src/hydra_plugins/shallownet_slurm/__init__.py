"""hydra-submitit's SLURM launcher, but a job that SLURM ends before it could report (cancelled
while pending, killed after KillWait, its node lost) becomes a KILLED outcome of the sweep
instead of an exception that aborts the launching process with its other jobs' runs RUNNING.

A job that SLURM stops with a signal (scancel, the time limit's SIGUSR2 or SIGTERM) records
its own run KILLED with what it measured, within KillWait (shallownet.stop); this launcher
only speaks for the jobs that could not. Selected by conf/hydra/launcher/slurm.yaml.

A sweep whose jobs cannot be submitted at all (no sbatch, or an sbatch that cannot reach a
controller) stops in one line naming sbatch's own reason, exit 3, its parent run FAILED.
"""

import contextlib
import io
import json
import shutil
from pathlib import Path
from unittest import mock

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SlurmLauncher


class SubmitError(RuntimeError):
    """sbatch refused the jobs or could not be run (its first line of stderr)."""


def _submitting(submit):
    """submitit's submission, its failure one line: submitit prints sbatch's stderr, then
    raises it again inside a traceback."""

    def submit_command(executor, command):
        from submitit.core.utils import FailedJobError

        with contextlib.redirect_stderr(io.StringIO()):
            try:
                return submit(executor, command)
            except FailedJobError as err:
                lines = [line for line in str(err).splitlines() if line.strip()]
                raise SubmitError(lines[-1] if lines else "sbatch failed") from None
            except OSError as err:  # no sbatch at all
                raise SubmitError(f"cannot run sbatch ({err.strerror or err})") from None

    return submit_command


class SlurmLauncher(_SlurmLauncher):
    def launch(self, job_overrides, initial_job_idx):
        from shallownet.sweep import SweepAbort, abandon_open_sweep

        try:
            missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
            if missing:  # submitit would raise its own RuntimeError, in a traceback
                raise SubmitError(f"{' and '.join(missing)} not found on PATH (no SLURM client here)")
            return self._launch(job_overrides, initial_job_idx)
        except SubmitError as err:
            reason = f"hydra/launcher=slurm cannot submit the sweep's jobs: {err}"
            abandon_open_sweep(reason)
            raise SweepAbort(3, reason) from None

    def _launch(self, job_overrides, initial_job_idx):
        import submitit
        from submitit.core.utils import UncompletedJobError

        collect, launcher = submitit.core.core.Job.results, self
        submit = submitit.SlurmExecutor._submit_command

        def results(job):
            try:
                return collect(job)
            except UncompletedJobError:
                return [launcher.lost(job)]

        # The parent's launch() collects every job with job.results(); the first job that
        # left no result would raise there and lose the others.
        with (
            mock.patch.object(submitit.core.core.Job, "results", results),
            mock.patch.object(submitit.SlurmExecutor, "_submit_command", _submitting(submit)),
        ):
            return super().launch(job_overrides, initial_job_idx)

    def lost(self, job):
        """Report a job that never reported: KILLED, with SLURM's word for how it ended."""
        from shallownet import job as jobs
        from shallownet.sweep import current_session

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
