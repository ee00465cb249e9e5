"""The contract between a sweep and its jobs: what a job reads, what it reports back.

The sweep's own launcher (``sweep.launcher``) builds each job's ``Sweep`` itself and reports
for it. A job that runs in a process of its own (a submitit job) reads one environment
variable, ``SHALLOWNET_SWEEP`` (JSON: the experiment, the parent run, the sweep's id, this
session's id, the number of jobs), set by the sweep's Hydra callback in the job's process. Jobs
report back through small files in their Hydra output directory, which work alike on one
machine and on cluster nodes sharing a filesystem:

* ``started.json`` (host, pid) when a job in a process of its own begins: the launching process
  forwards a stop request to the jobs that are in flight on its machine;
* ``outcome.json`` when it ends: status, run id, test accuracy, seconds, message. The sweep's
  progress lines, counts and summary are read from these.

How a run ends, as a status and as the exit code of a single run:

    FINISHED 0   SKIPPED 0 (sweep: an identical run exists)   DIVERGED 1   FAILED 1
    CONFIG_ERROR 2 (nothing recorded)   TRACKING_ERROR 3   KILLED 130 (Ctrl-C) / 143 (SIGTERM) / 129 (SIGHUP)
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .names import EXIT_CODES  # noqa: F401 - re-exported: how a job's status exits

ENV = "SHALLOWNET_SWEEP"
OUTCOME = "outcome.json"
STARTED = "started.json"
# overrides that say where and how a job runs, not what it computes: left out of progress lines
NOT_SHOWN = ("tracking.", "experiment=", "hparams_search=", "hydra", "force=")


class RunError(Exception):
    """A run that cannot go on: its exit code, its status and one line for the user."""

    def __init__(self, code, status, message):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


@dataclass(frozen=True)
class Sweep:
    """What the launching process tells each job of its sweep."""

    experiment_id: str
    parent_run_id: str
    sweep_id: str
    session: str  # one id per invocation of the sweep: its outcomes and its runs
    total: int
    launcher_pid: int
    swept: list = field(default_factory=list)  # the keys the sweep varies

    def to_env(self):
        return {ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls):
        raw = os.environ.get(ENV)
        return cls(**json.loads(raw)) if raw else None


@dataclass
class Outcome:
    """How one job ended (``status`` is one of EXIT_CODES' keys or KILLED)."""

    status: str
    message: str = ""
    run_id: str | None = None
    test_accuracy: float | None = None
    seconds: float = 0.0
    name: str = ""  # the run's name
    page: str = ""  # the run's page in the MLflow UI, relative to its address


@dataclass
class Job:
    """Where one run runs: alone (``sweep`` None) or as job ``num`` of a sweep."""

    overrides: list[str] = field(default_factory=list)
    sweep: Sweep | None = None
    num: int | None = None
    out_dir: Path | None = None  # Hydra's output directory of this job
    in_sweep: bool = False
    slot: int | None = None  # the seed of one run of a job that trains several (``seeds``)

    def for_seed(self, seed):
        """The job of one run of a job that trains several seeds: its overrides say
        ``seed=<seed>`` where the job's say ``seeds=[...]``, so the run is named, tagged and
        shown as a job of that seed alone would be."""
        overrides = [f"seed={seed}" if o.startswith("seeds=") else o for o in self.overrides]
        return dataclasses.replace(self, overrides=overrides, slot=seed)

    def tidy(self):
        """Remove a single run's Hydra directory, and its parents up to the working directory,
        when nothing was written there (Hydra's logs and .hydra/ are off by default)."""
        if self.in_sweep or not self.out_dir:
            return
        here, d = Path.cwd().resolve(), self.out_dir.resolve()
        while d != here and here in d.parents and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent

    def swept_values(self):
        """[(key, value)] of this job's swept keys, in the sweep's order (None for a single run)."""
        if not (self.sweep and self.sweep.swept):
            return None
        given = dict(o.split("=", 1) for o in self.overrides if "=" in o)
        return [(k, given[k]) for k in self.sweep.swept if k in given]

    @property
    def shown(self):
        """What varies in this job, for progress lines: the swept keys' values (else its
        overrides without the plumbing)."""
        if self.sweep and self.sweep.swept:
            return " ".join(o for o in self.overrides if o.split("=", 1)[0] in self.sweep.swept)
        return " ".join(o for o in self.overrides if not o.startswith(NOT_SHOWN))

    def started(self, runs=1):
        """Tell the sweep this job is in flight, with ``runs`` runs to report."""
        if self.in_sweep:
            _write_json(
                self.out_dir / STARTED,
                {"host": socket.gethostname(), "pid": os.getpid(), "session": self._session(), "runs": runs},
            )

    def report(self, outcome):
        """Leave the job's outcome for the sweep (a no-op for a single run)."""
        if self.in_sweep:
            info = {
                **asdict(outcome),
                "num": self.num,
                "overrides": " ".join(self.overrides),
                "shown": self.shown,
                "session": self._session(),
                "slot": self.slot,
            }
            name = OUTCOME if self.slot is None else OUTCOME.replace(".", f".seed{self.slot}.")
            _write_json(self.out_dir / name, info)

    def _session(self):
        return self.sweep.session if self.sweep else None


def _write_json(path, info):
    """Write atomically (rename): the sweep polls these files while jobs write them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(info, sort_keys=True))
    tmp.replace(path)


def _read(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def outcome_files(job_dir):
    """A job's outcome files: ``outcome.json``, or one ``outcome.seed<k>.json`` per run of a
    job that trains several seeds."""
    job_dir = Path(job_dir)
    return job_dir.parent.glob(f"{job_dir.name}/{OUTCOME.replace('.', '*.')}")


def outcomes(sweep_dir, session):
    """{outcome file: outcome dict} of this session's finished runs (or runless jobs)."""
    found = {}
    for path in outcome_files(Path(sweep_dir) / "*"):
        info = _read(path)
        if info and info.get("session") == session:
            found[path] = info
    return found


def in_flight(sweep_dir, session):
    """Pids of this session's jobs on this machine that started and have not reported."""
    host, pids = socket.gethostname(), []
    for path in Path(sweep_dir).glob(f"*/{STARTED}"):
        info = _read(path)
        if not info or info.get("session") != session or info.get("host") != host:
            continue
        reported = [o for o in map(_read, outcome_files(path.parent)) if o and o.get("session") == session]
        if len(reported) < info.get("runs", 1):
            pids.append(int(info["pid"]))
    return pids
