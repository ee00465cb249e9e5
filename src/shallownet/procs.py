"""Who owns a run, and whether that process still lives: what lets a run that nobody will
ever end (its process killed with -9, its machine gone) be told apart from one in progress.

A run records its owner: host, boot id, pid and the process's start time (a pid alone is
reused by the kernel; the start time and the boot id make the pair unique). On the same
machine liveness comes from psutil; for a run on another host only its heartbeat tells,
refreshed every few seconds while it runs (``shallownet.record.tracking.Pulse``).
"""

import ctypes
import os
import signal
import socket
from pathlib import Path

import psutil

HEARTBEAT_SECONDS = 5.0
# A run on another host whose heartbeat is older than this is presumed dead: a dozen beats
# missed, so a slow store or a busy node does not declare a live run stale.
STALE_AFTER_SECONDS = 60.0
# psutil's start time is boot time (whole seconds, moved by a clock step) + ticks since boot:
# two processes reading one start time may differ by this much
START_TOLERANCE_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def _boot_id():
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process(pid):
    """The live process ``pid`` (psutil.Process), or None when it is gone or a zombie (a
    zombie will never end a run)."""
    try:
        proc = psutil.Process(int(pid))
        return None if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD) else proc
    except (psutil.Error, ValueError, TypeError):
        return None


def _start_time(pid):
    proc = _process(pid)
    try:
        return None if proc is None else proc.create_time()
    except psutil.Error:
        return None


def owner(pid=None):
    """This process (or ``pid`` on this machine) as a run's owner: a dict of strings."""
    pid = os.getpid() if pid is None else pid
    return {
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pid": str(pid),
        "start": repr(_start_time(pid)),
    }


def _same_start(recorded, now):
    try:
        return now is not None and abs(float(recorded) - now) < START_TOLERANCE_SECONDS
    except (TypeError, ValueError):  # "None", or no start recorded
        return False


def owner_alive(who, heartbeat_ms, now_ms):
    """True while the owner ``who`` (from ``owner()``) may still end its run."""
    if not who:  # recorded by a version of shallownet that kept no owner: judge by age
        return heartbeat_ms is not None and now_ms - heartbeat_ms < STALE_AFTER_SECONDS * 1000
    if who.get("host") == socket.gethostname() and who.get("boot") == _boot_id():
        return _same_start(who.get("start"), _start_time(who["pid"]))
    if who.get("host") == socket.gethostname():  # this machine rebooted since
        return False
    return heartbeat_ms is not None and now_ms - heartbeat_ms < STALE_AFTER_SECONDS * 1000


def die_with_parent(sig=signal.SIGKILL):
    """Have the kernel send ``sig`` to this process when its parent dies (Linux only).

    A sweep's pool workers must not outlive a sweep killed with -9: each one asks for this
    right after it starts. Returns False where prctl is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return True


def alive(pid):
    """True while ``pid`` lives (a zombie does not)."""
    return bool(pid) and _process(pid) is not None


def group_members(pgid):
    """Live pids whose process group is ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and alive(proc.pid):
                members.append(proc.pid)
        except OSError:
            continue
    return members


def end(procs, timeout=15.0):
    """SIGTERM ``procs`` (psutil.Process), wait up to ``timeout`` s, SIGKILL what is left and
    wait for it. Returns the pids still alive after that (normally none)."""
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(procs, timeout=timeout)
    for proc in left:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(left, timeout=5)
    return [p.pid for p in left]


def family(pid):
    """``pid``, its descendants and, when it leads a process group, the rest of that group
    (children orphaned by a parent that died stay in it): psutil.Process objects, [] when
    ``pid`` is gone."""
    proc = _process(pid)
    try:
        found = [] if proc is None else [proc, *proc.children(recursive=True)]
        if found and os.getpgid(proc.pid) == proc.pid:
            found += [psutil.Process(p) for p in group_members(proc.pid) if p not in {f.pid for f in found}]
        return found
    except (psutil.Error, OSError):
        return []


def start_child(module, *args, env=None):
    """A helper process of this one (the recorder, a compute worker) that calls
    ``module.main([_, FD, PPID, *args])``, and the Connection to it (FD is its end of a socket
    pair), with ``env`` added to its environment. Not ``python -m module``: what it pickles must name its module, not ``__main__``. It
    starts with the stop signals blocked, so that none reaches it half started: its first
    instructions decide what they do (``child_begins``)."""
    import subprocess
    import sys
    from multiprocessing.connection import Connection

    from .stop import SIGNALS

    ours, theirs = socket.socketpair()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import sys; from {module} import main; main(sys.argv)",
                str(theirs.fileno()),
                str(os.getpid()),
                *map(str, args),
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        theirs.close()
    return proc, Connection(ours.detach())


def child_begins(argv):
    """In a process ``start_child`` started: die with the parent (even one killed with -9) and
    return the Connection to it. Exits at once if the parent is already gone."""
    from multiprocessing.connection import Connection

    die_with_parent()
    if os.getppid() != int(argv[2]):
        os._exit(0)  # the parent died before we asked to die with it
    return Connection(int(argv[1]))
