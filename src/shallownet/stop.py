"""Ctrl-C, SIGTERM and SIGHUP: a request to stop that no phase of a run can lose.

SIGINT (Ctrl-C), SIGTERM (what kill, systemd, docker, SLURM and CI send) and SIGHUP (the
terminal closed, the ssh session dropped) are one request: the first one is remembered for
the whole process, so a library that swallows the KeyboardInterrupt it raises cannot turn an
interrupted run into a FINISHED one. While the process writes its record (``deferred()``:
opening the store, creating the run, the final batch, closing a sweep) a signal only sets the
flag, and the writer ends the run KILLED afterwards; everywhere else the first one raises
KeyboardInterrupt at once. The ones after it change nothing: the stop is under way, and an
interrupt raised again (Ctrl-C pressed twice) would break off the record being written.

    STOP.install()              # once, in the main thread of a process that records runs
    with STOP.deferred():
        ...write...
    if STOP.requested: ...end KILLED...
"""

import contextlib
import os
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# SLURM warns a job of its time limit with SIGUSR2 (submitit asks for it with --signal), then
# sends SIGTERM, and SIGKILL after KillWait: all three are a stop here, recorded KILLED.
SLURM_SIGNALS = (signal.SIGUSR2,)
WHY = {
    signal.SIGINT: "Ctrl-C",
    signal.SIGHUP: "its terminal hung up",
    signal.SIGUSR2: "SLURM's time-limit warning",
}


class Stop:
    def __init__(self):
        self.signum = None  # the first signal received, if any
        self._deferring = 0
        self._hooks = []  # called once, on the first signal (a sweep forwards it to its jobs)
        self._held = False

    @property
    def requested(self):
        return self.signum is not None

    @property
    def exit_code(self):
        """The shell's convention: 128 + the signal's number (130 Ctrl-C, 143 SIGTERM, 129
        SIGHUP)."""
        return 128 + (self.signum or signal.SIGINT)

    @property
    def name(self):
        return signal.Signals(self.signum or signal.SIGINT).name

    def install(self):
        """Take SIGINT, SIGTERM and SIGHUP (and, in a SLURM job, SIGUSR2) in this process, in place of
        any handler of submitit's (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        slurm = os.environ.get("SUBMITIT_EXECUTOR") == "slurm"
        for sig in SIGNALS + (SLURM_SIGNALS if slurm else ()):
            signal.signal(sig, self._handle)

    def describe(self):
        """What stopped the run, for its failure_reason: 'SIGTERM', 'SIGINT (Ctrl-C)', ..."""
        text = self.name + (f" ({WHY[self.signum]})" if self.signum in WHY else "")
        job = os.environ.get("SLURM_JOB_ID")
        return text + (f", SLURM job {job}" if job and os.environ.get("SUBMITIT_EXECUTOR") == "slurm" else "")

    def hold(self):
        """Defer signals until ``release()``: while a process imports its heavy modules a
        KeyboardInterrupt would surface as a traceback from the middle of an import."""
        if not self._held:
            self._held = True
            self._deferring += 1

    def release(self):
        if self._held:
            self._held = False
            self._deferring -= 1

    def on_first_signal(self, hook):
        self._hooks.append(hook)

    def _handle(self, signum, frame):
        if self.signum is not None:
            return  # the stop is under way: a second Ctrl-C must not break off its record
        self.signum = signum
        for hook in self._hooks:
            hook(signum)
        if self._deferring == 0:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self):
        """A block a signal does not break: it finishes, and the caller reads ``requested``."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1

    def check(self):
        """Raise KeyboardInterrupt if a stop was requested (and swallowed somewhere)."""
        if self.requested and self._deferring == 0:
            raise KeyboardInterrupt


STOP = Stop()
