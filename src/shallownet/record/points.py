"""Which epochs of a run's curves reach the store: at most ``tracking.max_points`` of them,
evenly spread, the same whether they are sent live (``record.pulse``) or at the end."""

import numpy as np


def subsample_steps(n, max_points):
    """At most max_points epochs out of n, evenly spread, always the first and the last."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def planned_steps(planned, max_points):
    """The epochs whose points a run of ``planned`` epochs sends to the store."""
    return subsample_steps(planned, max_points)


def recorded_steps(planned, n, max_points):
    """The epochs a run that did ``n`` of its ``planned`` epochs records: the planned ones it
    reached, and its last epoch (at most max_points in all)."""
    steps = planned_steps(planned, max_points)
    steps = steps[steps < n]
    if n and (not len(steps) or steps[-1] != n - 1):
        steps = np.append(steps[: max_points - 1], n - 1)
    return steps
