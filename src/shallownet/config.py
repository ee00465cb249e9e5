"""Structured-config schema, validation and hashing. Fast to import: no MLflow, Hydra or
OmegaConf here (``shallownet.sweep.schema`` registers the schema with Hydra).

The dataclasses below are the one statement of the primary config's defaults (conf/train.yaml
holds only its defaults list and the hydra node); a schedule's hyper-parameter defaults are
model.SCHEDULE_DEFAULTS, registered as the nodes conf/lr_schedule/*.yaml pull in.

The schema makes Hydra reject a mistyped key or a wrong type while composing; ``validate``
then checks values (ranges, names, data files) so that a bad config fails in well under 2 s,
before any MLflow run exists.
"""

import hashlib
import json
import math
from pathlib import PurePath
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Dict, List, Optional

from shallownet.model import HIDDEN_ACTIVATIONS, INITIALIZERS, LOSSES, SCHEDULE_DEFAULTS, SCHEDULES

from . import datasets
from .hints import did_you_mean
from .names import DEFAULT_EXPERIMENT

# The config tree ships inside the package: Hydra finds it wherever shallownet is installed.
CONF_MODULE = "shallownet.conf"
CONF_PATH = f"pkg://{CONF_MODULE}"


class ConfigError(ValueError):
    """A config value a user must fix; the message names the key and the valid choices."""


@dataclass
class ActivationConf:
    name: str = "tanh"
    alpha: float = 0.01  # leaky_relu's slope for z <= 0; the other activations ignore it


@dataclass
class InitializerConf:
    name: str = "small_random"


@dataclass
class LrScheduleConf:
    name: str = "constant"
    lr: float = 0.1  # every schedule's base rate
    # A schedule's own keys: None here; conf/lr_schedule/NAME.yaml gives them the values of
    # model.SCHEDULE_DEFAULTS[NAME] (the schedule_defaults_NAME nodes shallownet.sweep.schema registers).
    step_size: Optional[int] = None
    gamma: Optional[float] = None
    min_lr: Optional[float] = None
    patience: Optional[int] = None
    factor: Optional[float] = None


@dataclass
class ModelConf:
    # one hidden layer of 4 units (tutorial 000); [8, 4] = two layers
    hidden_sizes: List[int] = field(default_factory=lambda: [4])
    output: str = "sigmoid"  # sigmoid | softmax


@dataclass
class TrainConf:
    epochs: int = 2000
    loss: str = "bce"  # bce | mse | cross_entropy
    batch_size: Optional[int] = None  # None (null) = full batch, as in the tutorials
    l2: float = 0.0
    dtype: str = "float64"  # float64 | float32
    divergence_factor: float = 100.0  # stop when the loss exceeds this x the initial loss


@dataclass
class TrackingConf:
    # the default store, found from any directory: shallownet.record.store.default_uri (resolved
    # when the config is, e.g. by --cfg job --resolve)
    uri: str = "${shallownet.default_store:}"
    experiment: str = DEFAULT_EXPERIMENT
    max_points: int = 200  # MLflow metric steps per curve; full curves go to curves.parquet
    log_model: bool = True
    log_plots: bool = True
    timeout: int = 10  # seconds per HTTP request to a tracking server
    retries: int = 2  # HTTP retries against a tracking server


@dataclass
class TrainConfig:
    seed: int = 0  # model seed: initial weights and mini-batch shuffling
    # The seeds one sweep job trains stacked, one run each (the grid sweeper's stack_seeds
    # sets it); None: the one ``seed``. Never part of a run's recorded config.
    seeds: Optional[List[int]] = None
    # At most this many seeds of one configuration a grid sweep trains in one job, stacked
    # (the study files set it; 1: a job per seed). How a sweep runs, not what a run computes.
    stack_seeds: int = 1
    force: bool = False  # train a sweep's configs even when an identical run FINISHED already
    dataset: Dict[str, Any] = field(default_factory=dict)  # checked by datasets.validate_params
    activation: ActivationConf = field(default_factory=ActivationConf)
    initializer: InitializerConf = field(default_factory=InitializerConf)
    lr_schedule: LrScheduleConf = field(default_factory=LrScheduleConf)
    model: ModelConf = field(default_factory=ModelConf)
    train: TrainConf = field(default_factory=TrainConf)
    tracking: TrackingConf = field(default_factory=TrackingConf)


