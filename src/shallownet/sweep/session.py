"""Hydra callback that turns a multirun into one MLflow parent run with child runs.

In the launching process, before any job starts, ``on_multirun_start`` opens the store
(schema created once, under a lock), closes the experiment's stale runs (their processes are
gone), and claims the sweep's parent run: a new one, or the parent of an earlier session of
the same sweep (resume). The same sweep already running elsewhere is refused. Any failure
here stops the sweep before a job runs: ``SweepAbort`` (a BaseException, since Hydra only
warns about a callback's Exception), one line, a non-zero exit code.

Each job reads the sweep's ids from ``on_job_start`` (``shallownet.job``) and reports its
outcome beside its Hydra output; a thread here prints one progress line per finished job, in
the order they finish. ``close`` (Hydra skips ``on_multirun_end`` when a job fails, so
``cli.main`` calls it too) ends this session's leftover runs, counts every configuration of
the sweep from the store (all sessions; configs another sweep finished are members too,
listed in the parent's ``sweep/members.json``), ends the parent and prints the summary.

A Ctrl-C, SIGTERM or SIGHUP is forwarded to the jobs in flight on this machine, which end their runs
KILLED with what they measured; the sweep then ends KILLED (exit 130 or 143). The compute
workers die with this process, even when it is killed with -9 (``shallownet.procs``).

A sweep's id is a hash of its definition (study + overrides): running the same sweep again
reopens the same parent, and every configuration that an identical run (same config, data and
code: ``shallownet.identity``) already FINISHED is skipped; ``force=true`` trains everything
again under a new parent.
"""

import hashlib
import json
import math
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from .. import job as jobs
from ..record import store
from ..console import emit, first_line, say
from ..stop import STOP

_OPEN = None  # the Session whose parent run this process has open
_EXIT = 0  # exit code of the last sweep this process closed
FORWARD_WAIT_SECONDS = 60.0  # how long jobs in flight get to record their interrupted runs
OTHERS_POLL_SECONDS = 0.5  # how often the close looks at runs another sweep still trains


class SweepAbort(BaseException):
    """The sweep cannot start: nothing is launched. BaseException: Hydra turns a callback's
    Exception into a warning and goes on with the jobs."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def exit_code():
    return _EXIT


def close_open_sweep(code):
    """Close the sweep still open in this process, if any; the exit code to use."""
    if _OPEN is not None:
        _OPEN.close()
        return _EXIT if _EXIT else code
    return code


def abandon_open_sweep(reason):
    """The sweep's jobs could not be launched at all (its launcher could not submit them):
    end the parent FAILED with ``reason``, without a summary (the caller says why in one
    line and exits 3)."""
    global _OPEN
    session, _OPEN = _OPEN, None
    if session is None or session.parent is None:
        return
    from ..record import tracking

    parent, session.parent = session.parent, None
    with STOP.deferred():
        tracking.end_run(session.client, parent, "FAILED", {tracking.TAG_FAILURE: reason})
        _tidy(session.sweep_dir, session.session)


def current_session():
    """The sweep this (launching) process has open: for a sweeper that runs in rounds."""
    return _OPEN


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
    adaptive = OmegaConf.select(config, "hydra.sweeper.min_seeds") is not None
    parser = OverridesParser.create()
    total = int(OmegaConf.select(config, "hydra.sweeper.min_seeds")) if adaptive else 1
    for key, value in sweep_overrides(config).items():
        if key.startswith("hydra.") or adaptive and key == "seed":
            continue
        o = parser.parse_override(f"{key}={value}")
        if o.is_sweep_override():
            total *= len(list(o.sweep_string_iterator()))
    return total


def swept_keys(config):
    """The keys a sweep varies (grid values or an Optuna search space), in sweep order."""
    parser = OverridesParser.create()
    keys = []
    for key, value in sweep_overrides(config).items():
        if key.startswith("hydra."):
            continue
        o = parser.parse_override(f"{key}={value}")
        if (
            o.is_sweep_override()
            or OmegaConf.select(config, "hydra.sweeper.n_trials") is not None
            and key in (OmegaConf.select(config, "hydra.sweeper.params") or {})
        ):
            keys.append(o.key_or_group)
    return keys


def definition(config):
    """(study, overrides, sweep_id): what identifies a sweep across sessions."""
    study = OmegaConf.select(config, "hydra.runtime.choices.experiment") or "custom"
    overrides = {
        k: v
        for k, v in sweep_overrides(config).items()
        if k.lstrip("+") != "force" and not k.startswith("hydra.sweep")
    }
    blob = json.dumps({"study": study, "overrides": overrides}, sort_keys=True)
    return study, overrides, hashlib.sha256(blob.encode()).hexdigest()[:12]


class Progress(threading.Thread):
    """Prints one line per finished job of this session, in the order they finish, from the
    jobs' outcome files (so it works for every launcher, cluster nodes included)."""

    def __init__(self, sweep_dir, session, total, poll=0.25):
        super().__init__(name="shallownet-progress", daemon=True)
        self.sweep_dir, self.session, self.total, self.poll = sweep_dir, session, total, poll
        self.seen, self.t0 = {}, time.time()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(self.poll):
            self.scan()

    def finish(self):
        self.done.set()
        if self.is_alive():
            self.join()
        self.scan()
        return list(self.seen.values())

    def scan(self):
        found = jobs.outcomes(self.sweep_dir, self.session)
        new = sorted((p for p in found if p not in self.seen), key=_mtime)
        for path in new:
            self.seen[path] = found[path]
            self.emit(found[path])

    def emit(self, o):
        k, elapsed = len(self.seen), time.time() - self.t0
        eta = elapsed / k * (self.total - k) if k < self.total else 0.0
        emit(
            f"[{k}/{self.total}] {o.get('shown') or '(defaults)'}: {o['status']}"
            f" test_acc={_acc(o)} ({o.get('seconds', 0):.1f}s; {elapsed:.0f}s elapsed, "
            f"ETA {eta:.0f}s)"
        )


