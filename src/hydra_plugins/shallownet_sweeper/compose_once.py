"""A sweep's jobs composed once per choice of config groups, not once per job.

Hydra composes every job of a sweep from scratch in the process that runs it: the defaults
tree, every config file, the schema, the merges. On this project's config that is ~0.12 s of
CPU per job, as much as training one tutorial network. But the jobs of a grid differ mostly in
values (``seed=0..4``, ``lr_schedule.lr=...``), and those Hydra applies last, onto the config
the groups composed (``ConfigLoaderImpl._apply_overrides_to_config``). ``ComposeOnce`` wraps
Hydra's loader: it composes each distinct choice of groups once per process with Hydra itself
and makes every job a copy (~4 ms) with the job's value overrides applied by Hydra's own code,
and its ``hydra.overrides`` and ``override_dirname`` as Hydra would write them. A pool worker
keeps what it composed across jobs (``_COMPOSED``), so tutorial000's 15 jobs compose 3 configs
per worker instead of ~8. Anything else (groups, ``+``/``~`` overrides, ``hydra.*``, a value
override touching a key another override touches) is part of what is composed by Hydra.
``tests/test_compose_once.py`` compares every job of every experiment with Hydra's own result.
"""

import copy
import functools

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.types import RunMode
from omegaconf import OmegaConf

# (config name, the overrides Hydra composes) -> that composed config, in this process
_COMPOSED = {}


class ComposeOnce:
    """Hydra's config loader, but ``load_sweep_config`` reuses the groups' composition."""

    def __init__(self, loader, cache=None):
        self._loader = loader
        # None: the process's _COMPOSED, looked up at each use, so that a pool worker's jobs
        # (each unpickling its own loader) share it; shallownet-train's preflight, which
        # composes under another job name before Hydra runs, passes a cache of its own
        self._cache = cache

    def __getattr__(self, name):
        # Everything else is Hydra's loader. Dunder and own names never recurse (pickle looks
        # for __setstate__ before _loader exists).
        if name.startswith("__") or name in ("_loader", "_cache"):
            raise AttributeError(name)
        return getattr(self._loader, name)

    def load_sweep_config(self, master_config, sweep_overrides):
        name = master_config.hydra.job.config_name
        lines = list(master_config.hydra.overrides.hydra) + list(sweep_overrides)
        parsed = _parser().parse_overrides(overrides=lines)
        # The loader's repository knows the groups of conf/ and the schema; a searchpath
        # added by a config could add more: then Hydra composes every job itself.
        repo = self._loader.repository
        values = [o for o in parsed if _is_value(o, repo)]
        composed = [o for o in parsed if not any(o is v for v in values)]
        if master_config.hydra.searchpath or _overlap(values, composed):
            return self._loader.load_sweep_config(master_config, sweep_overrides)
        cfg = copy.deepcopy(self._composition(name, [o.input_line for o in composed]))
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        _record_overrides(cfg, parsed)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)  # as load_sweep_config
        return cfg

    def _composition(self, name, lines):
        cache, key = _COMPOSED if self._cache is None else self._cache, (name, tuple(lines))
        if key not in cache:
            cache[key] = self._loader.load_configuration(
                config_name=name, overrides=lines, run_mode=RunMode.RUN
            )
        return cache[key]


@functools.cache
def _parser():
    return OverridesParser.create()


def _is_value(override, repo):
    """A plain ``key=value`` of the config (not of a group, not hydra.*, not +, ++ or ~)."""
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and not override.is_hydra_override()
        and not override.is_sweep_override()
        and not repo.group_exists(override.key_or_group)
        and not isinstance(override.value(), dict)
    )


def _overlap(values, composed):
    """Whether a value override's key is, contains or lies in another override's key: then the
    order in which Hydra applies them matters, and the job is composed in full."""
    keys = [o.key_or_group for o in composed]
    seen = set()
    for o in values:
        k = o.key_or_group
        if k in seen or any(k == c or k.startswith(c + ".") or c.startswith(k + ".") for c in keys):
            return True
        seen.add(k)
    return False


def _record_overrides(cfg, parsed):
    """``hydra.overrides`` and ``hydra.job.override_dirname`` of the whole job, as Hydra's
    ``_load_configuration_impl`` writes them (the copy holds the composed overrides' only)."""
    task = [o for o in parsed if not o.is_hydra_override()]
    cfg.hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
    cfg.hydra.overrides.task = [o.input_line for o in task]
    dirname = cfg.hydra.job.config.override_dirname
    cfg.hydra.job.override_dirname = get_overrides_dirname(
        overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
    )
