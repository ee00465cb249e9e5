"""shallownet.procs: a run's owner and its liveness, process groups and trees, through psutil."""

import os
import subprocess
import sys
import time

import psutil

from shallownet import procs

# a parent that ignores SIGTERM, with a child (in its group) that ignores it too
STUBBORN = (
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); print('ready', flush=True); time.sleep(60)"
)


def test_an_owner_is_alive_while_its_process_runs_and_not_once_it_is_a_zombie():
    me = procs.owner()
    assert me["pid"] == str(os.getpid()) and float(me["start"]) == psutil.Process().create_time()
    assert procs.owner_alive(me, None, 0) and procs.alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    who = procs.owner(child.pid)
    assert abs(float(who["start"]) - psutil.Process(child.pid).create_time()) < 1e-6
    deadline = time.monotonic() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not procs.alive(child.pid)  # exited, not yet reaped
    assert not procs.owner_alive(who, None, 0)
    child.wait()
    assert not procs.owner_alive(who, None, 0)
    # the same pid with another start time (the kernel reused it) is another process
    assert not procs.owner_alive({**me, "start": repr(float(me["start"]) - 5)}, None, 0)
    assert not procs.owner_alive({**me, "start": "None"}, None, 0)


def test_end_stops_a_tree_that_ignores_sigterm_and_nothing_of_its_group_lives():
    parent = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, start_new_session=True
    )
    assert parent.stdout.readline() == b"ready\n"
    tree = procs.family(parent.pid)
    assert len(tree) == 2 and sorted(procs.group_members(parent.pid)) == sorted(p.pid for p in tree)
    started = time.monotonic()
    assert procs.end(tree, timeout=1.0) == []  # SIGTERM ignored: SIGKILL after the timeout
    assert 1.0 <= time.monotonic() - started < 10
    parent.wait(timeout=5)  # psutil reaped it already (Popen then reports 0)
    assert not psutil.pid_exists(parent.pid)
    assert procs.group_members(parent.pid) == [] and procs.family(parent.pid) == []
