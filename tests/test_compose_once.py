"""ComposeOnce gives every job of every study the config Hydra itself composes for it.

For each ``conf/experiment/*.yaml``, every job of its sweep (and of the same sweep with extra
command-line overrides of each kind) is loaded twice: by Hydra's ``load_sweep_config`` and by
``ComposeOnce``. The two must be the same containers (hydra node included), have the same
schema (a value of the wrong type is refused by both) and compose through Hydra only once per
choice of groups.
"""

import itertools
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import setup_globals
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import ValidationError

import shallownet.config  # noqa: F401  registers the train_schema that conf/train.yaml needs
from hydra_plugins.shallownet_sweeper import compose_once

CONF = Path(__file__).resolve().parents[1] / "src" / "shallownet" / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
# every study as it is; one study also with a value, a group, an added key and a hydra.* key
CASES = [(name, []) for name in EXPERIMENTS] + [
    ("tutorial000_activations", extra)
    for extra in (["train.epochs=7", "initializer=he_normal"], ["+dataset.note=1"], ["hydra.job.chdir=false"])
]


def loader():
    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF)))


def sweep_jobs(hydra_loader, argv):
    """The master config of ``shallownet-train -m ARGV`` and its jobs' override lists."""
    setup_globals()  # Hydra's resolvers (now, ...), as in a real run
    master = hydra_loader.load_configuration("train", overrides=argv, run_mode=RunMode.MULTIRUN)
    assert master.hydra.sweep.dir  # resolves ${now:} into the cache, as the launching process does
    params = OmegaConf.select(master, "hydra.sweeper.params") or {}
    lines = [f"{k}={v}" for k, v in params.items()] + argv
    merged = {o.key_or_group: o for o in OverridesParser.create().parse_overrides(lines)}
    batches = BasicSweeper.split_arguments(list(merged.values()), max_batch_size=None)
    return master, list(itertools.chain.from_iterable(batches))


@pytest.mark.parametrize("name, extra", CASES, ids=[" ".join([n, *e]) for n, e in CASES])
def test_every_job_is_what_hydra_composes(name, extra):
    hydra_loader = loader()
    master, jobs = sweep_jobs(hydra_loader, [f"experiment={name}", *extra])
    assert jobs
    compose_once._COMPOSED.clear()
    ours = compose_once.ComposeOnce(hydra_loader)
    groups = set()
    for num, job in enumerate(jobs):
        theirs = hydra_loader.load_sweep_config(master, list(job))
        mine = ours.load_sweep_config(master, list(job))
        assert OmegaConf.to_container(mine, resolve=False) == OmegaConf.to_container(theirs, resolve=False), (
            job
        )
        for cfg in (mine, theirs):  # what the launcher sets before the job runs
            with open_dict(cfg):
                cfg.hydra.job.num, cfg.hydra.job.id = num, f"train_{num}"
        assert OmegaConf.to_yaml(mine, resolve=True) == OmegaConf.to_yaml(theirs, resolve=True)
        for cfg in (mine, theirs):  # the schema came along: a wrong type is refused
            with pytest.raises(ValidationError):
                cfg.train.epochs = "many"
        groups.add(tuple(o for o in job if o.split("=")[0] in ("activation", "initializer", "dataset")))
    # one composition per choice of groups (a job that overlaps is composed in full, not kept)
    assert len(compose_once._COMPOSED) <= len(groups)


def test_a_pool_worker_composes_each_choice_of_groups_once():
    """tutorial000's 15 jobs (3 activations x 5 seeds): 3 compositions, and the copies are
    independent (a job that changes its config does not change the next one's)."""
    hydra_loader = loader()
    master, jobs = sweep_jobs(hydra_loader, ["experiment=tutorial000_activations"])
    assert len(jobs) == 15
    compose_once._COMPOSED.clear()
    ours = compose_once.ComposeOnce(hydra_loader)
    seeds = []
    for job in jobs:
        cfg = ours.load_sweep_config(master, list(job))
        seeds.append(cfg.seed)
        cfg.train.epochs = 1  # what the next job must not see
    assert len(compose_once._COMPOSED) == 3
    assert seeds == [0, 1, 2, 3, 4] * 3
    again = ours.load_sweep_config(master, list(jobs[0]))
    assert again.train.epochs == 2000 and again.hydra.overrides.task == list(jobs[0])


def test_overlapping_overrides_are_composed_by_hydra_in_full():
    hydra_loader = loader()
    master, _ = sweep_jobs(hydra_loader, ["experiment=tutorial000_activations"])
    compose_once._COMPOSED.clear()
    job = ["+dataset.note=1", "dataset.note=2", "seed=3"]  # the same key added, then changed
    mine = compose_once.ComposeOnce(hydra_loader).load_sweep_config(master, job)
    theirs = hydra_loader.load_sweep_config(master, job)
    assert OmegaConf.to_container(mine, resolve=False) == OmegaConf.to_container(theirs, resolve=False)
    assert mine.dataset.note == 2 and not compose_once._COMPOSED


def test_the_loader_travels_to_workers_by_pickle():
    """Each job unpickles its own loader: they all use the worker's cache, not a copy."""
    import pickle

    hydra_loader = loader()
    master, jobs = sweep_jobs(hydra_loader, ["experiment=tutorial000_activations"])
    compose_once._COMPOSED.clear()
    blob = pickle.dumps(compose_once.ComposeOnce(hydra_loader))
    for job in jobs[:5]:  # the tanh jobs: one choice of groups
        back = pickle.loads(blob)
        assert isinstance(back, compose_once.ComposeOnce) and back.get_sources() is not None
        back.load_sweep_config(master, list(job))
    assert len(compose_once._COMPOSED) == 1


def test_the_preflights_compositions_stay_its_own():
    hydra_loader = loader()
    master, jobs = sweep_jobs(hydra_loader, ["experiment=tutorial000_activations"])
    compose_once._COMPOSED.clear()
    own = {}
    compose_once.ComposeOnce(hydra_loader, cache=own).load_sweep_config(master, list(jobs[0]))
    assert len(own) == 1 and not compose_once._COMPOSED
