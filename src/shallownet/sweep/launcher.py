"""The sweep's launcher, on Hydra's public plugin API: every job composed and validated here,
trained by the sweep's compute workers (``sweep.pool``, ``shallownet.compute``: no MLflow, no
Hydra), recorded by the sweep's one recorder, which also holds the sweep's parent run
(``sweep.session``). Selected by conf/hydra/launcher/parallel.yaml; ``n_jobs`` workers.

A job's story (``Launch``): compose its config, validate it and load its data
(``train.prepare``), claim its runs for the worker about to train them (skipped when an
identical run exists), hand the worker the task, record what it returns, report the outcome
beside the job's Hydra output (the sweep's progress lines and summary read it). A worker
stopped or killed by a signal of its own costs its task only: its runs end KILLED (with what
they measured, when it could return it) and a fresh worker takes the jobs that follow. A stop
of the sweep itself (Ctrl-C, SIGTERM, SIGHUP) is passed on to the workers in flight, whose
runs are recorded KILLED with what they measured; no further job starts.
"""

import copy
import math
import signal
import tempfile
import time
from collections import deque
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf, open_dict, read_write

from .. import train
from ..compute import Task
from ..console import first_line, say
from ..job import Job, Outcome, RunError
from ..names import TAG_FAILURE
from ..procs import HEARTBEAT_SECONDS
from ..stop import STOP
from . import session as sweep_session
from . import pool as compute_pool


