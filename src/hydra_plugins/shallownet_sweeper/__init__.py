"""shallownet's grid sweeper: Hydra's basic sweeper without its check before launch.

Hydra's BasicSweeper composes every job's config in the launching process before it starts any
(to fail early on a bad override); then each job composes its own config again. On this
project's config one composition takes ~65 ms, so the workers of a 15-job sweep waited 1 s and
those of a 100-job sweep 6.5 s. ``shallownet-train`` checks the command line before Hydra runs
(``experiments.preflight``): it composes only a covering set of the jobs (``covering``), enough
that every swept value is composed at least once (7 of tutorial000's 3 x 5 grid, 36 of a
3 x 34 one), and validates their values too, so this sweeper checks nothing again.
Selected by conf/hydra/sweeper/grid.yaml, which hparams_search=grid (the default) picks.
"""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


def covering(batch):
    """The jobs of ``batch`` (each a list of 'key=value' overrides), in order, that first hold
    one of its overrides: between them they hold every override of the batch."""
    missing = {o for job in batch for o in job}
    chosen = []
    for job in batch:
        if missing.intersection(job):
            chosen.append(job)
            missing.difference_update(job)
    return chosen


class ShallownetSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch):
        """Already done by experiments.preflight, before anything was recorded."""