def _mtime(path):
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _acc(o):
    acc = o.get("test_accuracy")
    return "-" if acc is None or (isinstance(acc, float) and math.isnan(acc)) else f"{acc:.3f}"


class SweepCallback(Callback):
    """Hydra hands this callback to every job (pickled): it keeps plain values only. The
    launching process's state (store client, progress thread) lives in a ``Session``."""

    def __init__(self):
        self.job_env = {}

    def on_multirun_start(self, config, **kwargs):
        STOP.release()  # held by cli.main through Hydra's compose of the sweep's config
        STOP.check()
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        session = Session(config, launcher)
        session.open()
        self.job_env = session.job_env

    def on_job_start(self, config, **kwargs):
        """In the job's process (a submitit job: ``shallownet.sweep.launcher`` runs none): the
        sweep's ids for shallownet.train and the stop handlers."""
        os.environ.update(self.job_env)
        STOP.install()

    def on_multirun_end(self, config, **kwargs):
        if _OPEN is not None:
            _OPEN.close()


class Session:
    """One invocation of a sweep, in its launching process: the parent run it holds open."""

    def __init__(self, config, launcher):
        self.jobs_outlive_sweep = "submitit" in launcher  # cluster jobs go on without this process
        self.session = secrets.token_hex(6)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.tracking = config.tracking
        self.uri, self.total = config.tracking.uri, count_jobs(config)
        self.study, self.overrides, self.sweep_id = definition(config)
        self.swept = swept_keys(config)
        if bool(OmegaConf.select(config, "force", default=False)):
            self.sweep_id += time.strftime("-%Y%m%d%H%M%S")
        self.parent = None

    # ------------------------------------------------------------------ start

    def open(self):
        global _OPEN
        with STOP.deferred():
            self._open_store()
            self.parent, resumed = self._claim_parent()
            self.t0 = time.time()
            self.progress = Progress(self.sweep_dir, self.session, self.total)
            _OPEN = self  # from here on, whatever happens, cli.main closes the parent
        STOP.check()
        self.sweep = jobs.Sweep(
            self.exp_id,
            self.parent,
            self.sweep_id,
            self.session,
            self.total,
            os.getpid(),
            self.swept,
        )
        self.job_env = self.sweep.to_env()
        self.progress.start()
        STOP.on_first_signal(self._forward_stop)
        emit(
            f"shallownet: sweep {self.sweep_id} ({self.study}, {self.total} jobs) -> parent run "
            f"{self.parent}{' (resumed)' if resumed else ''} in {self.uri}"
        )

    def _open_store(self):
        from ..record import claims, tracking
        from ..record.recorder import Recorder

        tr = self.tracking
        try:
            self.client = tracking.connect(tr.uri, tr.timeout, tr.retries)
            self.recorder = Recorder(self.client)  # the sweep's: the launcher records its runs
            self.exp_id = tracking.ensure_experiment(tr.uri, tr.experiment, self.client)
            claims.close_stale(
                self.client, tracking.running_runs(self.client, self.exp_id), who=f"sweep {self.sweep_id}"
            )
        except Exception as err:
            raise SweepAbort(3, f"tracking store {tr.uri} unusable: {first_line(err)}") from None

    def _claim_parent(self):
        """(parent run id, resumed?): reopen this sweep's parent, or create it; refuse when
        the same sweep is running in another live process."""
        from ..record import tracking
        from ..record.tracking import TAG_ROLE, TAG_SWEEP

        def parents():
            return [
                r
                for r in tracking.runs_tagged(self.client, self.exp_id, TAG_SWEEP, self.sweep_id)
                if r.data.tags.get(TAG_ROLE) == "parent"
            ]

        try:
            found = sorted(parents(), key=lambda r: (r.info.start_time, r.info.run_id))
            running = [r for r in found if r.info.status == "RUNNING"]  # stale ones are closed
            if running:
                raise SweepAbort(2, self._already_running(running[0]))
            if found:
                parent = found[-1].info.run_id
                tracking.reopen_run(self.client, found[-1], self._parent_tags())
                return parent, True
            mine = self._create_parent()
            parent = mine.info.run_id
            rivals = [r for r in parents() if r.info.run_id != parent and r.info.status == "RUNNING"]
            if any((r.info.start_time, r.info.run_id) < (mine.info.start_time, parent) for r in rivals):
                tracking.delete_run(self.client, parent)  # a twin started at the same moment came first
                raise SweepAbort(2, self._already_running(min(rivals, key=lambda r: r.info.start_time)))
            return parent, False
        except SweepAbort:
            raise
        except Exception as err:
            raise SweepAbort(
                3, f"cannot open the sweep's parent run in {self.uri}: {first_line(err)}"
            ) from None

    def _already_running(self, run):
        from ..record import tracking

        who, _ = tracking.run_owner(run)
        who = who or {}
        return (
            f"sweep {self.sweep_id} is already running (parent run {run.info.run_id}, pid "
            f"{who.get('pid', '?')} on {who.get('host', '?')}): wait for it to end or stop "
            f"it; force=true starts an independent copy"
        )

    def _parent_tags(self):
        from ..record import tracking

        return {
            **tracking.owner_tags(),
            tracking.TAG_SESSION: self.session,
            "sweep_dir": str(self.sweep_dir.resolve()),
        }

    def _create_parent(self):
        from ..record import provenance, tracking

        overrides = self.overrides
        definition_json = json.dumps({"study": self.study, "overrides": overrides}, sort_keys=True)
        tags = {
            tracking.TAG_SWEEP: self.sweep_id,
            tracking.TAG_ROLE: "parent",
            tracking.TAG_STUDY: self.study,
            "sweep_definition": definition_json,
            **self._parent_tags(),
            **provenance.environment_tags(),
        }
        params = [("sweep.study", self.study), ("sweep.jobs", str(self.total))] + [
            (f"sweep.{k}", str(v)[:6000]) for k, v in sorted(overrides.items())
        ]
        name = f"{self.study}-{time.strftime('%Y%m%d-%H%M%S')}"
        return tracking.create_run(self.client, self.exp_id, name, tags, params)

    @property
    def experiment(self):
        return self.tracking.experiment

    def expect(self, total):
        """A sweeper that launches in rounds: the number of jobs launched so far."""
        self.total = self.progress.total = total

    def record_rule(self, params):
        from ..record import tracking

        tracking.log_params(self.client, self.parent, params)

    # ------------------------------------------------------------------ stop

    def _forward_stop(self, signum):
        """First Ctrl-C/SIGTERM of the sweep: pass it on to the jobs in flight on this machine
        and give them time to record their runs KILLED, before the launcher tears its workers
        down."""
        from ..procs import alive

        pids = [p for p in jobs.in_flight(self.sweep_dir, self.session) if p != os.getpid()]
        for pid in pids:
            try:
                os.kill(pid, signum)
            except OSError:
                pass
        if pids:
            say(f"stopping: {len(pids)} job(s) in flight record their runs")
        deadline = time.time() + FORWARD_WAIT_SECONDS
        while time.time() < deadline and any(alive(p) for p in jobs.in_flight(self.sweep_dir, self.session)):
            time.sleep(0.05)
        left = [p for p in jobs.in_flight(self.sweep_dir, self.session) if alive(p)]
        if left:
            say(f"{len(left)} job(s) did not end within {FORWARD_WAIT_SECONDS:.0f}s: their runs end KILLED")

    # ------------------------------------------------------------------ close

    def close(self):
        """End this session's leftover runs, count the sweep onto the parent, end it, print
        the summary. Once; signals wait until it is done."""
        global _OPEN, _EXIT
        if self.parent is None:
            return
        parent, self.parent = self.parent, None
        _OPEN = None
        with STOP.deferred():
            outcomes = sorted(self.progress.finish(), key=_job_order)
            # complete: every job reported, none stopped (a Ctrl-C that comes once they all
            # did changes nothing of the record)
            complete = len(outcomes) >= self.total and not any(o["status"] == "KILLED" for o in outcomes)
            try:
                counts = self._record(parent, outcomes, complete)
                closed = True
            except Exception as err:  # the store went away: say so, do not hide the summary
                say(f"could not close parent run {parent}: {first_line(err)}")
                counts, closed = _session_counts(outcomes, self.total), False
                self._end_parent_anyway(parent, first_line(err))
            _EXIT = _exit_code(outcomes, complete, closed, self.total)
            self._summary(outcomes, counts, parent, complete)
            _tidy(self.sweep_dir, self.session)

    def _record(self, parent, outcomes, complete):
        """Leftover runs, counts and status first (the store's rows), then the members file
        (an artifact: it can fail on a full disk without leaving the parent RUNNING)."""
        from ..record import tracking

        self._end_leftovers(parent, outcomes)
        members = self._members(parent, outcomes)
        self._await_others(members)
        runs = tracking.deciding_runs(tracking.get_runs(self.client, [self.exp_id], members))
        counts = _store_counts(runs, outcomes, self.total)
        counts["sweep_seconds"] = time.time() - self.t0
        tracking.log_summary(
            self.client, parent, counts, note=_note(self.study, self.sweep_id, counts, outcomes)
        )
        tracking.end_run(self.client, parent, "FINISHED" if complete else "KILLED")
        try:
            tracking.log_members(self.client, parent, [r.info.run_id for r in runs])
        except Exception as err:
            say(f"could not store the members of sweep {self.sweep_id}: {first_line(err)}")
        return counts

    def _await_others(self, members):
        """Members another process is still training (this sweep skipped them as in progress):
        the summary counts them, so wait until they end, their owner is found gone (then they
        are closed KILLED), or a stop is requested."""
        from ..record import claims, tracking

        told = False
        while not STOP.requested:
            runs = tracking.get_runs(self.client, [self.exp_id], members)
            training = [
                r
                for r in runs
                if r.info.status == "RUNNING" and r.data.tags.get(tracking.TAG_SESSION) != self.session
            ]
            closed = claims.close_stale(self.client, training, "the sweep's close")
            training = [r for r in training if r.info.run_id not in closed]
            if not training:
                return
            if not told:
                say(f"waiting for {len(training)} run(s) that another process trains for this sweep")
                told = True
            time.sleep(OTHERS_POLL_SECONDS)

    def _end_parent_anyway(self, parent, cause):
        """The parent whose record could not be written (a damaged store): ended KILLED (the
        sweep was stopped) or FAILED, with the cause when the store still takes a tag, never
        left RUNNING while the store takes a status."""
        from ..record import tracking

        status = "KILLED" if STOP.requested else "FAILED"
        reason = {tracking.TAG_FAILURE: f"the sweep's summary could not be recorded: {cause}"}
        for tags in (reason, None):
            try:
                return tracking.end_run(self.client, parent, status, tags)
            except Exception:
                continue

    def _end_leftovers(self, parent, outcomes):
        """This session's child runs still RUNNING: their job was stopped (a worker that did not
        return in time is killed) or could not end its run. End them KILLED, or FAILED with
        the job's reason."""
        from ..record import tracking
        from ..record.tracking import TAG_FAILURE, TAG_SESSION

        reasons = {o.get("run_id"): o for o in outcomes if o.get("run_id")}
        lost = {o["overrides"]: o for o in outcomes if o["status"] == "KILLED" and not o.get("run_id")}
        for run in tracking.runs_tagged(self.client, self.exp_id, TAG_SESSION, self.session):
            if run.info.status != "RUNNING" or run.info.run_id == parent:
                continue
            if self.jobs_outlive_sweep:  # cluster jobs end their runs, but for those SLURM lost
                o = lost.get(run.data.tags.get("overrides"))
                if o:
                    tracking.end_run(self.client, run.info.run_id, "KILLED", {TAG_FAILURE: o["message"]})
                continue
            o = reasons.get(run.info.run_id)
            if o and o["status"] == "TRACKING_ERROR":
                tracking.end_run(self.client, run.info.run_id, "FAILED", {TAG_FAILURE: o["message"]})
            else:
                tracking.end_run(
                    self.client,
                    run.info.run_id,
                    "KILLED",
                    {
                        TAG_FAILURE: f"sweep {'interrupted' if STOP.requested else 'ended'} "
                        "before this job reported"
                    },
                )

    def _members(self, parent, outcomes):
        """The run of every configuration of the sweep: its own children (all sessions), the
        runs it skipped for (maybe another sweep's), and those an earlier close listed."""
        from ..record import tracking

        own = tracking.runs_tagged(self.client, self.exp_id, tracking.TAG_SWEEP, self.sweep_id)
        ids = {r.info.run_id for r in own if r.data.tags.get(tracking.TAG_ROLE) == "child"}
        ids |= {o["run_id"] for o in outcomes if o.get("run_id")}
        with tempfile.TemporaryDirectory() as tmp:
            ids |= set(tracking.sweep_members(self.client, parent, tmp) or [])
        return ids

    def _summary(self, outcomes, counts, parent, complete):
        """One table (test accuracy per level of each swept key), the best job, the jobs that
        went wrong and the counts: the progress lines above already listed every job."""
        lines = [
            "",
            f"sweep summary ({len(outcomes)}/{self.total} jobs this session"
            f"{'' if complete else ', INCOMPLETE'}; {_since_start():.1f}s since the command started):",
        ]
        if outcomes:
            lines += _level_table(outcomes, [k for k in self.swept if k != "seed"])
        else:
            lines.append("  no job ended this session: nothing to tabulate")
        done = [
            o
            for o in outcomes
            if o["status"] in ("FINISHED", "SKIPPED") and o.get("test_accuracy") is not None
        ]
        if done:
            best = max(done, key=lambda o: o["test_accuracy"])
            lines.append(f"best: {best.get('shown') or '(defaults)'} (test_acc {best['test_accuracy']:.3f})")
        for o in outcomes:
            if o["status"] not in ("FINISHED", "SKIPPED"):
                lines.append(f"{o['status']}: {o.get('shown') or '(defaults)'}: {o.get('message') or ''}")
        lines.append(
            f"sweep {self.sweep_id}: {counts['jobs_finished']}/{self.total} configs finished, "
            f"failed {counts['jobs_failed']} (diverged {counts['jobs_diverged']}, killed {counts['jobs_killed']}), "
            f"skipped {counts['jobs_skipped']} this session"
        )
        lines += store.ui_lines(self.uri, f"#/experiments/{self.exp_id}/runs/{parent}")
        emit("\n".join(lines))


