"""Every experiment file composes to what it says: its values reach the job config.

For each ``conf/experiment/*.yaml`` the job config is composed with Hydra's compose API and
compared with the file itself (read as plain YAML): every leaf the file sets, every group
option its defaults list picks (and that option's own values, unless the file overrides them)
must be in the composed config (an option's values include those of the ConfigStore nodes it
pulls in, e.g. a schedule's SCHEDULE_DEFAULTS). ``conf/train.yaml`` once listed ``_self_``
last, so its own ``model:``/``train:`` values (the schema states them now) silently replaced
every experiment's; the mutation test below writes such values into a copy of ``conf/``,
moves ``_self_`` back to the end and checks that the comparison then fails. The sweep grids
and the values each study runs are pinned as the README's table describes them (the
tutorials' settings, or a commented departure).
"""

import functools
import math
import shutil
from pathlib import Path

import hydra
import pytest
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import shallownet.config  # noqa: F401  registers the train_schema that conf/train.yaml needs

CONF = Path(__file__).resolve().parents[1] / "src" / "shallownet" / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


# ----------------------------------------------------------------------------- helpers
def compose(name, conf_dir=CONF):
    """The composed config (hydra node included) of ``experiment=name``, as plain containers."""
    with hydra.initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = hydra.compose("train", overrides=[f"experiment={name}"], return_hydra_config=True)
    return OmegaConf.to_container(cfg, resolve=False)


@functools.lru_cache(maxsize=None)
def composed(name):
    return compose(name)


def leaves(node, prefix=""):
    """{'a.b': value} for every leaf of a nested mapping (lists are leaves)."""
    out = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(leaves(value, path + "."))
        else:
            out[path] = value
    return out


def lookup(cfg, path):
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def sweep_values(key, value):
    """The values a sweep override ``key=value`` expands to (Hydra's own parser)."""
    override = OverridesParser.create().parse_override(f"{key}={value}")
    if override.is_sweep_override():
        return list(override.sweep_iterator())
    return [override.value()]


def picked_groups(defaults):
    """{group: option} from an experiment's defaults list (``override /group: option``)."""
    picks = {}
    for entry in defaults:
        if entry == "_self_":
            continue
        assert isinstance(entry, dict) and len(entry) == 1, f"unexpected defaults entry {entry!r}"
        ((key, option),) = entry.items()
        words = key.split()
        assert words[-1].startswith("/") and set(words[:-1]) <= {"override", "optional"}, (
            f"unexpected defaults entry {entry!r}"
        )
        picks[words[-1].lstrip("/")] = option
    return picks


def group_values(group, option, conf_dir=CONF):
    """The values ``conf/GROUP/OPTION.yaml`` gives: its own, over those of the ConfigStore
    nodes its defaults list pulls in (``/schedule_defaults_step@_here_``)."""
    values = yaml.safe_load((conf_dir / group / f"{option}.yaml").read_text()) or {}
    merged = {}
    for entry in values.get("defaults", []):
        if entry == "_self_":
            continue
        assert isinstance(entry, str) and entry.startswith("/") and entry.endswith("@_here_"), entry
        node = ConfigStore.instance().load(entry[1 : -len("@_here_")] + ".yaml").node
        merged.update(OmegaConf.to_container(node))
    merged.update({k: v for k, v in values.items() if k != "defaults"})
    return merged


def mismatches(name, conf_dir=CONF):
    """(key, the file's value, the composed value) for every value the experiment file sets
    (or picks through its defaults list) that the composed job config does not hold."""
    spec = yaml.safe_load((conf_dir / "experiment" / f"{name}.yaml").read_text())
    cfg = compose(name, conf_dir) if conf_dir != CONF else composed(name)
    body = {k: v for k, v in spec.items() if k != "defaults"}
    own = leaves(body)
    bad = []

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def check(key, want, got):  # equal, and of the same type (an int may stand for a float)
        if not (got == want and (type(got) is type(want) or number(got) and number(want))):
            bad.append((key, want, got))

    for key, want in own.items():
        if key.startswith("hydra.sweeper.params."):
            param = key[len("hydra.sweeper.params.") :]
            got = cfg["hydra"]["sweeper"]["params"].get(param)
            if got is None or sweep_values(param, got) != sweep_values(param, want):
                bad.append((key, want, got))
            continue
        try:
            check(key, want, lookup(cfg, key))
        except KeyError:
            bad.append((key, want, "<missing>"))
    if "hydra" in body and "params" in body["hydra"].get("sweeper", {}):
        extra = set(cfg["hydra"]["sweeper"]["params"]) - set(body["hydra"]["sweeper"]["params"])
        bad += [
            (f"hydra.sweeper.params.{p}", "<not set>", cfg["hydra"]["sweeper"]["params"][p])
            for p in sorted(extra)
        ]

    for group, option in picked_groups(spec.get("defaults", [])).items():
        got = cfg["hydra"]["runtime"]["choices"].get(group)
        if got != option:
            bad.append((f"defaults: {group}", option, got))
        if group.startswith("hydra/"):
            continue
        for key, want in leaves(group_values(group, option, conf_dir)).items():
            full = f"{group}.{key}"
            if full in own:  # the experiment file overrides its group's value
                continue
            try:
                check(f"{full} (from {group}/{option}.yaml)", want, lookup(cfg, full))
            except KeyError:
                bad.append((full, want, "<missing>"))
    return bad