# Keys that never change what a run computes: left out of config_hash.
NON_SEMANTIC = ("tracking", "hydra", "force", "seeds", "stack_seeds")
SCHEDULE_KEYS = {name: tuple(defaults) for name, defaults in SCHEDULE_DEFAULTS.items()}
DTYPES = ("float32", "float64")


def _fail(key, problem, choices=None):
    msg = f"{key}: {problem}"
    if choices is not None:
        msg += f"; valid choices: {', '.join(map(str, choices))}"
    raise ConfigError(msg)


def _positive(cfg, key, value, allow_zero=False):
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        _fail(key, f"must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _known_keys(c):
    """Refuse keys the schema does not know (``+lr=0.5`` would otherwise be recorded as a
    param while training with the real lr) and keys removed with ``~``."""
    known = [f.name for f in fields(TrainConfig)]
    extra = [k for k in c if k not in known]
    if extra:
        _fail(extra[0], "unknown key (not in the schema)", known)
    sweep_flags = ("force", "seeds", "stack_seeds")  # how a sweep runs: not in a run's record
    missing = [k for k in known if k not in c and k not in sweep_flags]
    if missing:
        _fail(missing[0], "missing: every run needs it")
    for node in ("activation", "initializer", "lr_schedule", "model", "train", "tracking"):
        names = [f.name for f in fields(type(getattr(TrainConfig(), node)))]
        extra = [k for k in c[node] if k not in names]
        if extra:
            _fail(f"{node}.{extra[0]}", "unknown key", names)


def _finite(key, value):
    if not math.isfinite(value):
        _fail(key, f"must be a finite number, got {value}")


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_hidden_sizes(sizes):
    """A list of integer layer sizes >= 1 (OmegaConf lets ``[[1]]`` and ``[{a: 1}]`` through)."""
    if not isinstance(sizes, list) or not sizes or not all(_is_count(n) and n >= 1 for n in sizes):
        _fail(
            "model.hidden_sizes",
            f"needs a list of integer layer sizes >= 1 (e.g. [16] or [16,8]), got {sizes}",
        )


def _check_schedule_shape(s):
    """A decay multiplies the rate by a factor in (0, 1); a cosine schedule falls to its floor."""
    for k in ("gamma", "factor"):
        if s.get(k) is not None and not 0 < s[k] < 1:
            _fail(f"lr_schedule.{k}", f"a decay factor lies in (0, 1), got {s[k]}")
    if s.get("min_lr") is not None and s["min_lr"] >= s["lr"]:
        _fail(
            "lr_schedule.min_lr", f"the floor must lie below lr_schedule.lr={s['lr']:g}, got {s['min_lr']:g}"
        )


# MLflow's MAX_EXPERIMENT_NAME_LENGTH (mlflow.utils.validation), not imported: no MLflow here
MAX_EXPERIMENT_NAME = 500


def _check_tracking(tr):
    """Values MLflow or the HTTP client would refuse only after the store exists."""
    name = tr["experiment"]
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_EXPERIMENT_NAME:
        shown = repr(name) if len(str(name)) <= 40 else f"{len(name)} characters"
        _fail("tracking.experiment", f"needs a name of 1 to {MAX_EXPERIMENT_NAME} characters, got {shown}")
    if not tr["timeout"] > 0:
        _fail("tracking.timeout", f"seconds per request must be > 0, got {tr['timeout']}")
    if tr["retries"] < 0:
        _fail("tracking.retries", f"must be >= 0, got {tr['retries']}")
    if tr["max_points"] < 2:
        _fail("tracking.max_points", f"must be >= 2, got {tr['max_points']}")


def validate(cfg):
    """Check every value of a composed config (plain dicts and lists, interpolations resolved);
    raise ConfigError naming the key."""
    c = cfg
    _known_keys(c)
    if c["activation"]["name"] not in HIDDEN_ACTIVATIONS:
        _fail("activation.name", f"unknown activation {c['activation']['name']!r}", HIDDEN_ACTIVATIONS)
    if not 0 <= c["activation"]["alpha"] <= 1:
        _fail("activation.alpha", f"must be in [0, 1], got {c['activation']['alpha']}")
    if c["initializer"]["name"] not in INITIALIZERS:
        _fail("initializer.name", f"unknown initializer {c['initializer']['name']!r}", list(INITIALIZERS))
    s = c["lr_schedule"]
    if s["name"] not in SCHEDULES:
        _fail("lr_schedule.name", f"unknown schedule {s['name']!r}", list(SCHEDULES))
    for k in ("lr", "gamma", "factor", "min_lr"):
        if s.get(k) is not None:
            _finite(f"lr_schedule.{k}", s[k])
    _positive(c, "lr_schedule.lr", s["lr"])
    for k in ("step_size", "gamma", "patience", "factor"):
        if s.get(k) is not None:
            _positive(c, f"lr_schedule.{k}", s[k])
    if s.get("min_lr") is not None:
        _positive(c, "lr_schedule.min_lr", s["min_lr"], allow_zero=True)
    _check_schedule_shape(s)
    m, t = c["model"], c["train"]
    _check_hidden_sizes(m["hidden_sizes"])
    if m["output"] not in ("sigmoid", "softmax"):
        _fail("model.output", f"unknown output {m['output']!r}", ["sigmoid", "softmax"])
    if t["epochs"] < 1:
        _fail("train.epochs", f"must be >= 1, got {t['epochs']}")
    if t["loss"] not in LOSSES:
        _fail("train.loss", f"unknown loss {t['loss']!r}", list(LOSSES))
    if (
        t["loss"] == "bce"
        and m["output"] != "sigmoid"
        or t["loss"] == "cross_entropy"
        and m["output"] != "softmax"
    ):
        _fail(
            "train.loss",
            f"{t['loss']!r} does not fit model.output={m['output']!r} "
            "(bce goes with sigmoid, cross_entropy with softmax, mse with either)",
        )
    if t["loss"] == "mse" and m["output"] == "softmax":
        _fail("train.loss", "mse needs model.output=sigmoid")
    if t["batch_size"] is not None and t["batch_size"] < 1:
        _fail("train.batch_size", f"must be >= 1 or null (full batch), got {t['batch_size']}")
    _finite("train.l2", t["l2"])
    _positive(c, "train.l2", t["l2"], allow_zero=True)
    if t["dtype"] not in DTYPES:
        _fail("train.dtype", f"unknown dtype {t['dtype']!r}", DTYPES)
    if not t["divergence_factor"] > 1:
        _fail("train.divergence_factor", f"must be > 1, got {t['divergence_factor']}")
    _check_tracking(c["tracking"])
    for key, seed in [("seed", c["seed"])] + [("seeds", s) for s in c.get("seeds") or []]:
        if not 0 <= seed < 2**32:
            _fail(key, f"must be an integer in [0, 2**32 - 1], got {seed}")
    if c.get("stack_seeds", 1) < 1:
        _fail("stack_seeds", f"must be >= 1, got {c['stack_seeds']}")
    if c.get("seeds") is not None and (not c["seeds"] or len(set(c["seeds"])) < len(c["seeds"])):
        _fail("seeds", f"must be distinct seeds, at least one, got {c['seeds']}")
    try:
        datasets.validate_params(c["dataset"])
    except datasets.DataError as err:
        raise ConfigError(str(err) if str(err).startswith("dataset") else f"dataset: {err}") from None
    check_memory(c)
    return c


def _available_bytes():
    """MemAvailable of /proc/meminfo (what can be allocated without swapping), or None."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_needed(c, n_train=0, n_test=0, n_features=2, data_bytes=0):
    """(bytes of the network, bytes per row of data) a run needs, roughly. The network: 4
    copies of the parameters (the net, two flat buffers for the updates, the gradient) and 5
    curves of ``train.epochs`` float64 values. The rows: 3 buffers per layer and row of
    training data, the test evaluation's activations, and ``data_bytes`` (the data itself).
    A job's stacked seeds (``seeds``) need all but the data once per seed."""
    runs = len(c.get("seeds") or [None])
    sizes = [n_features, *c["model"]["hidden_sizes"], 1]
    n_params = sum(fi * fo + fo for fi, fo in zip(sizes[:-1], sizes[1:]))
    width = sum(sizes[1:])
    item = 4 if c["train"]["dtype"] == "float32" else 8
    per_row = item * (3 * n_train + 2 * n_test) * width
    return runs * (item * 4 * n_params + 40 * c["train"]["epochs"]), runs * per_row + data_bytes


def planned_rows(d):
    """(n_train, n_test, n_features, data bytes) the dataset config ``d`` will give, before any
    data exists (a CSV: (0, 0, 2, 0), its file is measured once read)."""
    size = datasets.planned_size(d)
    if size is None:
        return 0, 0, 2, 0
    rows, feats = size
    test_size = d.get("test_size", datasets.DEFAULT_TEST_SIZE[d["name"]])
    n_test = rows if test_size is None else int(rows * test_size)
    return rows - (0 if test_size is None else n_test), n_test, feats, datasets.planned_bytes(d)


def check_output(c, n_classes):
    """A sigmoid output scores two classes: more need model.output=softmax."""
    if n_classes > 2 and c["model"]["output"] == "sigmoid":
        _fail(
            "model.output",
            f"sigmoid scores two classes, the data has {n_classes}: "
            "use model.output=softmax train.loss=cross_entropy",
        )


def check_memory(c, n_train=None, n_test=0, n_features=2):
    """Refuse a run that cannot fit in this machine's memory before anything is recorded
    (``model.hidden_sizes=[100000,100000]`` needs 320 GB; ``train.epochs=10**12`` 40 TB;
    ``dataset.n_samples=10**9`` 64 GB of data). Without ``n_train`` the data's planned size
    is used: the check before the data exist."""
    data = 0
    if n_train is None:
        n_train, n_test, n_features, data = planned_rows(c["dataset"])
    net, rows = memory_needed(c, n_train, n_test, n_features, data)
    have = _available_bytes()
    if have is None or net + rows <= have:
        return
    gib = 2**30
    key = "dataset.n_samples / dataset.n_features" if rows > net else "model.hidden_sizes / train.epochs"
    _fail(
        key,
        f"this run needs about {(net + rows) / gib:.1f} GiB of memory ({rows / gib:.1f} GiB for the "
        f"data: {n_train + n_test} rows x {n_features} features; {net / gib:.1f} GiB for hidden_sizes "
        f"{c['model']['hidden_sizes']} over {c['train']['epochs']} epochs); this machine has "
        f"{have / gib:.1f} GiB available",
    )


def schema_keys():
    """Every key a command line may set: the schema's leaves ('lr_schedule.lr', 'seed', ...),
    its nodes (which are also groups: 'activation') and the groups without a node."""
    keys = {"experiment", "hparams_search"}
    for f in fields(TrainConfig):
        keys.add(f.name)
        if is_dataclass(f.type):
            keys |= {f"{f.name}.{sub.name}" for sub in fields(f.type)}
    return sorted(keys)


def check_override_keys(args):
    """Catch a mistyped key on the command line before Hydra composes, and list the keys
    that exist there (Hydra's own message names the key but not the choices)."""
    nodes = {f.name: f.type for f in fields(TrainConfig)}
    choices = dict(a.split("=", 1) for a in args if "=" in a and "." not in a.split("=", 1)[0])
    for arg in args:
        if "=" not in arg or arg.startswith(("-", "+", "~", "hydra")):
            continue
        path = arg.split("=", 1)[0].split(".")
        if len(path) == 1:  # a group choice: Hydra lists the available options itself
            continue
        if path[0] == "dataset":
            name = choices.get("dataset", "classification" if "experiment" not in choices else None)
            if name in datasets.GENERATORS and (
                len(path) > 2 or path[1] not in datasets.dataset_params(name)
            ):
                valid = datasets.dataset_params(name)
                raise ConfigError(
                    f"unknown key '{'.'.join(path)}' for dataset {name!r}"
                    f"{did_you_mean('.'.join(path), [f'dataset.{k}' for k in valid])}; valid keys: {', '.join(valid)}"
                )
            continue
        node = nodes.get(path[0])
        sub = {f.name for f in fields(node)} if is_dataclass(node) else set()
        if node is None or len(path) > 2 or path[1] not in sub:
            where = f"'{path[0]}'" if node is not None else "the config"
            valid = sorted(sub) if node is not None else sorted(nodes)
            hint = did_you_mean(".".join(path), schema_keys())
            raise ConfigError(
                f"unknown key '{'.'.join(path)}' in {where}{hint}; valid keys: {', '.join(valid)}"
            )


def schedule_spec(c):
    """The lr argument for model.train: {'name', 'lr', + that schedule's own keys}."""
    s = c["lr_schedule"]
    spec = {"name": s["name"], "lr": s["lr"]}
    spec.update({k: s[k] for k in SCHEDULE_KEYS[s["name"]] if s.get(k) is not None})
    return spec


def flatten(c, prefix=""):
    """Every leaf of a nested dict as {'a.b.c': value}; lists stay whole leaves."""
    out = {}
    for k, v in c.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_hash(c):
    """sha256 of the canonical (sorted-key JSON) resolved config without tracking keys."""
    semantic = {k: v for k, v in c.items() if k not in NON_SEMANTIC}
    blob = json.dumps(semantic, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# How a swept key's value reads in a run name: "lr0.5", "h16", "s3"; group choices bare.
SHORT = {
    "seed": "s",
    "lr_schedule.lr": "lr",
    "model.hidden_sizes": "h",
    "train.epochs": "e",
    "activation": "",
    "initializer": "",
    "lr_schedule": "",
    "dataset": "",
}


def _dataset_label(d):
    """The dataset's name; a CSV's file name, since every CSV is dataset=csv."""
    return f"csv:{PurePath(str(d['path'])).stem}" if d["name"] == "csv" else d["name"]


def run_name(c, swept=None):
    """A readable run name. For a sweep's job the values of the swept keys, the distinguishing
    part first (``swept``: [(key, value)], e.g. "tanh-s3", "h16-relu-lr0.5-s0"); else the run's
    choices, e.g. quadrant-relu-he_normal-h16-lr0.5-s0."""
    if swept:
        order = sorted(swept, key=lambda kv: kv[0] == "seed")  # the seed last
        return "-".join(_short(k, v) for k, v in order)
    hidden = "x".join(map(str, c["model"]["hidden_sizes"]))
    return (
        f"{_dataset_label(c['dataset'])}-{c['activation']['name']}-{c['initializer']['name']}"
        f"-h{hidden}-lr{c['lr_schedule']['lr']:g}-s{c['seed']}"
    )


def _short(key, value):
    value = str(value)
    if key == "model.hidden_sizes":
        value = "x".join(v.strip() for v in value.strip("[]").split(","))
    prefix = SHORT.get(key, key.rsplit(".", 1)[-1] + "=")
    return f"{prefix}{value}"


# ------------------------------------------------------------------------------ RunConfig


@dataclass(frozen=True)
class Tracking:
    """Where and how a run is recorded (``tracking.*``): never part of what it computes."""

    uri: str
    experiment: str
    max_points: int
    log_model: bool
    log_plots: bool
    timeout: int
    retries: int


@dataclass(frozen=True)
class RunConfig:
    """One run's config, validated once: typed fields for what the run computes and where it
    is recorded, and what is derived from it (hash, names, key, schedule and dataset specs).
    ``values`` is the validated config as plain data, as recorded (params, config.yaml)."""

    values: dict
    seed: int
    dataset: dict  # the dataset spec, resolved (a CSV's absolute path)
    activation: str
    alpha: float
    initializer: str
    hidden_sizes: tuple
    output: str
    epochs: int
    loss: str
    batch_size: int | None
    l2: float
    dtype: str
    divergence_factor: float
    schedule: dict  # model.train's lr argument (schedule_spec)
    tracking: Tracking
    force: bool
    config_hash: str
    name: str  # the run's name: a sweep's swept values, else its choices
    label: str  # its choices (run_name without the sweep): plot titles
    run_key: str  # config + data + code (shallownet.identity.run_key)

    @classmethod
    def of(cls, c, run_key_of, swept=None, force=False):
        """The RunConfig of validated values ``c`` (one seed; no seeds, stack_seeds, force);
        the run key from ``run_key_of(config_hash)`` (it needs the data's fingerprint)."""
        m, t, chash = c["model"], c["train"], config_hash(c)
        return cls(
            values=c,
            seed=c["seed"],
            dataset=c["dataset"],
            activation=c["activation"]["name"],
            alpha=c["activation"]["alpha"],
            initializer=c["initializer"]["name"],
            hidden_sizes=tuple(m["hidden_sizes"]),
            output=m["output"],
            epochs=t["epochs"],
            loss=t["loss"],
            batch_size=t["batch_size"],
            l2=t["l2"],
            dtype=t["dtype"],
            divergence_factor=t["divergence_factor"],
            schedule=schedule_spec(c),
            tracking=Tracking(**c["tracking"]),
            force=force,
            config_hash=chash,
            name=run_name(c, swept),
            label=run_name(c),
            run_key=run_key_of(chash),
        )

    @property
    def params(self):
        """{'a.b': value} of every recorded key, sorted: the run's MLflow params."""
        return sorted(flatten(self.values).items())

    @property
    def dataset_label(self):
        return _dataset_label(self.dataset)
