"""shallownet's structured config, registered with Hydra: the schema ``conf/train.yaml`` names
(``train_schema``), one node of defaults per learning-rate schedule, and the resolver of the
default store. ``register`` is idempotent; Hydra calls it through the search-path plugin
(``hydra_plugins.shallownet_sweeper``) before it composes any config, in any process."""

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from ..record import store
from ..config import TrainConfig
from ..model import SCHEDULE_DEFAULTS


def register():
    cs = ConfigStore.instance()
    if not OmegaConf.has_resolver("shallownet.default_store"):
        OmegaConf.register_new_resolver("shallownet.default_store", store.default_uri)
    cs.store(name="train_schema", node=TrainConfig)
    # One node per schedule, e.g. schedule_defaults_step = {name: step, step_size: 500, gamma:
    # 0.5}, that conf/lr_schedule/NAME.yaml pulls in (/schedule_defaults_NAME@_here_ in its
    # defaults list). Stored without a group: a group would be listed in --help as one more
    # choice to make.
    for name, defaults in SCHEDULE_DEFAULTS.items():
        cs.store(name=f"schedule_defaults_{name}", node={"name": name, **defaults})
