"""shallownet's launcher (``shallownet.sweep.launcher``), registered where Hydra looks for
plugins: Hydra instantiates only classes of the hydra_plugins package. Selected by
conf/hydra/launcher/parallel.yaml."""

from shallownet.sweep import launcher


class PoolLauncher(launcher.PoolLauncher):
    """``shallownet.sweep.launcher.PoolLauncher``."""
