"""What a report covers: one sweep (its id and experiment file), or the runs of an MLflow
experiment that match a filter. The scope titles the report, opens it, names its default
folder, and says which study's claims it judges (report/claims.py)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .fmt import is_missing

NO_FILE = "custom"  # the study tag of a sweep run without experiment=NAME


@dataclass(frozen=True)
class Scope:
    experiment: str  # the MLflow experiment
    sweep_id: str | None = None  # a sweep report; None for --experiment
    study: str | None = None  # the experiment file every run comes from, None for several or none
    filter: str = ""  # --experiment's filter
    studies: tuple = ()  # --experiment: (experiment file or None, sweep id or None, runs) groups

    @property
    def title(self) -> str:
        """The sweep id and its experiment file's path, or the MLflow experiment and the
        filter: what the report covers, said once (the first lines add what it leaves out)."""
        if self.sweep_id is not None:
            return sweep_title(self.sweep_id, self.study)
        return f"MLflow experiment {self.experiment}: {_runs_where(self.filter)}"

    def lines(self, n_set_aside: int = 0) -> list:
        """The report's first lines after the title, naming nothing the title names: a
        sweep's MLflow experiment; or where the runs come from (every run the filter matched;
        ``n_set_aside`` of them are reproductions or repeats that report/design.py sets
        aside, which the line says) and whether a tutorial claim can be judged."""
        if self.sweep_id is not None:
            return [f"MLflow experiment: `{self.experiment}`"]
        out = []
        parts = [
            f"{n} from sweep `{sweep}` ({_file(study)})" if sweep else f"{n} outside any sweep"
            for study, sweep, n in self.studies
        ]
        if parts:
            total = sum(n for _, _, n in self.studies)
            aside = (
                f"{total} ({n_set_aside} set aside as reproductions or repeats, see Design): "
                if n_set_aside
                else ""
            )
            out.append(f"Runs: {aside}" + "; ".join(parts))
        if self.study is None:
            out.append("No tutorial claim is judged: these runs are not all of one experiment file")
        return out

    def folder(self) -> str:
        """The default folder name under outputs/reports/: the sweep id, or the experiment and
        a readable form of the filter with a hash of it (two filters never share one)."""
        if self.sweep_id is not None:
            return _safe(self.sweep_id)
        if not self.filter:
            return f"{_safe(self.experiment)}--all-runs"
        digest = hashlib.sha256(self.filter.encode()).hexdigest()[:8]
        return f"{_safe(self.experiment)}--{_safe(self.filter)[:60]}-{digest}"


def sweep_title(sweep_id: str, study) -> str:
    """A sweep report's title: its id and its experiment file (the path, which names it)."""
    return f"Sweep {sweep_id}: {_file(study)}"


def _file(study) -> str:
    if study is None:
        return "several experiment files"
    if study == NO_FILE:
        return "no experiment file (the command line's own grid)"
    return f"experiment file src/shallownet/conf/experiment/{study}.yaml"


def _runs_where(filter_string: str) -> str:
    return f"runs where {filter_string}" if filter_string else "all runs"


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", s).strip("._") or "report"


def experiment_scope(experiment, filter_string, runs, parents) -> Scope:
    """The scope of an --experiment report. ``runs``: its frame (tags.sweep_id, tags.reproduces,
    tags.shallownet.role columns when present); ``parents``: {sweep_id: experiment file} of the
    experiment's sweeps. A reproduction counts as of the run it reproduces."""
    role = runs.get("tags.shallownet.role")
    children = runs if role is None else runs[role != "parent"]
    sweep_of = dict(zip(children["run_id"], _col(children, "tags.sweep_id")))
    groups, files = {}, set()
    for rid, original in zip(children["run_id"], _col(children, "tags.reproduces")):
        sweep = (sweep_of.get(original) if original else None) or sweep_of[rid]
        study = parents.get(sweep) if sweep else None
        files.add(study)
        groups[(study, sweep)] = groups.get((study, sweep), 0) + 1
    studies = tuple((st, sw, n) for (st, sw), n in sorted(groups.items(), key=lambda kv: kv[0][1] or "~"))
    one = next(iter(files)) if len(files) == 1 else None
    return Scope(experiment, None, one if one != NO_FILE else None, filter_string, studies)


def _col(frame, name):
    if name not in frame:
        return [None] * len(frame)
    return [None if is_missing(v) else str(v) for v in frame[name]]
