"""Who owns a run, and whether that process still lives: what lets a run that nobody will
ever end (its process killed with -9, its machine gone) be told apart from one in progress.

A run records its owner: host, boot id, pid and the process's start time (a pid alone is
reused by the kernel; the start time and the boot id make the pair unique). On the same
machine liveness is read from /proc; for a run on another host only its heartbeat tells,
refreshed every few seconds while it runs (``shallownet.tracking.Pulse``).
"""

import ctypes
import os
import signal
import socket
from pathlib import Path

HEARTBEAT_SECONDS = 5.0
# A run on another host whose heartbeat is older than this is presumed dead: a dozen beats
# missed, so a slow store or a busy node does not declare a live run stale.
STALE_AFTER_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1


def _boot_id():
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid):
    """The process's start time in clock ticks after boot (field 22 of /proc/PID/stat), or
    None when no such process lives (zombies count as gone: they will never end a run)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and ')'
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def owner(pid=None):
    """This process (or ``pid`` on this machine) as a run's owner: a dict of strings."""
    pid = os.getpid() if pid is None else pid
    return {
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pid": str(pid),
        "start": str(_start_ticks(pid)),
    }


def owner_alive(who, heartbeat_ms, now_ms):
    """True while the owner ``who`` (from ``owner()``) may still end its run."""
    if not who:  # recorded by a version of shallownet that kept no owner: judge by age
        return heartbeat_ms is not None and now_ms - heartbeat_ms < STALE_AFTER_SECONDS * 1000
    if who.get("host") == socket.gethostname() and who.get("boot") == _boot_id():
        ticks = _start_ticks(int(who["pid"]))
        return ticks is not None and str(ticks) == who.get("start")
    if who.get("host") == socket.gethostname():  # this machine rebooted since
        return False
    return heartbeat_ms is not None and now_ms - heartbeat_ms < STALE_AFTER_SECONDS * 1000


def die_with_parent(sig=signal.SIGKILL):
    """Have the kernel send ``sig`` to this process when its parent dies (Linux only).

    A sweep's fork server and workers must not outlive a sweep killed with -9: each one
    asks for this right after it starts. Returns False where prctl is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return True


def alive(pid):
    return _start_ticks(pid) is not None