def _since_start():
    """Seconds since this process started: what the user waited, imports and compose included."""
    import psutil

    return time.time() - psutil.Process().create_time()


def _level_table(outcomes, keys):
    """Rows 'key  level  jobs  finished  test_acc mean  min  max' over this session's jobs."""
    rows = []
    for key in keys or [None]:
        groups = {}
        for o in outcomes:
            given = dict(t.split("=", 1) for t in (o.get("shown") or "").split() if "=" in t)
            groups.setdefault(given.get(key, "all") if key else "all", []).append(o)
        for level, group in groups.items():
            accs = [
                o["test_accuracy"]
                for o in group
                if o["status"] in ("FINISHED", "SKIPPED") and isinstance(o.get("test_accuracy"), (int, float))
            ]
            stats = (
                f"{sum(accs) / len(accs):>13.3f}  {min(accs):.3f}  {max(accs):.3f}"
                if accs
                else f"{'-':>13}  {'-':>5}  {'-':>5}"
            )
            rows.append((key or "", level, len(group), len(accs), stats))
    kw = max([len(r[0]) for r in rows] + [3])
    lw = max([len(str(r[1])) for r in rows] + [5])
    out = [f"  {'key':<{kw}}  {'level':<{lw}}  jobs  done  test_acc mean    min    max"]
    out += [f"  {k:<{kw}}  {str(lv):<{lw}}  {n:>4}  {d:>4}  {st}" for k, lv, n, d, st in rows]
    return out


