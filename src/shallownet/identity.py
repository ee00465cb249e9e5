"""What makes two runs the same experiment: the resolved config, the data and the code.

A sweep skips a configuration only when a FINISHED run has the same ``run_key``: the sha256 of
the config's hash (``config.config_hash``), the data's fingerprint (the split arrays' bytes,
``datasets.Split.fingerprint``) and the code's fingerprint (the source of the model package
and of the training step, ``fit.py``). Editing a CSV, the model or the training code therefore
trains the config again, and the console says which of the three changed.
"""

import functools
import hashlib
from pathlib import Path

from . import model

from . import fit
from .names import TAG_CODE, TAG_DATA


def _code_files():
    return sorted(Path(model.__file__).parent.glob("*.py")) + [Path(fit.__file__)]


@functools.lru_cache(maxsize=1)
def code_fingerprint():
    """sha256 over the names and bytes of the files that decide what a run computes."""
    h = hashlib.sha256()
    for path in _code_files():
        h.update(f"{path.parent.name}/{path.name}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def run_key(config_hash, data_fingerprint, code=None):
    blob = f"{config_hash}:{data_fingerprint}:{code or code_fingerprint()}"
    return hashlib.sha256(blob.encode()).hexdigest()


def what_changed(old_tags, data_fingerprint, code=None):
    """Why a FINISHED run of the same config is not this run: 'the data', 'the code', both."""
    code = code or code_fingerprint()
    changed = [
        what
        for what, tag, now in (("the data", TAG_DATA, data_fingerprint), ("the code", TAG_CODE, code))
        if old_tags.get(tag) != now
    ]
    return " and ".join(changed) or "the run's identity"
