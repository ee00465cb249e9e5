"""The jobs of a grid sweep, numbered as Hydra's BasicSweeper numbers them: what the grid and
adaptive sweepers launch (``hydra_plugins.shallownet_sweeper``) and the preflight checks."""

import itertools

from hydra.errors import HydraException


def jobs_of(overrides):
    """The grid of parsed ``overrides`` (hydra Override): [[ 'key=value', ... ] per job], the
    cartesian product of each key's values in BasicSweeper's order (the last key varies
    fastest; a key given twice keeps its first place and its last values), so that job numbers
    and output dirs are Hydra's."""
    values = {}  # key -> ['key=value', ...], in the order the keys first appear
    for o in overrides:
        key = o.get_key_element()
        if not o.is_sweep_override():
            values[key] = [f"{key}={o.get_value_element_as_str()}"]
        elif o.is_discrete_sweep():
            values[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            raise HydraException(
                f"the grid sweeper does not support sweep type {o.value_type.name}: {o.input_line}"
            )
    return [list(job) for job in itertools.product(*values.values())]
