"""Where a run was made: git state, versions, machine, and the installed distributions. Read
from the running process without MLflow or pip; computed once per process (a sweep's launching
process captures it once for all its runs)."""

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .. import checkout


def _git(*args):
    """git's output in the checkout shallownet runs from; None outside one (a wheel)."""
    top = checkout.root()
    if top is None:
        return None
    try:
        out = subprocess.run(["git", *args], cwd=top, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def environment_tags():
    """Code and machine provenance: git state, versions, host/CPU/OS. Computed once per
    process (a sweep records many runs from the same tree and environment)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    tags = {
        "git_commit": commit or "unknown",
        "git_dirty": "unknown" if status is None else str(bool(status)).lower(),
        "python_version": platform.python_version(),
        "host": platform.node(),
        "cpu": cpu_model(),
        "os": platform.platform(),
        "cpu_count": str(os.cpu_count()),
    }
    for pkg in ("shallownet", "numpy", "mlflow", "hydra-core", "omegaconf", "scikit-learn", "matplotlib"):
        try:
            tags[f"version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return tags


@functools.lru_cache(maxsize=1)
def pip_freeze():
    """`pip freeze`-style listing of the running environment, without spawning pip."""
    dists = {(d.metadata["Name"] or "").lower(): d.version for d in metadata.distributions()}
    return "".join(f"{name}=={ver}\n" for name, ver in sorted(dists.items()) if name)
