"""A validated config becomes one frozen, typed RunConfig that carries what is derived from it;
the run path reads its fields, not string keys (tests/test_structure.py keeps fit free of the
harness)."""

import dataclasses

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from shallownet import config, datasets


def composed(*overrides):
    with initialize_config_module(config_module=config.CONF_MODULE, version_base="1.3"):
        c = config.validate(OmegaConf.to_container(compose("train", overrides=list(overrides)), resolve=True))
    for key in ("seeds", "stack_seeds", "force"):
        c.pop(key)
    c["dataset"] = datasets.resolved(c["dataset"])
    return c


def test_a_run_config_is_typed_frozen_and_carries_what_is_derived_from_it():
    c = composed("activation=relu", "lr_schedule=step", "model.hidden_sizes=[8,4]", "seed=3")
    run = config.RunConfig.of(c, lambda chash: f"key-of-{chash}", [("activation", "relu"), ("seed", "3")])
    assert (run.activation, run.seed, run.hidden_sizes, run.epochs) == ("relu", 3, (8, 4), 2000)
    assert run.schedule == config.schedule_spec(c) and run.schedule["name"] == "step"
    assert run.config_hash == config.config_hash(c) and run.run_key == f"key-of-{run.config_hash}"
    assert (run.name, run.label) == ("relu-s3", config.run_name(c))
    assert run.tracking.max_points == c["tracking"]["max_points"] and run.force is False
    assert run.params == sorted(config.flatten(c).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.seed = 4
