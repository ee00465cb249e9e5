"""Each default value is stated once: the schema (src/shallownet/config.py) states the primary
config's, model.SCHEDULE_DEFAULTS (src/shallownet/model/_base.py) each schedule's. No yaml file restates
them, the composed configs hold the values the harness has always run, and the model API and
a composed harness config train with the same schedule."""

from pathlib import Path

import hydra
import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from shallownet import config
from shallownet.model import MLP, SCHEDULE_DEFAULTS, SCHEDULES, train

CONF = Path(__file__).resolve().parents[1] / "src" / "shallownet" / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
SCHEDULE_OPTIONS = sorted(p.stem for p in (CONF / "lr_schedule").glob("*.yaml"))
SCHEMA = OmegaConf.to_container(OmegaConf.structured(config.TrainConfig))


def compose(*overrides):
    """The job config of ``overrides`` (no hydra node), as plain containers."""
    with hydra.initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_container(hydra.compose("train", overrides=list(overrides)))


def schedule(name, lr, **params):
    """A composed lr_schedule node: every schedule key, None unless given."""
    node = dict(name=name, lr=lr, step_size=None, gamma=None, min_lr=None, patience=None, factor=None)
    node.update(params)
    return node


# The lr_schedule node each config composes to: the values the harness has always run.
EXPECTED_SCHEDULE = {
    (): schedule("constant", 0.1),
    ("lr_schedule=constant",): schedule("constant", 0.1),
    ("lr_schedule=step",): schedule("step", 0.1, step_size=500, gamma=0.5),
    ("lr_schedule=exponential",): schedule("exponential", 0.1, gamma=0.999),
    ("lr_schedule=cosine",): schedule("cosine", 0.1, min_lr=0.0),
    ("lr_schedule=plateau",): schedule("plateau", 0.1, patience=100, factor=0.95),
    ("lr_schedule=step", "lr_schedule.gamma=0.3"): schedule("step", 0.1, step_size=500, gamma=0.3),
    ("lr_schedule=plateau", "lr_schedule.lr=0.3"): schedule("plateau", 0.3, patience=100, factor=0.95),
    ("experiment=init_x_activation",): schedule("constant", 0.3),
    ("experiment=tutorial000_activations",): schedule("constant", 0.1),
    ("experiment=tutorial001_blobs",): schedule("plateau", 1.0, patience=100, factor=0.95),
    ("experiment=tutorial001_blobs", "lr_schedule=constant"): schedule("constant", 1.0),  # its other arm
    ("experiment=tutorial001_xor",): schedule("constant", 1.0),
    ("experiment=tutorial002_quadrant",): schedule("constant", 0.5),
    ("experiment=tutorial003_toy",): schedule("constant", 0.005),
    ("experiment=tutorial000_activations", "lr_schedule=step"): schedule(
        "step", 0.1, step_size=500, gamma=0.5
    ),
}


def test_expected_schedules_cover_every_experiment_and_schedule():
    singles = {ov[0] for ov in EXPECTED_SCHEDULE if len(ov) == 1}
    assert {f"experiment={e}" for e in EXPERIMENTS} <= singles
    assert {f"lr_schedule={s}" for s in SCHEDULE_OPTIONS} <= singles
    assert set(SCHEDULE_OPTIONS) == set(SCHEDULES) == set(SCHEDULE_DEFAULTS)


@pytest.mark.parametrize("overrides", list(EXPECTED_SCHEDULE), ids=lambda ov: " ".join(ov) or "default")
def test_composed_schedule_is_the_expected_one(overrides):
    got = compose(*overrides)["lr_schedule"]
    assert got == EXPECTED_SCHEDULE[overrides]
    # same types too: an int step_size/patience, float rates
    assert all(type(got[k]) is type(v) for k, v in EXPECTED_SCHEDULE[overrides].items())


def test_default_config_is_the_schemas():
    """Without overrides every value outside the groups is the schema's, and the groups'
    values are the schema's too where a group file states nothing."""
    c = compose()
    for key in ("seed", "force", "model", "train", "tracking"):
        assert c[key] == SCHEMA[key], key
    assert c["activation"] == SCHEMA["activation"] == {"name": "tanh", "alpha": 0.01}
    assert c["lr_schedule"] == SCHEMA["lr_schedule"]
    assert c["initializer"] == SCHEMA["initializer"]


def test_train_yaml_restates_no_schema_default():
    spec = yaml.safe_load((CONF / "train.yaml").read_text())
    assert set(spec) == {"defaults", "hydra"}
    assert not {"seed", "force", "model", "train", "tracking"} & set(spec)
    assert spec["defaults"][:2] == ["train_schema", "_self_"]  # experiment files override


def test_group_files_restate_no_default():
    """activation/*.yaml and initializer/*.yaml name their option only (alpha: the schema's);
    lr_schedule/*.yaml pull in their schedule's SCHEDULE_DEFAULTS node and state no value."""
    for group in ("activation", "initializer"):
        for path in (CONF / group).glob("*.yaml"):
            assert yaml.safe_load(path.read_text()) == {"name": path.stem}, path
    for name in SCHEDULE_OPTIONS:
        spec = yaml.safe_load((CONF / "lr_schedule" / f"{name}.yaml").read_text())
        assert spec == {"defaults": [f"/schedule_defaults_{name}@_here_", "_self_"]}, name


@pytest.mark.parametrize("name", SCHEDULE_OPTIONS)
def test_composed_schedule_keys_are_the_models_table(name):
    c = compose(f"lr_schedule={name}")["lr_schedule"]
    assert {k: c[k] for k in SCHEDULE_DEFAULTS[name]} == SCHEDULE_DEFAULTS[name]
    assert config.SCHEDULE_KEYS[name] == tuple(SCHEDULE_DEFAULTS[name])
    others = {k for params in SCHEDULE_DEFAULTS.values() for k in params} - set(SCHEDULE_DEFAULTS[name])
    assert others and all(c[k] is None for k in others)  # the other schedules' keys stay unset


def stuck_rates(lr, epochs):
    """The rate of every epoch of a run whose loss never moves (a stationary point)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    net = MLP([2, 4, 1], "sigmoid", seed=0)
    net.weights = [np.zeros((2, 4)), np.zeros((4, 1))]
    return train(net, X, np.array([0, 1, 1, 0]), epochs=epochs, loss="mse", lr=lr).lr


@pytest.mark.parametrize("name", SCHEDULE_OPTIONS)
def test_schedule_default_is_one_through_the_model_and_the_harness(name):
    """{name, lr} through the model API and the composed ``lr_schedule=NAME`` config (what a
    run passes to model.train) give the same rate at every epoch."""
    harness = config.schedule_spec(compose(f"lr_schedule={name}"))
    model_rates = stuck_rates({"name": name, "lr": harness["lr"]}, 1001)
    assert np.array_equal(stuck_rates(harness, 1001), model_rates)
    if name == "step":  # the step schedule halves at epoch 500 (not 100) both ways
        assert harness == {"name": "step", "lr": 0.1, "step_size": 500, "gamma": 0.5}
        assert model_rates[499] == 0.1 and model_rates[500] == 0.05 and model_rates[1000] == 0.025
