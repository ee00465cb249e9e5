"""The git checkout this code runs from, if any.

``make venv`` installs shallownet in editable mode: its modules are the checkout's own files
(``<checkout>/src/shallownet/``), and a run can record the commit it ran. A wheel installed
with ``pip install .`` lives in site-packages, which may well sit inside some other git
repository: that repository's commit says nothing about this code, so it is never asked.
"""

import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def root():
    """The checkout's top directory (its pyproject.toml, src/ and .git), or None when
    shallownet is installed from a wheel."""
    top = PACKAGE_DIR.parents[1]
    is_checkout = (
        PACKAGE_DIR.parent.name == "src" and (top / "pyproject.toml").is_file() and (top / ".git").exists()
    )
    return top if is_checkout else None