def _job_order(o):
    """Outcomes in job order, the runs of a job that trains several seeds by seed."""
    return o.get("num") or 0, o.get("slot") or 0


def _session_counts(outcomes, total):
    by = [o["status"] for o in outcomes]
    return {
        "jobs_total": total,
        "jobs_finished": by.count("FINISHED") + by.count("SKIPPED"),
        "jobs_failed": len(by) - by.count("FINISHED") - by.count("SKIPPED"),
        "jobs_diverged": by.count("DIVERGED"),
        "jobs_killed": by.count("KILLED"),
        "jobs_skipped": by.count("SKIPPED"),
    }


def _store_counts(runs, outcomes, total):
    """Counts over every configuration of the sweep, from the store (``runs``: one deciding
    run per config, so a config that failed once and finished on resume counts as finished)."""
    from ..record import tracking

    statuses = [tracking.outcome_of(run) for run in runs]
    skipped = sum(o["status"] == "SKIPPED" for o in outcomes)
    return {
        "jobs_total": total,
        "jobs_finished": statuses.count("FINISHED"),
        "jobs_failed": len(statuses)
        - statuses.count("FINISHED")
        - statuses.count("RUNNING")
        + len(_runless_failures(outcomes)),
        "jobs_diverged": statuses.count("DIVERGED"),
        "jobs_killed": statuses.count("KILLED"),
        "jobs_skipped": skipped,
        "jobs_trained": len(outcomes) - skipped,
    }


