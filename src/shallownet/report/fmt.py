"""Fixed formatting of numbers for the markdown, the HTML, the figures and stdout: the same
value always prints the same way, so regenerated reports are byte-identical."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def is_missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def num(x, digits: int = 3) -> str:
    """3 significant digits (a number of ``digits`` digits or more before the point rounds to
    the unit, never to an exponent); integers as integers; 'n/a' for a missing value."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, str):
        return x
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(f):
        return "n/a"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == int(f) and abs(f) < 1e15:
        return str(int(f))
    out = f"{f:#.{digits}g}".rstrip(".")
    if "e+" in out:
        out = f"{f:.0f}"
    return "0" if out in ("-0", "0") else out


def pval(p) -> str:
    """A p-value: 3 significant digits, '< 1e-10' below that."""
    if not is_missing(p) and 0 <= float(p) < 1e-10:
        return "< 1e-10"
    return num(p)


def ci(lo, hi, open_high: str = "n/a") -> str:
    """'[lo, hi]'; an infinite upper bound prints as ``open_high``."""
    if is_missing(lo) and is_missing(hi):
        return "n/a"
    h = open_high if not is_missing(hi) and math.isinf(float(hi)) else num(hi)
    return f"[{num(lo)}, {h}]"


def mean_ci(mean, lo, hi) -> str:
    return f"{num(mean)} {ci(lo, hi)}"


def p_is(p) -> str:
    """'= 0.0123' or '< 1e-10', to follow a p in a sentence."""
    s = pval(p)
    return s if s.startswith("<") else f"= {s}"
