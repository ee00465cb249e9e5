"""A run's pulse while it trains, from the process that trains it (no MLflow here)."""

import threading

import numpy as np

from ..names import METRIC_KEYS
from .points import planned_steps


class Pulse:
    """While a run trains: its heartbeat every few seconds (so that a run on another host
    whose process died can be told from a live one) and, for a long run, the metric points
    measured so far, so that the MLflow UI shows its curves before it ends. A run shorter
    than one beat sends nothing. The points sent are the ones the final record logs too
    (``planned_steps``), so the finished record is the same as without live logging.
    ``recorder.live`` writes them."""

    def __init__(self, recorder, run_id, curves, max_points, beat=None, on_beat=None):
        from ..procs import HEARTBEAT_SECONDS

        self.recorder, self.run_id, self.curves = recorder, run_id, curves
        self.steps = planned_steps(curves.planned, max_points)
        self.sent = 0  # how many of self.steps are in the store
        self.beat = beat or HEARTBEAT_SECONDS
        self.on_beat = on_beat  # e.g. a progress line for a single run
        self._stop = threading.Event()
        self._thread = None
        self.error = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, name="shallownet-pulse", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while not self._stop.wait(self.beat):
            try:
                self.flush()
            except Exception as err:  # a slow or absent store must not stop the training
                self.error = str(err).splitlines()[0] if str(err) else type(err).__name__
            if self.on_beat:
                self.on_beat(self.curves)

    def flush(self):
        new = self.steps[self.sent : np.searchsorted(self.steps, self.curves.n)]
        values = {k: self.curves.values[k][new] for k in METRIC_KEYS}  # (len(new),) each
        self.recorder.live(self.run_id, new, values)
        self.sent += len(new)
