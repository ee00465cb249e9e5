"""The Hydra edge of shallownet, the only package that imports Hydra or OmegaConf: the command
line (``cli``), its check before Hydra runs (``preflight``), the schema's registration
(``schema``), the task function (``task``), the sweep's parent run and progress (``session``)
and the order a study sweeps its levels in (``study``). Everything below it takes plain values."""