class PoolLauncher(Launcher):
    def __init__(self, n_jobs=2):
        self.n_jobs = max(int(n_jobs), 1)
        self.config = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config):
        self.hydra_context, self.config = hydra_context, config

    def launch(self, job_overrides, initial_job_idx):
        """The jobs, in the order given, as job numbers ``initial_job_idx``...: [JobReturn]."""
        session = sweep_session.current_session()
        jobs = [LaunchJob(self, session, initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        if jobs:
            with STOP.deferred(), tempfile.TemporaryDirectory(prefix="shallownet-") as scratch:
                Launch(session, min(self.n_jobs, len(jobs)), scratch).run(jobs)
        STOP.check()  # a stopped sweep launches nothing more: the entry point says so and closes it
        return [job.hydra_return() for job in jobs]

    def compose(self, num, overrides):
        """Job ``num``'s config, as Hydra's launchers compose it."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg):
            cfg.hydra.job.id = f"{cfg.hydra.job.name}_{num}"
            cfg.hydra.job.num = num
        return cfg


class LaunchJob:
    """One job of the batch: its overrides, config, runs and outcomes."""

    def __init__(self, launcher, session, num, overrides):
        self.launcher, self.num, self.overrides = launcher, num, overrides
        self.cfg = None
        # where it reports until its config says otherwise (Hydra's default subdir: its number)
        out_dir = Path(str(launcher.config.hydra.sweep.dir)) / str(num)
        self.job = Job(overrides=overrides, sweep=session.sweep, num=num, out_dir=out_dir, in_sweep=True)
        self.slices = [self.job]  # one per seed of a job that trains several
        self.outcomes = []
        self.t0 = time.time()

    def prepare(self):
        """[Spec], one per seed, in order: the job composed, validated, its data loaded.
        RunError(2)."""
        cfg = self.cfg = self.launcher.compose(self.num, self.overrides)
        task_cfg = copy.deepcopy(cfg)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        values = OmegaConf.to_container(task_cfg, resolve=True)
        self.job.out_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        if values.get("seeds"):
            self.slices = [self.job.for_seed(s) for s in values["seeds"]]
        return train.prepare(values, self.job)

    def report(self, job, outcome):
        job.report(outcome)
        self.outcomes.append((job, outcome))

    def fail(self, status, message, jobs=None):
        """Runs of this job that could not start (all of them by default): each ends with
        this outcome."""
        for job in jobs or self.slices:
            self.report(job, Outcome(status, message, seconds=time.time() - self.t0))

    def hydra_return(self):
        """What Hydra's sweepers read: the test accuracy (0 unless FINISHED), a list for a job
        that trained several seeds."""
        ordered = sorted(self.outcomes, key=lambda o: o[0].slot or 0)
        accs = [o.test_accuracy if o.status == "FINISHED" else 0.0 for _, o in ordered] or [0.0]
        ret = JobReturn(overrides=self.overrides, cfg=self.cfg, status=JobStatus.COMPLETED)
        ret.return_value = accs[0] if len(accs) == 1 else accs
        return ret


class Launch:
    """The batch of one ``launch``: the pool's loop of prepare, claim, train, record."""

    def __init__(self, session, size, scratch):
        self.session, self.size, self.scratch = session, size, scratch
        self.recorder = session.recorder
        self.in_flight = {}  # task key -> (LaunchJob, [(Spec, run id)], when it was handed out)
        self.unrecorded = deque()  # (LaunchJob, Spec, run id, Fitted or None, worker, seconds)
        self.pool = compute_pool.shared(size)
        self.last_beat = time.time()
        STOP.on_first_signal(self.pool.forward)

    def run(self, jobs):
        """Every job: the workers kept busy first, the runs they returned recorded one at a
        time in between (a worker never waits for the record of its last task)."""
        pending, parts = deque(jobs), deque()  # jobs to prepare; prepared runs to claim and train
        split = len(jobs) % self.size != 0  # else whole jobs keep every worker busy
        try:
            while not STOP.requested and (pending or parts or self.pool.busy() or self.unrecorded):
                self.dispatch(pending, parts, split)
                if self.unrecorded:
                    self.record(*self.unrecorded.popleft())
                self.returned(self.pool.collect(timeout=0 if self.unrecorded else 0.5))
                if pending or parts:
                    self.pool.refill(self.size)
                self.beat()
            self.returned(self.pool.drain())
            while self.unrecorded:
                self.record(*self.unrecorded.popleft())
        finally:
            if STOP.requested:
                compute_pool.close()  # the sweep ends: its workers too

    def dispatch(self, pending, parts, split):
        """A task for every idle worker, as long as jobs are left."""
        for worker in self.pool.idle():
            while not STOP.requested and worker.task is None and (parts or pending):
                if not parts:
                    parts.extend(self.prepare(pending.popleft(), split))
                else:
                    self.start(*parts.popleft(), worker)

    def prepare(self, lj, split):
        """Job ``lj`` composed, validated and its data loaded: [(LaunchJob, [Spec])], its runs
        in parts (``split``: its seeds shared among the workers), or [] if it cannot start."""
        try:
            specs = lj.prepare()
        except RunError as err:
            lj.fail(err.status, err.message)
            return []
        except Exception as err:  # a bug before the runs existed: this job fails, the others go on
            lj.fail("FAILED", f"crashed: {type(err).__name__}: {err}")
            return []
        size = math.ceil(len(specs) / self.size) if split else len(specs)
        return [(lj, specs[i : i + size]) for i in range(0, len(specs), size)]

    def start(self, lj, specs, worker):
        """Claim runs ``specs`` of job ``lj`` for ``worker`` and hand it those not skipped."""
        try:
            claimed = [
                (s, train.claim(self.recorder, self.session.exp_id, s, s.job, worker.pid)) for s in specs
            ]
        except RunError as err:
            return lj.fail(err.status, err.message, [s.job for s in specs])
        for spec, got in claimed:
            if got.retrain:
                say(f"{spec.job.shown or spec.run.name}: training again: {got.retrain}")
            if got.run_id is None:
                lj.report(spec.job, train.skipped(got.skipped_for, spec, time.time() - lj.t0))
        todo = [(spec, got.run_id) for spec, got in claimed if got.run_id is not None]
        if not todo:
            return
        key = (lj.num, todo[0][0].run.seed)
        folder = Path(self.scratch) / f"{lj.num}-{todo[0][0].run.seed}"
        task = Task(tuple(s.run for s, _ in todo), todo[0][0].split, str(folder))
        self.in_flight[key] = (lj, todo, time.time())
        if not self.pool.give(worker, key, task):
            self.returned([(key, None, worker)])

    def returned(self, done):
        """The runs of tasks that ended, queued for their record (``fitted`` None: the worker
        died holding the task)."""
        for key, fitted, worker in done:
            lj, todo, t0 = self.in_flight.pop(key)
            for i, (spec, run_id) in enumerate(todo):
                self.unrecorded.append((lj, spec, run_id, fitted and fitted[i], worker, time.time() - t0))

    def record(self, lj, spec, run_id, fitted, worker, seconds):
        """One run's record and end, and its outcome reported."""
        if fitted is None:
            return lj.report(spec.job, self.lost(spec, run_id, worker, seconds))
        try:
            status, reason = train.record_fitted(self.recorder, self.session.exp_id, run_id, fitted)
        except RunError as err:
            return lj.report(
                spec.job, Outcome(err.status, err.message, run_id, seconds=seconds, name=spec.run.name)
            )
        lj.report(
            spec.job,
            train.outcome_of(fitted, status, reason, self.session.exp_id, run_id, spec.run.name, seconds),
        )

    def lost(self, spec, run_id, worker, seconds):
        """A run whose worker died before returning it: KILLED, with the cause."""
        code = worker.proc.returncode
        cause = signal.Signals(-code).name if code is not None and code < 0 else f"exit code {code}"
        why = f"its compute worker (pid {worker.pid}) died ({cause}) before returning the run"
        try:
            self.recorder.end(run_id, "KILLED", {TAG_FAILURE: why})
        except Exception as err:
            why += f"; ending it failed: {first_line(err)}"
        return Outcome("KILLED", why, run_id, seconds=seconds, name=spec.run.name)

    def beat(self):
        """The heartbeat of the runs in flight, every few seconds."""
        if time.time() - self.last_beat < HEARTBEAT_SECONDS:
            return
        self.last_beat = time.time()
        runs = [run_id for _, todo, _ in self.in_flight.values() for _, run_id in todo]
        runs += [run_id for _, _, run_id, *_ in self.unrecorded]
        try:
            self.recorder.beat(runs)
        except Exception:
            pass  # a slow store: the next beat tries again
