"""The recorder in a process of its own (``record.recorder``), and the handle that calls it.

``RemoteRecorder.start()`` launches it at once: it imports MLflow while this process composes
the config, loads the data and trains, which never import MLflow. Its methods are the
recorder's (``open``, ``claim``, ``live``, ``load_scoring``, ``record``, ``log_files``,
``end``), each a request on a pipe and its answer; a failure there raises ``RecorderError``
with the recorder's one line. A request made with ``submit`` returns a ``Pending`` whose
``result()`` waits for the answer, so that this process can go on meanwhile.

The recorder ignores the stop signals (a Ctrl-C reaches the whole process group): this process
decides, and tells it how each run ends. It dies with this process, even one killed with -9.
"""

import itertools
import subprocess
import threading

from .. import procs


class RecorderError(RuntimeError):
    """The recorder could not do what it was asked (its first line), or is gone."""


class Pending:
    def __init__(self, remote, rid):
        self.remote, self.rid = remote, rid

    def result(self):
        return self.remote._answer(self.rid)


class RemoteRecorder:
    def __init__(self, proc, conn):
        self.proc, self.conn = proc, conn
        self.ids = itertools.count()
        self.lock = threading.Lock()  # the pulse thread and the main thread share the pipe
        self.answers = {}

    @classmethod
    def start(cls):
        """The recorder's process, started now."""
        return cls(*procs.start_child("shallownet.record.recorder"))

    # ------------------------------------------------------------------ the recorder's methods

    def open(self, tr, experiment_id=None):
        return self.call("open", tr, experiment_id)

    def claim(self, experiment_id, ticket):
        return self.call("claim", experiment_id, ticket)

    def live(self, run_id, steps, values):
        return self.call("live", run_id, steps, values)

    def record(self, experiment_id, run_id, rec):
        return self.call("record", experiment_id, run_id, rec)

    def log_files(self, run_id, folder):
        return self.call("log_files", run_id, folder)

    def end(self, run_id, status, tags=None):
        return self.call("end", run_id, status, tags)

    # ------------------------------------------------------------------ the pipe

    def call(self, method, *args):
        return self.submit(method, *args).result()

    def submit(self, method, *args):
        rid = next(self.ids)
        with self.lock:
            try:
                self.conn.send((rid, method, args))
            except OSError:
                raise RecorderError(self._gone()) from None
        return Pending(self, rid)

    def _answer(self, rid):
        with self.lock:
            while rid not in self.answers:
                try:
                    got, ok, value = self.conn.recv()
                except (EOFError, OSError):
                    raise RecorderError(self._gone()) from None
                self.answers[got] = ok, value
            ok, value = self.answers.pop(rid)
        if not ok:
            kind, line = value
            raise RecorderError(line)
        return value

    def _gone(self):
        code = self.proc.poll()
        return (
            f"the recorder's process ended (exit code {code})"
            if code is not None
            else "the recorder's pipe broke"
        )

    def close(self):
        """Let the recorder finish what it was asked and exit."""
        try:
            self.call("close")
        except RecorderError:
            pass
        self.conn.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# A recorder started by the entry point before it composes the config of a single run, for that
# run (``take``): its import of MLflow overlaps the compose, the data and the training.
_EARLY = None


def start_early():
    global _EARLY
    _EARLY = RemoteRecorder.start()


def take():
    """The recorder started early, now the caller's to close (None if none was started)."""
    global _EARLY
    recorder, _EARLY = _EARLY, None
    return recorder


def discard():
    """End a recorder started early that no run took (bad input, --help): it recorded nothing."""
    recorder = take()
    if recorder is not None:
        recorder.conn.close()
        recorder.proc.kill()
        recorder.proc.wait()