def _runless_failures(outcomes):
    """This session's jobs that failed before their run existed (bad data a job found, a crash
    while loading it): the store holds no run of theirs to count. A job SLURM lost is KILLED
    without a run id too, but its run is in the store (ended by _end_leftovers)."""
    return [
        o
        for o in outcomes
        if not o.get("run_id") and o["status"] in ("FAILED", "CONFIG_ERROR", "TRACKING_ERROR")
    ]


def _exit_code(outcomes, complete, closed, total):
    """Non-zero when anything but divergence went wrong: 3 store trouble, 1 failed jobs or
    an incomplete sweep, 130/143 when interrupted."""
    if STOP.requested and not complete:
        return STOP.exit_code
    statuses = {o["status"] for o in outcomes}
    if not closed or "TRACKING_ERROR" in statuses:
        return 3
    if statuses & {"FAILED", "KILLED", "CONFIG_ERROR"} or not complete:
        return 1
    return 0


def _note(study, sweep_id, counts, outcomes):
    """The parent's description in the MLflow UI (markdown); the report replaces it with its
    findings."""
    from .. import description

    rows = [[o.get("shown") or "(defaults)", o["status"], _acc(o)] for o in sorted(outcomes, key=_job_order)]
    table = "\n".join(description.table(["job", "status (this session)", "test acc"], rows))
    return (
        f"**{study}** sweep `{sweep_id}`: {counts['jobs_finished']}/{counts['jobs_total']} "
        f"configurations finished, {counts['jobs_failed']} failed "
        f"({counts['jobs_diverged']} diverged).\n\n"
        f"{table}\n\n"
        "Run `shallownet-report --sweep " + sweep_id + "` for the statistics."
    )


def _tidy(sweep_dir, session):
    """Remove this session's job files and every directory left empty: a sweep whose jobs
    kept nothing else (Hydra's logs and .hydra/ are off by default) leaves no folder behind."""
    root = Path(sweep_dir)
    (root / "multirun.yaml").unlink(missing_ok=True)  # Hydra's copy; the parent run holds it
    for path in [*root.glob(f"*/{jobs.STARTED}"), *jobs.outcomes(root, session)]:
        info = jobs._read(path)
        if info and info.get("session") == session:
            path.unlink(missing_ok=True)
    for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    here, d = Path.cwd().resolve(), root.resolve()
    while (
        d.is_dir()
        and not any(d.iterdir())
        and (d == root.resolve() or d.name == "multirun" or here in d.parents)
    ):
        d.rmdir()  # the sweep's folder, then multirun/ and (below the working dir) outputs/ when left empty
        d = d.parent
        if d == here:
            break
