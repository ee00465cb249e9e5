"""Hydra's task function: the composed config of one job handed to ``shallownet.train.run``,
and how the job ends (a single run's exit code, a sweep job's outcome files)."""

import json
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from .. import config, train
from ..record import remote, store
from ..console import emit, say
from ..job import Job, Outcome, RunError, Sweep
from ..names import EXIT_CODES
from ..stop import STOP


def current_job():
    """The job Hydra is running in this process."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return Job(
        overrides=list(hc.overrides.task),
        sweep=Sweep.from_env() if multirun else None,
        num=hc.job.num if multirun else None,
        out_dir=Path(hc.runtime.output_dir),
        in_sweep=multirun,
    )


def run_job(cfg):
    """Hydra's task function: a single run, or one job of a sweep (which never raises: the
    other jobs go on, and its outcome tells the sweep how it ended)."""
    STOP.install()  # a submitit job's process did not come through main()
    STOP.release()
    job, phases = current_job(), train.Phases()
    c = OmegaConf.to_container(cfg, resolve=True)  # plain values from here on
    slices = [job.for_seed(seed) for seed in c["seeds"]] if c.get("seeds") else [job]
    job.started(runs=len(slices))
    recorder = None if job.in_sweep else remote.take() or remote.RemoteRecorder.start()
    try:
        outcomes = train.run(c, job, phases, recorder)
    except RunError as err:
        if not job.in_sweep:  # SystemExit: Hydra reports an Exception as a crash, with code 1
            say(err.message)
            raise SystemExit(err.code) from None
        outcomes = [Outcome(err.status, err.message, seconds=phases.elapsed())] * len(slices)
    except KeyboardInterrupt:
        if not job.in_sweep:
            raise
        why = f"interrupted ({STOP.name}) before the run was created"
        outcomes = [Outcome("KILLED", why, seconds=phases.elapsed())] * len(slices)
    except Exception as err:  # a bug before the run existed: this job fails, the others go on
        if not job.in_sweep:
            raise
        why = f"crashed: {type(err).__name__}: {err}"
        outcomes = [Outcome("FAILED", why, seconds=phases.elapsed())] * len(slices)
    finally:
        if recorder is not None:
            recorder.close()
        job.tidy()
    _profile(phases)
    if job.in_sweep:
        return _end_sweep_job(slices, outcomes)
    return _end_single(outcomes[0], c["tracking"]["uri"])


def _profile(phases):
    if os.environ.get("SHALLOWNET_PROFILE"):
        emit(
            "shallownet-profile: " + json.dumps({k: round(v, 4) for k, v in phases.seconds.items()}),
            sys.stderr,
        )


def _end_sweep_job(slices, outcomes):
    """Report each run's outcome; Hydra's return value is the test accuracy (0 unless
    FINISHED), a list of them for a job that trained several seeds."""
    for job, outcome in zip(slices, outcomes):
        job.report(outcome)
    accs = [o.test_accuracy if o.status == "FINISHED" else 0.0 for o in outcomes]
    return accs[0] if len(accs) == 1 else accs


def _end_single(outcome, uri):
    if outcome.status == "FINISHED":
        emit(
            f"shallownet: run {outcome.name} ({outcome.run_id}) finished in {outcome.seconds:.1f}s:"
            f" test_acc={outcome.test_accuracy:.3f}"
        )
        emit("\n".join(store.ui_lines(uri, outcome.page)))
        return outcome.test_accuracy
    if outcome.run_id:
        emit(store.ui_lines(uri)[0], sys.stderr)
    say(f"run {outcome.name} ({outcome.run_id}) {outcome.status}: {outcome.message}")
    raise SystemExit(STOP.exit_code if outcome.status == "KILLED" else EXIT_CODES[outcome.status])


@hydra.main(version_base="1.3", config_path=config.CONF_PATH, config_name="train")
def hydra_main(cfg):
    return run_job(cfg)
