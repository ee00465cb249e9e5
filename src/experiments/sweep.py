"""Hydra callback that turns a multirun into one MLflow parent run with child runs.

Before any job starts (in the launching process) it creates the store and the experiment
once and opens the parent run; Hydra hands this callback to every job, and its
``on_job_start`` gives the job those ids as environment variables (in joblib, submitit or
in-process jobs alike). Every job leaves an ``outcome.json`` beside its Hydra output; the
parent's counts and the summary table are read from those. Hydra skips ``on_multirun_end``
when a job raises, so the parent is also closed at exit.

With the joblib launcher and several jobs at once, loky forks its workers from a fork server
that has imported ``experiments.preload`` (started first, so that its imports overlap with
the store and parent run being opened here) instead of starting each from a bare interpreter.

A sweep's id is a hash of its definition (study + overrides): running the same sweep
again reopens the same parent, and the jobs whose config already has a FINISHED run are
skipped; ``+force=true`` reruns everything under a new parent.
"""

import atexit
import hashlib
import json
import math
import os
import time
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf


def sweep_overrides(config):
    """The sweep's overrides: the sweeper's params, then the command line (which wins)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    merged = {str(k): str(v) for k, v in params.items()}
    for o in config.hydra.overrides.task:
        key, _, value = o.partition("=")
        merged[key] = value
    return merged


def count_jobs(config):
    """Number of jobs the sweep will launch (grid product; n_trials for Optuna)."""
    n_trials = OmegaConf.select(config, "hydra.sweeper.n_trials")
    if n_trials is not None:
        return int(n_trials)
    parser = OverridesParser.create()
    total = 1
    for key, value in sweep_overrides(config).items():
        if key.startswith("hydra."):
            continue
        o = parser.parse_override(f"{key}={value}")
        if o.is_sweep_override():
            total *= len(list(o.sweep_string_iterator()))
    return total


def preload_workers(launcher, n_jobs):
    """For the joblib launcher running several jobs at once, have loky fork its workers from a
    fork server that imports experiments.preload, starting it now. Returns the BLAS threads
    per worker (what loky's own start-up would set: cores // jobs at once), or None when the
    launcher is another one or runs the jobs one at a time in this process."""
    if not launcher.endswith("JoblibLauncher") or n_jobs == 1:
        return None
    import multiprocessing
    import multiprocessing.forkserver

    from joblib.externals.loky.backend import context

    multiprocessing.set_forkserver_preload(["experiments.preload"])
    multiprocessing.forkserver.ensure_running()
    context.set_start_method("forkserver", force=True)
    cores = os.cpu_count() or 1
    return max(1, cores // n_jobs) if n_jobs > 0 else 1


class SweepCallback(Callback):
    def __init__(self):
        self.parent = None
        self.blas_threads = None
        self.jobs_outlive_sweep = False
        self.job_env = {}

    def on_multirun_start(self, config, **kwargs):
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        n_jobs = OmegaConf.select(config, "hydra.launcher.n_jobs", default=1)
        self.blas_threads = preload_workers(launcher, n_jobs)  # before this process imports mlflow
        self.jobs_outlive_sweep = "submitit" in launcher  # cluster jobs go on without this process
        from . import tracking

        uri = config.tracking.uri
        client = tracking.connect(uri, config.tracking.timeout, config.tracking.retries)
        from mlflow.entities import Param, RunTag

        exp_id = tracking.ensure_experiment(uri, config.tracking.experiment, client)
        study = OmegaConf.select(config, "hydra.runtime.choices.experiment") or "custom"
        overrides = {k: v for k, v in sweep_overrides(config).items() if k != "+force"}
        definition = json.dumps({"study": study, "overrides": overrides}, sort_keys=True)
        sweep_id = hashlib.sha256(definition.encode()).hexdigest()[:12]
        force = bool(OmegaConf.select(config, "force", default=False))
        if force:
            sweep_id += time.strftime("-%Y%m%d%H%M%S")
        total = count_jobs(config)
        found = client.search_runs([exp_id], f"tags.sweep_id = '{sweep_id}' and "
                                             "tags.`shallownet.role` = 'parent'", max_results=1)
        if found:
            parent = found[0].info.run_id
            client.update_run(parent, status="RUNNING")
            resumed = True
        else:
            name = f"{study}-{time.strftime('%Y%m%d-%H%M%S')}"
            run = client.create_run(exp_id, run_name=name, tags={
                "sweep_id": sweep_id, "shallownet.role": "parent", "shallownet.experiment": study,
                "sweep_definition": definition, **tracking.environment_tags()})
            parent = run.info.run_id
            client.log_batch(parent, params=[Param("sweep.study", study),
                                             Param("sweep.jobs", str(total))] +
                             [Param(f"sweep.{k}", str(v)[:6000]) for k, v in sorted(overrides.items())])
            resumed = False
        client.log_batch(parent, tags=[RunTag("sweep_dir", str(Path(config.hydra.sweep.dir).resolve()))])
        # Hydra hands this callback to every job: keep it to plain values (no MLflow client).
        self.job_env = {"SHALLOWNET_EXPERIMENT_ID": exp_id, "SHALLOWNET_PARENT_RUN_ID": parent,
                        "SHALLOWNET_SWEEP_ID": sweep_id, "SHALLOWNET_SWEEP_TOTAL": str(total)}
        self.parent, self.total = parent, total
        self.uri, self.exp_id, self.sweep_dir = uri, exp_id, str(Path(config.hydra.sweep.dir))
        self.t0 = time.time()
        print(f"shallownet: sweep {sweep_id} ({study}, {total} jobs) -> parent run {parent}"
              f"{' (resumed)' if resumed else ''} in {uri}", flush=True)
        atexit.register(self.close)

    def on_job_start(self, config, **kwargs):
        """In the job's process: the sweep's ids for experiments.train, and the BLAS thread
        limit that loky sets in workers it starts itself (not in forked ones)."""
        os.environ.update(self.job_env)
        if self.blas_threads is not None:
            from threadpoolctl import threadpool_limits

            threadpool_limits(self.blas_threads)

    def on_multirun_end(self, config, **kwargs):
        self.close()

    def close(self):
        """Count the jobs' outcomes onto the parent, end it, print the summary. Once."""
        if self.parent is None:
            return
        parent, self.parent = self.parent, None
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        outcomes = []
        for path in sorted(Path(self.sweep_dir).glob("*/outcome.json"), key=lambda p: int(p.parent.name)
                           if p.parent.name.isdigit() else 0):
            info = json.loads(path.read_text())
            info["job"] = path.parent.name
            outcomes.append(info)
        counts = {"FINISHED": 0, "FAILED": 0, "DIVERGED": 0, "SKIPPED": 0, "KILLED": 0}
        for o in outcomes:
            key = o["status"] if o["status"] in counts else "FAILED"
            counts[key] += 1
        complete = len(outcomes) >= self.total
        metrics = {"jobs_total": self.total, "jobs_finished": counts["FINISHED"],
                   "jobs_failed": counts["FAILED"] + counts["DIVERGED"] + counts["KILLED"],
                   "jobs_diverged": counts["DIVERGED"], "jobs_skipped": counts["SKIPPED"],
                   "sweep_seconds": time.time() - self.t0}
        try:
            client = MlflowClient(self.uri)
            if not complete and not self.jobs_outlive_sweep:
                finished, failed = self._unreported(client, parent, {o.get("run_id") for o in outcomes})
                metrics["jobs_finished"] += finished
                metrics["jobs_failed"] += failed
            now = int(time.time() * 1000)
            client.log_batch(parent, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
            client.set_terminated(parent, "FINISHED" if complete else "KILLED")
        except Exception as err:  # the store went away: say so, do not hide the summary
            print(f"shallownet: could not close parent run {parent}: {str(err).splitlines()[0]}")
        self._summary(outcomes, metrics, parent, complete)

    def _unreported(self, client, parent, reported):
        """This session's child runs that left no outcome.json: an interrupted sweep's workers go
        down with it (loky SIGKILLs them), and a job stopped while recording could not end its
        run or report it. End the RUNNING ones KILLED; returns (finished, failed) counts."""
        from mlflow.entities import RunTag

        since = int(self.t0 * 1000)
        runs = client.search_runs([self.exp_id], f"tags.mlflow.parentRunId = '{parent}' and "
                                                 f"attributes.start_time >= {since}", max_results=10000)
        finished = failed = 0
        for run in runs:
            if run.info.run_id in reported:
                continue
            if run.info.status == "RUNNING":
                client.log_batch(run.info.run_id, tags=[RunTag("failure_reason", "sweep interrupted")])
                client.set_terminated(run.info.run_id, "KILLED")
            finished += run.info.status == "FINISHED"
            failed += run.info.status != "FINISHED"
        return finished, failed

    def _summary(self, outcomes, metrics, parent, complete):
        lines = ["", f"sweep summary ({len(outcomes)}/{self.total} jobs"
                 f"{'' if complete else ', INCOMPLETE'}; {metrics['sweep_seconds']:.1f}s):",
                 f"  {'job':>4}  {'status':<13} {'test_acc':>8}  overrides"]
        for o in outcomes:
            acc = o.get("test_accuracy")
            acc = "-" if acc is None or (isinstance(acc, float) and math.isnan(acc)) else f"{acc:.3f}"
            lines.append(f"  {o['job']:>4}  {o['status']:<13} {acc:>8}  {o.get('shown') or o['overrides']}")
        done = [o for o in outcomes if o["status"] in ("FINISHED", "SKIPPED")
                and o.get("test_accuracy") is not None]
        if done:
            best = max(done, key=lambda o: o["test_accuracy"])
            lines.append(f"best: {best.get('shown') or best['overrides']} (test_acc {best['test_accuracy']:.3f})")
        failed = [o for o in outcomes if o["status"] not in ("FINISHED", "SKIPPED")]
        for o in failed:
            lines.append(f"failed: {o.get('shown') or o['overrides']}: {o.get('message') or o['status']}")
        lines.append(f"finished {metrics['jobs_finished']}, failed {metrics['jobs_failed']} "
                     f"(diverged {metrics['jobs_diverged']}), skipped {metrics['jobs_skipped']}")
        lines.append(f"MLflow UI: make ui  (mlflow ui --backend-store-uri {self.uri} --host 127.0.0.1),"
                     f" then http://127.0.0.1:5000/#/experiments/{self.exp_id}/runs/{parent}")
        print("\n".join(lines), flush=True)
