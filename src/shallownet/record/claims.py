"""Which process trains a configuration, and the runs that nobody will ever end.

Every backend MLflow runs on (sqlite, PostgreSQL, a server) can create a run and search runs,
nothing more, so a claim is a run: a sweep job first looks for a FINISHED run of the same
``run_key`` (then it skips), else creates its own RUNNING run and looks again. When several
live runs hold the same key, the oldest by (start_time, run_id) trains; the others step
aside (ended KILLED with ``shallownet.skipped_for`` and deleted: restorable, but out of every
search). Two sweeps at once, a resume while a killed sweep's jobs may still run, or several
machines on one server therefore train each configuration once. (Across machines this needs
their clocks in step, as NTP keeps them.)

A RUNNING run whose owner is gone (``shallownet.procs``: same machine, process dead; other
machine, heartbeat too old) is stale: whoever meets it ends it KILLED, and its config is then
trained again. A single run (not a sweep job) always trains, and closes stale runs it meets.
"""

import time
from dataclasses import dataclass

from .. import procs
from . import tracking
from ..identity import what_changed
from .tracking import TAG_FAILURE, TAG_ROLE, TAG_RUN_KEY


@dataclass
class Claim:
    run_id: str | None = None  # our RUNNING run; None when this job is skipped
    skipped_for: object = None  # the FINISHED (or older live) run that makes ours redundant
    retrain: str = ""  # why a FINISHED run of the same config does not count, if one exists


def _order(run):
    return (run.info.start_time or 0, run.info.run_id)


def _counts(run):
    """Runs that stand for their config: not reproductions, not steps-aside."""
    return run.data.tags.get(TAG_ROLE) != "reproduction"


def close_stale(client, runs, who="shallownet"):
    """End KILLED every RUNNING run among ``runs`` whose owner can no longer end it; returns
    the ids it closed."""
    now = int(time.time() * 1000)
    closed = set()
    for run in runs:
        if run.info.status != "RUNNING":
            continue
        owner, beat = tracking.run_owner(run)
        if procs.owner_alive(owner, beat, now):
            continue
        host = (owner or {}).get("host", "?")
        tracking.end_run(
            client,
            run.info.run_id,
            "KILLED",
            {
                TAG_FAILURE: f"its process ({host}, pid {(owner or {}).get('pid', '?')}) is gone: "
                f"closed by {who}"
            },
        )
        closed.add(run.info.run_id)
    return closed


def _live(runs, closed):
    return [r for r in runs if r.info.status == "RUNNING" and r.info.run_id not in closed]


def claim(client, experiment_id, config_hash, key, data_fingerprint, create, compete=True):
    """Claim the right to train one configuration. ``create()`` makes our RUNNING run and
    returns it (an MLflow Run); ``compete`` is False for a single run or ``force=true`` (always trains)."""
    same_config = tracking.runs_tagged(client, experiment_id, tracking.TAG_CONFIG_HASH, config_hash)
    closed = close_stale(client, same_config)
    done = sorted(
        (
            r
            for r in same_config
            if r.info.status == "FINISHED" and r.data.tags.get(TAG_RUN_KEY) == key and _counts(r)
        ),
        key=_order,
    )
    if compete and done:
        return Claim(skipped_for=done[0])
    older = sorted(
        (
            r
            for r in same_config
            if r.info.status == "FINISHED" and r.data.tags.get(TAG_RUN_KEY) != key and _counts(r)
        ),
        key=_order,
    )
    retrain = (
        f"{what_changed(older[-1].data.tags, data_fingerprint)} changed since run {older[-1].info.run_id}"
        if older
        else ""
    )
    me = create()
    run_id = me.info.run_id
    if not compete:
        return Claim(run_id, retrain=retrain)
    rivals = [
        r
        for r in tracking.runs_tagged(client, experiment_id, TAG_RUN_KEY, key)
        if _counts(r) and r.info.run_id != run_id
    ]
    closed |= close_stale(client, rivals)
    finished = sorted((r for r in rivals if r.info.status == "FINISHED"), key=_order)
    earlier = [r for r in _live(rivals, closed) if _order(r) < _order(me)]
    winner = finished[0] if finished else min(earlier, key=_order) if earlier else None
    if winner is not None:
        tracking.step_aside(client, run_id, winner.info.run_id)
        return Claim(skipped_for=winner)
    return Claim(run_id, retrain=retrain)
