"""Bad input is refused before anything is recorded: one line, exit code 2, no run, no parent.

``shallownet-train`` calls ``check(argv)`` before handing the command line to Hydra. It
composes the config every job will run (for a grid sweep a covering set of the jobs that
the sweeper's ``jobs_of`` lists, so that every swept value is composed once: 7 of
tutorial000's 15) with Hydra's own compose API and validates each with ``config.validate``. Hydra's errors (an unknown key or group
option, a value of the wrong type, an override it cannot parse) become one line that names
the key and the valid choices, instead of Hydra's exit code 1, the code of a failed run.
"""

import argparse
import re

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ValidationError

from .. import config
from .grid import jobs_of  # the grid the sweeper will run
from ..hints import did_you_mean
from ..job import RunError

# Hydra's own flags that print something instead of running: nothing to validate
INFORMATIONAL = ("help", "hydra_help", "cfg", "info", "shell_completion", "version")


def args_parser():
    """The command line as Hydra 1.3's @hydra.main reads it (the same options, hydra's
    ``get_args_parser``), only to find the overrides, the multirun flag and the config's name
    and dir: Hydra parses it again itself, and prints its own help, version or errors."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    flags = {
        ("--help", "-h"): {},
        ("--hydra-help",): {},
        ("--version",): {},
        ("--resolve",): {},
        ("--run", "-r"): {},
        ("--multirun", "-m"): {},
        ("--shell-completion", "-sc"): {},
    }
    for names, extra in flags.items():
        parser.add_argument(*names, action="store_true", **extra)
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    parser.add_argument("--package", "-p")
    parser.add_argument("--config-path", "-cp")
    parser.add_argument("--config-name", "-cn")
    parser.add_argument("--config-dir", "-cd")
    parser.add_argument("--experimental-rerun")
    info = ["all", "config", "defaults", "defaults-tree", "plugins", "searchpath"]
    parser.add_argument("--info", "-i", const="all", nargs="?", choices=info)
    return parser


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


def check(argv, config_dir=None):
    """Raise RunError(2) if any job of this command line would be refused."""
    try:
        args, unknown = args_parser().parse_known_args(argv)
    except argparse.ArgumentError:
        return  # a malformed Hydra option: Hydra's own parser says what is wrong with it
    if unknown or any(getattr(args, flag, None) for flag in INFORMATIONAL):
        return
    try:
        config.check_override_keys(args.overrides)
        with _initialize(config_dir or args.config_dir):
            base, jobs = _jobs(args, covering)
            for cfg in _composed(args.config_name or "train", base, jobs):
                config.validate(OmegaConf.to_container(cfg, resolve=True))
    except config.ConfigError as err:
        raise RunError(2, "CONFIG_ERROR", f"config error: {err}") from None
    except (ConfigCompositionException, OverrideParseException, ValidationError) as err:
        raise RunError(2, "CONFIG_ERROR", f"config error: {explain(err)}") from None


def _initialize(config_dir):
    """Hydra's compose API on the given config directory, or on the tree shipped in the package."""
    if config_dir:
        return initialize_config_dir(config_dir=config_dir, version_base="1.3")
    return initialize_config_module(config_module=config.CONF_MODULE, version_base="1.3")


def _jobs(args, covering):
    """(the sweep's config or None, the override lists of the jobs to validate): the run
    itself, or a covering set of a grid sweep's jobs (every value of every swept key at least
    once)."""
    parser = OverridesParser.create()
    given = parser.parse_overrides(args.overrides)
    plain = [o.input_line for o in given if not o.is_sweep_override()]
    if not args.multirun:
        return None, [args.overrides]
    base = compose(args.config_name or "train", overrides=plain, return_hydra_config=True)
    if "optuna" in str(OmegaConf.select(base, "hydra.sweeper._target_", default="")):
        return base, [plain]  # a search space, not a grid: the trials' values are Optuna's to pick
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    lines = [f"{k}={v}" for k, v in params.items()] + list(args.overrides)
    merged = {}
    for o in parser.parse_overrides(lines):  # the command line wins over the experiment file
        merged[o.key_or_group] = o
    return base, covering(jobs_of(list(merged.values())))


def _composed(name, base, jobs):
    """Each job's config as Hydra composes it (without the hydra node): a sweep's jobs with
    the command line's hydra.* overrides too (``base`` holds them), as the launcher will."""
    if base is None:
        yield compose(name, overrides=jobs[0])
        return
    hydra_lines, parser = list(base.hydra.overrides.hydra), OverridesParser.create()
    for job in jobs:
        task = [o.input_line for o in parser.parse_overrides(job) if not o.is_hydra_override()]
        yield compose(name, overrides=hydra_lines + task)


def explain(err):
    """One line for one of Hydra's composition errors: the key, and what would be valid."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        choices = ", ".join(err.options or [])
        hint = did_you_mean(option, err.options or [])
        return f"{group}={option}: no such option{hint}; valid choices: {choices}"
    if isinstance(err, OverrideParseException):
        return f"cannot parse {err.override!r}: {err.message.splitlines()[0]}"
    cause = err.__cause__ if err.__cause__ is not None else err
    if isinstance(cause, ConfigAttributeError) and getattr(cause, "full_key", None):
        key = cause.full_key
        hint = did_you_mean(key, config.schema_keys())
        if "." not in key:
            valid = ", ".join(
                sorted({f.name for f in config.fields(config.TrainConfig)} | {"experiment", "hparams_search"})
            )
            return f"unknown key '{key}'{hint}; valid keys and groups: {valid}"
        return f"unknown key '{key}'{hint}"
    if isinstance(cause, ValidationError) and "is not a ListConfig" in str(cause):
        key = getattr(cause, "full_key", "") or "?"
        return f"{key}: needs a list, e.g. {key}=[8] (one hidden layer of 8) or {key}=[16,8]"
    if isinstance(cause, ValidationError):
        message = re.sub(
            r"^Value (.*) of type '(\w+)' could not be converted to (\w+)$",
            r"\1 is not of type \3",
            str(cause).splitlines()[0],
        )
        return f"{getattr(cause, 'full_key', '') or '?'}: {message}"
    first = str(err).splitlines()[0]
    if first.startswith("Ambiguous value for argument"):  # Hydra's own advice, in one line
        key = first.split("'")[1].split("=")[0] if "'" in first else "key"
        return (
            f"{first}: to sweep over it add -m (--multirun); as a list write {key}=[a,b]; "
            f"as one string quote it: {key}=\\'a,b\\'"
        )
    return first
