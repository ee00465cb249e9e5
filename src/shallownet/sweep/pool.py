"""The sweep's compute workers (``shallownet.compute``), started once per sweep (by the entry
point, before it composes anything: they import while it does): one task at a time to each, a
fresh worker in place of one that ended. Standard library only: each worker is a process of its
own with a pipe, so the launcher knows which task a dead worker held.
"""

import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from .. import procs
from ..compute import READY, STARTED

STOP_WAIT_SECONDS = 60.0  # how long workers in flight get to return what a stop left them


@dataclass
class Worker:
    proc: object  # subprocess.Popen
    conn: object  # multiprocessing.connection.Connection
    ready: bool = False  # whether it has started (its stop handlers are in place)
    task: object = None  # the key of the task it holds, if any
    started: bool = False  # whether it began that task

    @property
    def pid(self):
        return self.proc.pid


BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


_SHARED = None  # this process's pool


def start(size=2):
    """Start this process's pool of ``size`` workers now (a sweep's entry point)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Pool(size)


def shared(size):
    """This process's pool with ``size`` workers (started now if it was not)."""
    start(size)
    _SHARED.resize(size)
    return _SHARED


def close():
    """End this process's pool, if any (the sweep is over, or never needed it)."""
    global _SHARED
    pool, _SHARED = _SHARED, None
    if pool is not None:
        pool.close()


class Pool:
    def __init__(self, size):
        # the cores shared among the workers: one BLAS thread pool each would oversubscribe them
        threads = str(max(1, (os.cpu_count() or 1) // size))
        self.env = {var: os.environ.get(var, threads) for var in BLAS_THREADS}
        self.workers = [self._start() for _ in range(size)]

    def _start(self):
        return Worker(*procs.start_child("shallownet.compute", env=self.env))

    def idle(self):
        """The workers ready for a task: a run is claimed for a worker only once a signal sent
        to it would stop that run's training, not the worker's start."""
        return [w for w in self.workers if w.ready and w.task is None]

    def busy(self):
        return [w for w in self.workers if w.task is not None]

    def give(self, worker, key, task):
        """Hand ``task`` (known as ``key``) to an idle ``worker``; False if it is gone."""
        try:
            worker.conn.send(task)
        except OSError:
            self._leave(worker)
            return False
        worker.task, worker.started = key, False
        return True

    def _leave(self, worker):
        """``worker`` out of the pool, once it has exited."""
        self.workers.remove(worker)
        worker.conn.close()
        worker.proc.wait()

    def collect(self, timeout):
        """[(key, [Fitted] or None, worker)] of the tasks that ended within ``timeout`` s: None
        when the worker died holding it. A worker that ended (stopped, killed) leaves the pool
        (``refill`` starts others)."""
        ready = wait([w.conn for w in self.workers], timeout)
        done = []
        for worker in [w for w in self.workers if w.conn in ready]:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                message = None, True  # it died
            if message == READY:
                worker.ready = True
            elif message == STARTED:
                worker.started = True
            else:
                fitted, leaving = message
                if worker.task is not None:
                    done.append((worker.task, fitted, worker))
                    worker.task = None
                if leaving:  # stopped by a signal: it exits, a fresh worker takes its place
                    self._leave(worker)
        return done

    def wait_ready(self, timeout=120.0):
        """The idle workers once every worker has started (the launcher's loop needs no such wait)."""
        deadline = time.time() + timeout
        while not all(w.ready for w in self.workers) and time.time() < deadline:
            self.collect(0.1)
        return self.idle()

    def ended(self, worker):
        """Whether ``worker`` has left the pool (it was stopped or died)."""
        return worker not in self.workers

    def refill(self, size):
        """Fresh workers in place of those that ended, up to ``size``."""
        while len(self.workers) < size:
            self.workers.append(self._start())

    def resize(self, size):
        """``size`` workers: more started, or idle ones beyond it sent away."""
        self.refill(size)
        for worker in [w for w in self.workers if w.task is None][: max(len(self.workers) - size, 0)]:
            worker.proc.kill()  # it holds nothing
            self._leave(worker)

    def forward(self, signum):
        """The sweep's stop, passed on to the workers holding a task (a signal to the launcher
        alone, e.g. ``kill PID``, reaches no worker by itself)."""
        for worker in self.busy():
            try:
                os.kill(worker.pid, signum)
            except OSError:
                pass

    def drain(self, timeout=STOP_WAIT_SECONDS):
        """[(key, [Fitted] or None, worker)] of the tasks in flight, each returned within
        ``timeout`` s, else its worker killed (None)."""
        done, deadline = [], time.time() + timeout
        while self.busy() and time.time() < deadline:
            done += self.collect(min(0.5, max(deadline - time.time(), 0)))
        late = self.busy()
        for worker in late:
            worker.proc.send_signal(signal.SIGKILL)
        while any(not self.ended(w) for w in late):
            done += self.collect(1.0)
        return done

    def close(self):
        """End the workers: idle ones hold nothing, so they are killed rather than waited for."""
        for worker in list(self.workers):
            worker.proc.kill()
            self._leave(worker)
