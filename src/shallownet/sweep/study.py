"""What a study file sweeps: the levels of each key, in the order its experiment file lists them
(``hydra.sweeper.params``, read with Hydra's own override parser)."""

from importlib import resources

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf


def swept_values(study: str | None) -> dict:
    """{override key: [value as str, ...]} of conf/experiment/<study>.yaml's sweep ({} if none)."""
    if not study:
        return {}
    path = resources.files("shallownet") / "conf" / "experiment" / f"{study}.yaml"
    if not path.is_file():
        return {}
    params = OmegaConf.select(OmegaConf.load(str(path)), "hydra.sweeper.params") or {}
    parser = OverridesParser.create()
    out = {}
    for key, value in params.items():
        override = parser.parse_override(f"{key}={value}")
        values = override.sweep_iterator() if override.is_sweep_override() else [override.value()]
        out[str(key)] = [str(v) for v in values]
    return out
