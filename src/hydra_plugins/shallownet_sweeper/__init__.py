"""shallownet's grid sweeper, on Hydra's public plugin API, with no check before launch.

Hydra's BasicSweeper composes every job's config in the launching process before it starts any
(to fail early on a bad override); then each job composes its own config again. On this
project's config one composition takes ~65 ms, so the workers of a 15-job sweep waited 1 s and
those of a 100-job sweep 6.5 s. ``shallownet-train`` checks the command line before Hydra runs
(``shallownet.sweep.preflight``): it composes a covering set of the jobs that ``jobs_of`` lists
(``preflight.covering``), enough that every swept value is composed at least once, and
validates their values too. So this sweeper validates nothing itself: its jobs are checked by
the preflight, by design, not skipped. Selected by conf/hydra/sweeper/grid.yaml, which
hparams_search=grid (the default) picks.
"""

from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

from shallownet.sweep.grid import jobs_of  # the grid, shared with the preflight


class ShallownetSchema(SearchPathPlugin):
    """Registers shallownet's structured config (``shallownet.sweep.schema``): Hydra calls every
    search-path plugin before it composes a config, in whichever process composes it."""

    def manipulate_search_path(self, search_path):
        from shallownet.sweep.schema import register

        register()


def batches(jobs, size):
    """``jobs`` in batches of ``size`` (None or -1: one batch)."""
    size = len(jobs) if size in (None, -1) else int(size)
    return [jobs[i : i + size] for i in range(0, len(jobs), size)] or [[]]


class ShallownetSweeper(Sweeper):
    def __init__(self, max_batch_size=None, params=None):
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.hydra_context = self.config = self.launcher = None

    def setup(self, *, hydra_context, task_function, config):
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def parse(self, arguments):
        """The sweep's overrides: the sweeper's params (an experiment's), then the command line's."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        return parser, parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()] + list(arguments))

    def save_config(self):
        """multirun.yaml in the sweep dir, as Hydra's sweepers write it."""
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

    def stacked(self, jobs):
        """The grid's jobs with the seeds of each configuration merged, ``stack_seeds`` to a
        job (the study files set it; shallownet.stacking)."""
        from shallownet.stacking import stack_seeds

        return stack_seeds(jobs, int(self.config.get("stack_seeds", 1)))

    def sweep(self, arguments):
        """Every job of the grid, in batches of max_batch_size: [[JobReturn] per batch]."""
        _, overrides = self.parse(arguments)
        self.save_config()
        returns, job = [], 0
        for batch in batches(self.stacked(jobs_of(overrides)), self.max_batch_size):
            results = self.launcher.launch(batch, initial_job_idx=job)
            for r in results:
                _ = r.return_value  # raises the job's exception, as BasicSweeper does
            job += len(batch)
            returns.append(results)
        return returns


class AdaptiveSweeper(ShallownetSweeper):
    """The study's grid in rounds of seeds until its named comparisons are decided by
    shallownet.adaptive's anytime-valid sequential test: seeds 0..min_seeds-1 first, then
    ``step`` more per round, up to ``max_seeds`` (Rule.rounds). Selected by
    hparams_search=adaptive."""

    def __init__(
        self,
        max_batch_size=None,
        params=None,
        compare=(),
        min_seeds=5,
        step=3,
        max_seeds=30,
        target_width=None,
        alpha=0.05,
    ):
        super().__init__(max_batch_size=max_batch_size, params=params)
        from shallownet.adaptive import Rule

        self.rule = Rule(
            list(compare),
            int(min_seeds),
            int(step),
            int(max_seeds),
            None if target_width is None else float(target_width),
            float(alpha),
        )

    def sweep(self, arguments):
        from shallownet import adaptive
        from shallownet.stacking import runs_in
        from shallownet.sweep import session as sweep

        parser, overrides = self.parse(arguments)
        grid = [o for o in overrides if o.key_or_group != "seed"]  # the seeds are this sweeper's
        self.save_config()
        session = sweep.current_session()
        session.record_rule(self.rule.params())
        done, job, runs, returns = 0, 0, 0, []
        for round_no, seeds in enumerate(self.rule.rounds(), start=1):
            batch = self.stacked(jobs_of(grid + [parser.parse_override(f"seed=range({done},{seeds})")]))
            runs += sum(runs_in(j) for j in batch)  # a round's new seeds: new slices, new runs
            session.expect(runs)
            returns.append(self.launcher.launch(batch, initial_job_idx=job))
            job += len(batch)
            if adaptive.after_round(session, self.rule, round_no, seeds):
                break
            done = seeds
        return returns
