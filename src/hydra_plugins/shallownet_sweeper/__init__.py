"""shallownet's grid sweeper: Hydra's basic sweeper without its check before launch.

Hydra's BasicSweeper composes every job's config in the launching process before it starts any
(to fail early on a bad override); then each job composes its own config again. On this
project's config one composition takes ~65 ms, so the workers of a 15-job sweep waited 1 s and
those of a 100-job sweep 6.5 s. ``shallownet-train`` checks the command line before Hydra runs
(``shallownet.preflight``): it composes only a covering set of the jobs (``preflight.covering``), enough
that every swept value is composed at least once (7 of tutorial000's 3 x 5 grid, 36 of a
3 x 34 one), and validates their values too, so this sweeper checks nothing again.
Selected by conf/hydra/sweeper/grid.yaml, which hparams_search=grid (the default) picks.
"""

import dataclasses

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from .compose_once import ComposeOnce


class ShallownetSweeper(BasicSweeper):
    def setup(self, *, hydra_context, task_function, config):
        """Hydra's set-up, with the jobs composed once per choice of groups (compose_once)."""
        loader = ComposeOnce(hydra_context.config_loader)
        context = dataclasses.replace(hydra_context, config_loader=loader)
        super().setup(hydra_context=context, task_function=task_function, config=config)

    def validate_batch_is_legal(self, batch):
        """Already done by shallownet.preflight, before anything was recorded."""

    def split_arguments(self, overrides, max_batch_size):
        """Hydra's batches of jobs, the seeds of each configuration stacked (shallownet.stacking)."""
        from shallownet.stacking import stack_seeds

        per_job = int(self.config.get("stack_seeds", 1))
        return [stack_seeds(b, per_job) for b in BasicSweeper.split_arguments(overrides, max_batch_size)]


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
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from shallownet import adaptive, sweep
        from shallownet.stacking import runs_in

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        grid = [
            o
            for o in parser.parse_overrides(self._parse_config() + list(arguments))
            if o.key_or_group != "seed"
        ]  # the seeds are this sweeper's to choose
        session = sweep.current_session()
        session.record_rule(self.rule.params())
        done, job, launched, returns = 0, 0, 0, []
        for round_no, seeds in enumerate(self.rule.rounds(), start=1):
            seed = parser.parse_override(f"seed=range({done},{seeds})")
            batch = [j for b in self.split_arguments(grid + [seed], None) for j in b]
            runs = sum(runs_in(j) for j in batch)
            session.expect(launched + runs)
            returns.append(self.launcher.launch(batch, initial_job_idx=job))
            launched += runs
            job += len(batch)
            if adaptive.after_round(session, self.rule, round_no, seeds):
                break
            done = seeds
        return returns