# ----------------------------------------------------------------------------- tests
def test_every_experiment_file_is_covered():
    assert set(EXPERIMENTS) == set(GRIDS) == set(RUNS), (
        "a conf/experiment file without an entry in GRIDS / RUNS here (and in the README table)"
    )


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_values_reach_the_job_config(name):
    assert mismatches(name) == []


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_file_sets_something_checked(name):
    """The comparison is not vacuous: each file picks groups and sets model/train values."""
    spec = yaml.safe_load((CONF / "experiment" / f"{name}.yaml").read_text())
    assert picked_groups(spec["defaults"])
    assert {"model", "train", "lr_schedule"} <= set(spec)


def test_self_last_in_train_yaml_is_caught(tmp_path):
    """train.yaml states no values (the schema does), but experiment files must still win
    over it: with model/train values written into a copy of train.yaml (the schema's defaults,
    as the file once held them) and ``_self_`` moved back to the end of its defaults, those
    values win again and the comparison reports exactly those keys."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    schema = OmegaConf.to_container(OmegaConf.structured(shallownet.config.TrainConfig))
    stated = {k: schema[k] for k in ("model", "train")}
    train_yaml = conf / "train.yaml"
    text = train_yaml.read_text() + yaml.safe_dump(stated, default_flow_style=None)
    train_yaml.write_text(text)  # the values alone, _self_ still first: experiment files win
    assert all(mismatches(name, conf) == [] for name in EXPERIMENTS)
    lines = text.splitlines(keepends=True)
    self_line = next(i for i, line in enumerate(lines) if line.strip().startswith("- _self_"))
    last = max(i for i, line in enumerate(lines) if line.startswith("  - "))
    assert self_line < last
    moved = lines[:self_line] + lines[self_line + 1 : last + 1] + ["  - _self_\n"] + lines[last + 1 :]
    train_yaml.write_text("".join(moved))
    defaults = yaml.safe_load(train_yaml.read_text())["defaults"]
    assert defaults[-1] == "_self_" and defaults[0] == "train_schema"

    base = leaves(stated)
    flagged = 0
    for name in EXPERIMENTS:
        spec = yaml.safe_load((CONF / "experiment" / f"{name}.yaml").read_text())
        own = leaves({k: spec[k] for k in ("model", "train") if k in spec})
        expected = {k for k, v in own.items() if k in base and base[k] != v}
        got = {key for key, _, _ in mismatches(name, conf)}
        assert got == expected, name
        flagged += bool(got)
    assert flagged >= 4  # xor, blobs, quadrant, toy, init_x_activation set their own values


# What `-m experiment=NAME` sweeps (the README's table): parameter -> values, in order.
GRIDS = {
    "tutorial000_activations": {"activation": ["tanh", "relu", "leaky_relu"], "seed": list(range(5))},
    "tutorial001_xor": {
        "initializer": ["small_random", "xavier_uniform", "xavier_normal", "he_normal", "he_uniform"],
        "seed": list(range(3)),
    },
    "tutorial001_blobs": {
        "lr_schedule": ["plateau", "constant"],
        "lr_schedule.lr": [1.0],
        "seed": list(range(5)),
    },
    "tutorial002_quadrant": {
        "model.hidden_sizes": [[4], [16], [64]],
        "activation": ["relu", "tanh"],
        "lr_schedule.lr": [0.05, 0.5, 1.0],
        "seed": list(range(3)),
    },
    "tutorial003_toy": {"seed": list(range(3))},
    "init_x_activation": {
        "initializer": ["small_random", "xavier_uniform", "he_normal"],
        "activation": ["tanh", "relu", "leaky_relu"],
        "seed": list(range(3)),
    },
}
JOBS = {
    "tutorial000_activations": 15,
    "tutorial001_xor": 15,
    "tutorial001_blobs": 10,
    "tutorial002_quadrant": 54,
    "tutorial003_toy": 3,
    "init_x_activation": 27,
}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_sweep_grid_is_as_documented(name):
    params = composed(name)["hydra"]["sweeper"]["params"]
    grid = {key: sweep_values(key, value) for key, value in params.items()}
    assert grid == GRIDS[name]
    assert math.prod(len(v) for v in grid.values()) == JOBS[name]
    assert composed(name)["hydra"]["runtime"]["choices"]["hydra/sweeper"] == "grid"


# What one job of each study runs (before its sweep overrides), as the README's table says.
# hidden: model.hidden_sizes; act: hidden activation; init; loss; lr; epochs; schedule.
RUNS = {
    "tutorial000_activations": dict(
        hidden=[4],
        act="relu",
        init="small_random",
        loss="bce",
        lr=0.1,
        epochs=2000,
        schedule=("constant", None, None),
        dataset=dict(
            name="classification",
            seed=42,
            n_samples=500,
            n_features=3,
            class_sep=1.5,
            flip_y=0.1,
            test_size=0.2,
            standardize=False,
        ),
    ),
    "tutorial001_xor": dict(
        hidden=[4],
        act="sigmoid",
        init="he_normal",
        loss="mse",
        lr=1.0,
        epochs=5000,
        schedule=("constant", None, None),
        dataset=dict(name="xor", seed=42, test_size=None, standardize=False),
    ),
    "tutorial001_blobs": dict(
        hidden=[8, 4],
        act="sigmoid",
        init="he_normal",
        loss="bce",
        lr=1.0,
        epochs=2000,
        schedule=("plateau", 100, 0.95),
        dataset=dict(name="blobs", seed=42, n_samples=1000, cov_scale=9.0, test_size=0.2, standardize=False),
    ),
    "tutorial002_quadrant": dict(
        hidden=[16],
        act="relu",
        init="small_random",
        loss="bce",
        lr=0.5,
        epochs=1000,
        schedule=("constant", None, None),
        dataset=dict(name="quadrant", seed=42, n_samples=200, test_size=0.2, standardize=False),
    ),
    "tutorial003_toy": dict(
        hidden=[4],
        act="tanh",
        init="small_random",
        loss="bce",
        lr=0.005,
        epochs=1000,
        schedule=("constant", None, None),
        dataset=dict(name="toy4", seed=42, test_size=None, standardize=False),
    ),
    "init_x_activation": dict(
        hidden=[8],
        act="tanh",
        init="xavier_uniform",
        loss="bce",
        lr=0.3,
        epochs=1500,
        schedule=("constant", None, None),
        dataset=dict(name="circle", seed=42, n_samples=500, noise=0.1, test_size=0.5, standardize=False),
    ),
}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_study_runs_the_documented_settings(name):
    cfg, want = composed(name), RUNS[name]
    s = cfg["lr_schedule"]
    got = dict(
        hidden=cfg["model"]["hidden_sizes"],
        act=cfg["activation"]["name"],
        init=cfg["initializer"]["name"],
        loss=cfg["train"]["loss"],
        lr=s["lr"],
        epochs=cfg["train"]["epochs"],
        schedule=(s["name"], s["patience"], s["factor"]),
        dataset=cfg["dataset"],
    )
    assert got == want
    # every tutorial study: a sigmoid output, full batch, float64, no weight decay, alpha 0.01
    assert cfg["model"]["output"] == "sigmoid"
    assert cfg["train"]["batch_size"] is None and cfg["train"]["l2"] == 0.0
    assert cfg["train"]["dtype"] == "float64" and cfg["activation"]["alpha"] == 0.01
    shallownet.config.validate(
        OmegaConf.to_container(OmegaConf.create({k: v for k, v in cfg.items() if k != "hydra"}), resolve=True)
    )


def logged(value):
    """A config value as MLflow stores it as a param (str of the Python value)."""
    return str(value)


@pytest.mark.slow
def test_each_experiments_values_are_the_params_its_run_records(tmp_path):
    """Drive the run itself in-process (train.run with a Job, no Hydra runtime, no
    subprocess) for every experiment file and check that each value the file sets, or its
    group files give, is the param the run recorded. Only tracking.* is overridden."""
    from shallownet import train
    from shallownet.record import tracking
    from shallownet.job import Job

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for name in EXPERIMENTS:
        overrides = [
            f"experiment={name}",
            f"tracking.uri={uri}",
            "tracking.log_model=false",
            "tracking.log_plots=false",
        ]
        with hydra.initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = hydra.compose("train", overrides=overrides)
        (outcome,) = train.run(OmegaConf.to_container(cfg, resolve=True), Job(overrides=overrides))
        assert outcome.status == "FINISHED", (name, outcome)
        run = tracking.connect(uri).get_run(outcome.run_id)
        spec = yaml.safe_load((CONF / "experiment" / f"{name}.yaml").read_text())
        own = {
            k: v
            for k, v in leaves(
                {k: v for k, v in spec.items() if k not in ("defaults", "hydra", "stack_seeds")}
            ).items()  # stack_seeds: how the study's sweep runs, not what a run computes
        }
        for group, option in picked_groups(spec.get("defaults", [])).items():
            if not group.startswith("hydra/"):
                values = group_values(group, option)
                own = {**{f"{group}.{k}": v for k, v in leaves(values).items()}, **own}
        assert own, name
        wrong = {
            k: (logged(v), run.data.params.get(k))
            for k, v in own.items()
            if run.data.params.get(k) != logged(v)
        }
        assert not wrong, (name, wrong)
