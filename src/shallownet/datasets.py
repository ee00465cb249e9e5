"""Datasets for shallownet: generation, validation, train/test split, fingerprint.

Every dataset is a generator ``fn(seed, **params) -> (X, y)`` registered in
``GENERATORS``:

* ``X``: float64, shape ``(N, n_features)``, C-contiguous (row-major)
* ``y``: int64, shape ``(N,)``, values in {0, 1}

except ``csv``, whose ``X`` is a DataFrame (the feature names are its columns) and ``y`` a
``pandas.Categorical`` of K classes (codes 0 .. K - 1, the labels are its categories).

A dataset config is a plain dict, e.g.
``{"name": "spiral", "noise": 0.1, "seed": 42, "test_size": 0.5}``.
Besides the generator's own keyword parameters it may hold the common keys

* ``seed`` (int >= 0, default 42): the DATA seed (generation and split),
  separate from the model's init seed;
* ``test_size`` (float in (0, 1) or None, default ``DEFAULT_TEST_SIZE[name]``):
  None means "no split": the test set is (a copy of) the training set;
* ``standardize`` (bool, default False): fit mean/std on the training part
  only and apply them to both parts.

``load(cfg)`` validates, generates, splits, optionally standardizes and
fingerprints, returning a ``Split``.

Heavy imports (pandas, scikit-learn) are done lazily inside the functions
that need them, so importing this module only costs numpy.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_SEED = 42
MISSING = "???"  # OmegaConf's mandatory value: conf/dataset/csv.yaml's path and target
CSV_KEYS = {"path": "the CSV file", "target": "the name of its label column"}
COMMON_KEYS = ("name", "seed", "test_size", "standardize")
# TensorFlow-Playground datasets: split by shuffling and taking the first
# (1 - test_size) fraction as training data (as Playground does).
PLAYGROUND = ("circle", "gauss", "spiral", "playground_xor")
PLAYGROUND_RADIUS = 5.0


class DataError(ValueError):
    """Bad data or bad dataset parameters.

    The message is shown to a user as-is: it says what is wrong and what to do.
    """


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def _features(X) -> np.ndarray:
    """Return X as a C-contiguous float64 array.  # (N, n_features)"""
    return np.ascontiguousarray(X, dtype=np.float64)


def _labels(y) -> np.ndarray:
    """Return y as a C-contiguous int64 vector.  # (N,)"""
    return np.ascontiguousarray(np.asarray(y).reshape(-1), dtype=np.int64)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return (_is_int(v) or isinstance(v, (float, np.floating))) and bool(np.isfinite(v))


def _shuffle_rng(seed: int) -> np.random.Generator:
    """RNG used to shuffle Playground datasets before splitting.

    Seeded with (seed, 1) so it is a stream independent of the generation
    stream ``default_rng(seed)`` while still determined by the data seed.
    """
    return np.random.default_rng([seed, 1])


# --------------------------------------------------------------------------
# generators: fn(seed, **params) -> (X (N, d) float64, y (N,) int64)
# --------------------------------------------------------------------------


def classification(seed, n_samples=500, n_features=3, class_sep=1.5, flip_y=0.1):
    """Tutorial 000: sklearn make_classification, all features informative.

    Returns X # (n_samples, n_features), y # (n_samples,).
    """
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_redundant=0,
        n_informative=n_features,
        n_clusters_per_class=1,
        flip_y=flip_y,
        class_sep=class_sep,
        random_state=seed,
    )
    return _features(X), _labels(y)


def xor(seed):
    """The 4 XOR points; ``seed`` is unused.  X # (4, 2), y # (4,) = [0, 1, 1, 0]."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y


def toy4(seed):
    """Tutorial 003's 4-sample toy; ``seed`` is unused.  X # (4, 2), y # (4,) = [1, 1, 0, 0]."""
    X = np.array([[0.5, 1.5], [1.0, 0.8], [-0.5, 0.2], [0.0, -1.0]], dtype=np.float64)
    y = np.array([1, 1, 0, 0], dtype=np.int64)
    return X, y


def blobs(seed, n_samples=1000, cov_scale=1.0):
    """Tutorial 001: two correlated Gaussian blobs around (2, 2) (label 0) and (6, 6) (label 1).

    The covariances are ``cov_scale`` x tutorial 001's [[1, 0.5], [0.5, 1]] (class 0) and
    [[1, -0.5], [-0.5, 1]] (class 1). The default 1.0 is the tutorial's data (separable: a
    2-8-4-1 net reaches accuracy 1.0) and draws exactly what it drew before the parameter
    existed; larger values make the blobs overlap (cov_scale 9: per-coordinate std 3).

    Returns X # (n_samples, 2) (class 0 rows first), y # (n_samples,).
    """
    if not _is_real(cov_scale) or not cov_scale > 0:
        raise DataError(f"dataset 'blobs': cov_scale={cov_scale!r} is invalid; use a number > 0.")
    rng = np.random.default_rng(seed)
    n0 = n_samples // 2
    n1 = n_samples - n0
    cov_0 = np.array([[1, 0.5], [0.5, 1]]) * float(cov_scale)  # (2, 2)
    cov_1 = np.array([[1, -0.5], [-0.5, 1]]) * float(cov_scale)  # (2, 2)
    class_0 = rng.multivariate_normal([2, 2], cov_0, n0)  # (n0, 2)
    class_1 = rng.multivariate_normal([6, 6], cov_1, n1)  # (n1, 2)
    X = np.vstack([class_0, class_1])
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    return _features(X), _labels(y)


def quadrant(seed, n_samples=200):
    """Tutorial 002: standard-normal points, label 1 where x0 * x1 > 0.

    Returns X # (n_samples, 2), y # (n_samples,).
    """
    X = np.random.default_rng(seed).standard_normal((n_samples, 2))
    y = X[:, 0] * X[:, 1] > 0
    return _features(X), _labels(y)


def moons(seed, n_samples=500, noise=0.2):
    """sklearn make_moons.  X # (n_samples, 2), y # (n_samples,)."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return _features(X), _labels(y)


def circle(seed, n_samples=500, noise=0.0):
    """Playground "circle": a disc (label 1) inside a ring (label 0), R = 5.

    n//2 points with radius ~ U(0, 0.5R), the rest with radius ~ U(0.7R, R);
    label 1 iff the *noised* point (x + nx, y + ny), nx, ny ~ U(-R, R) * noise,
    lies within 0.5R of the origin. The stored point is the un-noised one.
    Returns X # (n_samples, 2), y # (n_samples,).
    """
    rng = np.random.default_rng(seed)
    R = PLAYGROUND_RADIUS
    n_in = n_samples // 2
    r = np.concatenate([rng.uniform(0, 0.5 * R, n_in), rng.uniform(0.7 * R, R, n_samples - n_in)])  # (N,)
    angle = rng.uniform(0, 2 * np.pi, n_samples)  # (N,)
    X = np.column_stack([r * np.sin(angle), r * np.cos(angle)])  # (N, 2)
    shift = rng.uniform(-R, R, (n_samples, 2)) * noise  # (N, 2)
    y = np.hypot(X[:, 0] + shift[:, 0], X[:, 1] + shift[:, 1]) < 0.5 * R
    return _features(X), _labels(y)


def gauss(seed, n_samples=500, noise=0.0):
    """Playground "gauss": normal clusters around (2, 2) (label 1) and (-2, -2) (label 0).

    Variance per coordinate is 0.5 + 7 * noise (noise 0..0.5 -> variance 0.5..4).
    Returns X # (n_samples, 2) (label-1 rows first), y # (n_samples,).
    """
    rng = np.random.default_rng(seed)
    std = np.sqrt(0.5 + 7.0 * noise)
    n_pos = n_samples // 2
    n_neg = n_samples - n_pos
    pos = rng.normal([2.0, 2.0], std, (n_pos, 2))  # (n_pos, 2)
    neg = rng.normal([-2.0, -2.0], std, (n_neg, 2))  # (n_neg, 2)
    X = np.vstack([pos, neg])
    y = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    return _features(X), _labels(y)


def spiral(seed, n_samples=500, noise=0.0):
    """Playground "spiral": two interleaved arms, label 1 (delta 0) and label 0 (delta pi).

    For an arm of m points and i < m: r = 5 i / m, t = 1.75 * (i / m) * 2 pi + delta,
    x = r sin t + U(-1, 1) * noise, y = r cos t + U(-1, 1) * noise.
    Returns X # (n_samples, 2) (label-1 arm first), y # (n_samples,).
    """
    rng = np.random.default_rng(seed)
    parts, labels = [], []
    n_pos = n_samples // 2
    for m, delta, label in ((n_pos, 0.0, 1), (n_samples - n_pos, np.pi, 0)):
        frac = np.arange(m) / m  # (m,)
        r = 5.0 * frac
        t = 1.75 * frac * 2 * np.pi + delta
        pts = np.column_stack([r * np.sin(t), r * np.cos(t)])  # (m, 2)
        pts = pts + rng.uniform(-1, 1, (m, 2)) * noise
        parts.append(pts)
        labels.append(np.full(m, label))
    return _features(np.vstack(parts)), _labels(np.concatenate(labels))


def playground_xor(seed, n_samples=500, noise=0.0):
    """Playground "xor": x, y ~ U(-5, 5), each pushed 0.3 away from its axis.

    Label 1 iff (x + nx)(y + ny) >= 0 with nx, ny ~ U(-5, 5) * noise; the stored
    point is the un-noised one. Returns X # (n_samples, 2), y # (n_samples,).
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-5, 5, (n_samples, 2))  # (N, 2)
    X = X + np.where(X > 0, 0.3, -0.3)
    shift = rng.uniform(-5, 5, (n_samples, 2)) * noise  # (N, 2)
    y = (X[:, 0] + shift[:, 0]) * (X[:, 1] + shift[:, 1]) >= 0
    return _features(X), _labels(y)


def _header(path):
    """The CSV's column names as written (pandas renames a repeated 'a' to 'a.1' silently)."""
    import csv as csv_module

    with open(path, newline="") as fh:
        return next(csv_module.reader(fh), [])


def _labels_01(values, target, path, positive):
    """(y (n,) in {0, 1}, class names) from a two-valued target column: the values 0/1 (or
    false/true) as they are, or 1 where the value is ``positive``. Other labels need
    ``positive``: which of two strings (or of 1 and 2) is the class the AUC and the class
    balance speak of is not ours to guess."""
    classes = np.unique(values)
    shown = [c.item() if hasattr(c, "item") else c for c in classes[:10]]
    if positive is not None:
        hits = [c for c in classes if str(c) == str(positive)]
        if not hits:
            raise DataError(
                f"csv dataset: positive={positive!r} is not a value of target column "
                f"'{target}' in '{path}' (its values: {shown})."
            )
        other = next(str(c) for c in classes if str(c) != str(positive))
        return np.array([str(v) == str(positive) for v in values]), (other, str(hits[0]))
    if set(classes.tolist()) <= {0, 1, False, True}:
        return values == 1, tuple(str(c) for c in classes)
    raise DataError(
        f"csv dataset: target column '{target}' in '{path}' has the values {shown}, not 0/1; "
        f"name the positive class with dataset.positive=<value> (e.g. dataset.positive={shown[-1]})."
    )


def _labels_k(values, target, path, positive):
    """(y (n,) in 0 .. K - 1, class names): K > 2 labels numbered in sorted order."""
    classes = np.unique(values)
    if positive is not None:
        raise DataError(
            f"csv dataset: positive={positive!r} names class 1 of two classes, but target column "
            f"'{target}' in '{path}' has {classes.size} (e.g. {classes.tolist()[:10]}); leave "
            "dataset.positive out: they become classes 0 .. K-1 in sorted order."
        )
    return np.searchsorted(classes, values), tuple(str(c) for c in classes)


def csv(seed, path, target, positive=None):
    """A classification table read from a CSV file with pandas.

    ``target`` is the label column; every other column is a (numeric) feature. Two classes:
    0/1 (or booleans), or any two values with ``positive`` naming the one that is class 1.
    More: classes 0 .. K-1 in the sorted order of their values (model.output=softmax).
    ``seed`` is unused here (it only drives the split).
    Returns X # (n_rows, n_columns - 1) float64 DataFrame of the named features, y # (n_rows,)
    Categorical whose categories are the classes' labels as written in the file.
    """
    import pandas as pd
    from pandas.api.types import is_numeric_dtype

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(_missing_file_message(path))
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(  # pandas' own message ends in a newline: one line, whitespace folded
            f"csv dataset: cannot read path='{path}' as CSV ({' '.join(str(exc).split())}). "
            "Give a comma-separated file with a header row."
        ) from exc
    target = str(target)
    header = _header(path)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DataError(
            f"csv dataset: column name(s) {repeated} appear more than once in "
            f"'{path}'; give every column its own name."
        )
    columns = [str(c) for c in df.columns]
    if target not in columns:
        raise DataError(
            f"csv dataset: target column '{target}' not found in '{path}'; "
            f"its columns are {columns}. Set 'target' to one of them."
        )
    if len(df) == 0:
        raise DataError(f"csv dataset: '{path}' has a header but no rows. Add data rows.")
    df.columns = columns
    features = [c for c in columns if c != target]
    if not features:
        raise DataError(
            f"csv dataset: '{path}' has only the target column '{target}'; "
            "add at least one numeric feature column."
        )
    non_numeric = [c for c in features if not is_numeric_dtype(df[c])]
    if non_numeric:
        raise DataError(
            f"csv dataset: non-numeric feature column(s) {non_numeric} in '{path}'. "
            "Encode them as numbers or drop them from the file."
        )
    nan_mask = df.isna()
    if nan_mask.to_numpy().any():
        nan_cols = [c for c in columns if nan_mask[c].any()]
        n_rows = int(nan_mask.any(axis=1).sum())
        raise DataError(
            f"csv dataset: NaN / missing values in column(s) {nan_cols} of '{path}' "
            f"({n_rows} row(s)). Drop or fill those rows."
        )
    classes = np.unique(df[target].to_numpy())
    if classes.size < 2:
        raise DataError(
            f"csv dataset: target column '{target}' in '{path}' has fewer than 2 classes "
            f"(only {classes.tolist()}). One-class data cannot be used; give both classes."
        )
    labels = _labels_01 if classes.size == 2 else _labels_k
    y, names = labels(df[target].to_numpy(), target, path, positive)  # (n_rows,), K names
    return df[features].astype(np.float64), pd.Categorical.from_codes(_labels(y), categories=names)


GENERATORS = {
    "classification": classification,
    "xor": xor,
    "toy4": toy4,
    "blobs": blobs,
    "quadrant": quadrant,
    "moons": moons,
    "circle": circle,
    "gauss": gauss,
    "spiral": spiral,
    "playground_xor": playground_xor,
    "csv": csv,
}

DEFAULT_TEST_SIZE = {
    "classification": 0.2,
    "xor": None,
    "toy4": None,
    "blobs": 0.2,
    "quadrant": 0.2,
    "moons": 0.2,
    "circle": 0.5,
    "gauss": 0.5,
    "spiral": 0.5,
    "playground_xor": 0.5,
    "csv": 0.2,
}


# --------------------------------------------------------------------------
# the split
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """A train/test split of one dataset.

    X_train # (n_train, d) float64, X_test # (n_test, d) float64,
    y_train # (n_train,) int64, y_test # (n_test,) int64.
    ``fingerprint``: sha256 hex of the four arrays (dtype, shape and bytes of
    each, in the order X_train, X_test, y_train, y_test).
    ``test_is_train``: True when test_size is None (the test set is a copy of
    the training set, for the tiny 4-point datasets).
    ``feature_names`` (d,): a CSV's column names, else x0, x1, ...; ``classes`` (K,): the
    label each class stands for (a CSV's values, else '0', '1').
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    fingerprint: str
    test_is_train: bool
    feature_names: tuple = ()
    classes: tuple = ("0", "1")


def _fingerprint(*arrays: np.ndarray) -> str:
    """sha256 hex over dtype, shape and raw bytes of each array, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _missing_file_message(path) -> str:
    given = Path(path)
    where = "" if given.is_absolute() else f" (from the working directory {os.getcwd()})"
    return f"dataset.path: no CSV file at {given.resolve()}{where}; set it to the file's path"


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def _signature_params(name: str) -> list[inspect.Parameter]:
    """Keyword parameters of the generator, without ``seed``."""
    params = inspect.signature(GENERATORS[name]).parameters.values()
    return [p for p in params if p.name != "seed"]


def dataset_params(name) -> list[str]:
    """Valid config keys for dataset ``name``: its generator's parameters, then the common keys."""
    if name not in GENERATORS:
        raise DataError(
            f"dataset: unknown name={name!r}; valid names: {sorted(GENERATORS)}. Set 'name' to one of them."
        )
    own = [p.name for p in _signature_params(name)]
    return own + [k for k in COMMON_KEYS if k not in own]


def _check_param(name: str, key: str, value) -> None:
    """Cheap type/range check of one generator parameter (raises DataError)."""
    where = f"dataset '{name}': "
    if key == "n_samples":
        if not _is_int(value) or value < 4:
            raise DataError(f"{where}n_samples={value!r} is invalid; use an integer >= 4.")
    elif key == "n_features":
        if not _is_int(value) or value < 1:
            raise DataError(f"{where}n_features={value!r} is invalid; use an integer >= 1.")
    elif key == "noise":
        if name in PLAYGROUND:
            if not _is_real(value) or not 0.0 <= value <= 0.5:
                raise DataError(
                    f"{where}noise={value!r} is out of range; Playground noise is a "
                    "number in [0, 0.5] (slider value / 100)."
                )
        elif not _is_real(value) or value < 0:
            raise DataError(f"{where}noise={value!r} is invalid; use a number >= 0.")
    elif key == "flip_y":
        if not _is_real(value) or not 0.0 <= value <= 1.0:
            raise DataError(f"{where}flip_y={value!r} is invalid; use a number in [0, 1].")
    elif key == "class_sep":
        if not _is_real(value) or value < 0:
            raise DataError(f"{where}class_sep={value!r} is invalid; use a number >= 0.")
    elif key in ("path", "target") and value == MISSING:
        example = "dataset.path=data.csv" if key == "path" else "dataset.target=label"
        raise DataError(f"dataset=csv needs dataset.{key} ({CSV_KEYS[key]}), e.g. {example}")
    elif key == "path":
        if not isinstance(value, (str, os.PathLike)) or str(value) == "":
            raise DataError(f"{where}path={value!r} is invalid; give the CSV file's path.")
        if not Path(value).expanduser().is_file():
            raise DataError(_missing_file_message(Path(value).expanduser()))
    elif key == "target":
        if not (isinstance(value, str) and value) and not _is_int(value):
            raise DataError(f"{where}target={value!r} is invalid; give the label column's name.")
    elif key == "positive":
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise DataError(f"{where}positive={value!r} is invalid; give the label of class 1.")


def validate_params(cfg: dict) -> None:
    """Check a dataset config without generating data; raise DataError on the first problem.

    Checks: 'name' is known; every key is valid for that dataset; required
    generator parameters are present; seed is an int in [0, 2**32 - 1];
    test_size is None or in the open interval (0, 1); standardize is a bool;
    per-parameter ranges (n_samples >= 4, Playground noise in [0, 0.5], ...);
    for csv, that the file exists.
    """
    if not isinstance(cfg, Mapping):
        raise DataError(
            f"dataset: config must be a mapping like {{'name': 'spiral'}}, got {type(cfg).__name__}."
        )
    if "name" not in cfg or cfg["name"] is None:
        raise DataError(f"dataset: missing key 'name'; choose one of {sorted(GENERATORS)}.")
    name = cfg["name"]
    if not isinstance(name, str) or name not in GENERATORS:
        raise DataError(
            f"dataset: unknown name={name!r}; valid names: {sorted(GENERATORS)}. Set 'name' to one of them."
        )
    valid = dataset_params(name)
    unknown = [k for k in cfg if k not in valid]
    if unknown:
        raise DataError(
            f"dataset '{name}': unknown key(s) {unknown}; valid keys: {valid}. "
            "Remove them or fix their spelling."
        )
    missing = [
        p.name for p in _signature_params(name) if p.default is inspect.Parameter.empty and p.name not in cfg
    ]
    if missing:
        raise DataError(f"dataset '{name}': missing required key(s) {missing}; add them.")

    seed = cfg.get("seed", DEFAULT_SEED)
    if not _is_int(seed) or not 0 <= seed < 2**32:
        raise DataError(f"dataset '{name}': seed={seed!r} is invalid; use an integer in [0, 2**32 - 1].")
    test_size = cfg.get("test_size", DEFAULT_TEST_SIZE[name])
    if test_size is not None and (not _is_real(test_size) or not 0.0 < test_size < 1.0):
        raise DataError(
            f"dataset '{name}': test_size={test_size!r} is invalid; use a fraction in the "
            "open interval (0, 1), or null for 'test on the training set'."
        )
    standardize = cfg.get("standardize", False)
    if not isinstance(standardize, (bool, np.bool_)):
        raise DataError(f"dataset '{name}': standardize={standardize!r} is invalid; use true or false.")
    for key, value in cfg.items():
        if key not in COMMON_KEYS:
            _check_param(name, key, value)


# --------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------


def _split(name, X, y, seed, test_size):
    """Split (X # (N, d), y # (N,)) into train/test parts; returns (X_tr, X_te, y_tr, y_te)."""
    n = len(y)
    if name in PLAYGROUND:
        # Playground: shuffle, first floor(N * (1 - test_size)) points are training data.
        perm = _shuffle_rng(seed).permutation(n)  # (N,)
        X, y = X[perm], y[perm]
        if test_size is None:
            return X, X.copy(), y, y.copy()
        n_train = int(np.floor(n * (1.0 - test_size) + 1e-9))  # 1e-9: 500 * (1 - 0.9) -> 50
        X_tr, X_te, y_tr, y_te = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
    elif test_size is None:
        return X, X.copy(), y, y.copy()
    else:
        from sklearn.model_selection import train_test_split

        try:
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed)
        except ValueError as exc:
            raise DataError(
                f"dataset '{name}': cannot split {n} samples with test_size={test_size} "
                f"({exc}). Use more samples or another test_size."
            ) from exc
    if len(y_tr) == 0 or len(y_te) == 0:
        raise DataError(
            f"dataset '{name}': test_size={test_size} leaves an empty "
            f"{'training' if len(y_tr) == 0 else 'test'} part of {n} samples. "
            "Use more samples or another test_size."
        )
    return X_tr, X_te, y_tr, y_te


def load(cfg: dict) -> Split:
    """Validate ``cfg``, generate the data with seed=cfg.get("seed", 42), split, standardize, fingerprint.

    Raises DataError for bad parameters, bad CSV data or a one-class training part.
    """
    validate_params(cfg)
    name = cfg["name"]
    seed = int(cfg.get("seed", DEFAULT_SEED))
    test_size = cfg.get("test_size", DEFAULT_TEST_SIZE[name])
    test_size = None if test_size is None else float(test_size)
    standardize = bool(cfg.get("standardize", False))
    params = {k: v for k, v in cfg.items() if k not in COMMON_KEYS}

    X, y = GENERATORS[name](seed, **params)  # (N, d), (N,)
    features, class_names = _names(X, y)
    X, y = _features(X), _labels(getattr(y, "codes", y))
    if not np.isfinite(X).all():
        raise DataError(f"dataset '{name}': the features contain inf or NaN values; clean the data.")

    X_tr, X_te, y_tr, y_te = _split(name, X, y, seed, test_size)
    classes = np.unique(y_tr)
    if classes.size < 2:
        raise DataError(
            f"one-class data: the training part of dataset '{name}' ({len(y_tr)} samples, "
            f"seed={seed}, test_size={test_size}) has only class {classes.tolist()}. "
            "Use more samples, another seed or another test_size."
        )

    if standardize:
        mean = X_tr.mean(axis=0)  # (d,)
        std = X_tr.std(axis=0)  # (d,)
        std = np.where(std > 0, std, 1.0)  # constant columns: only centre them
        X_tr = (X_tr - mean) / std
        X_te = (X_te - mean) / std

    X_tr, X_te = _features(X_tr), _features(X_te)
    y_tr, y_te = _labels(y_tr), _labels(y_te)
    return Split(
        X_train=X_tr,
        X_test=X_te,
        y_train=y_tr,
        y_test=y_te,
        fingerprint=_fingerprint(X_tr, X_te, y_tr, y_te),
        test_is_train=test_size is None,
        feature_names=features,
        classes=class_names,
    )


def _names(X, y):
    """(feature names (d,), class names (K,)) of a generator's data: a CSV's columns and labels
    (a DataFrame and a Categorical), else x0, x1, ... and '0', '1'."""
    features = [str(c) for c in getattr(X, "columns", [])] or [f"x{i}" for i in range(np.shape(X)[1])]
    return tuple(features), tuple(str(c) for c in getattr(y, "categories", ["0", "1"]))


def resolved(cfg: dict) -> dict:
    """``cfg`` with a CSV's ``path`` absolute (``~`` expanded): what a run records, so that
    it can be re-run (reproduced) from any directory."""
    if cfg.get("name") != "csv" or not isinstance(cfg.get("path"), (str, os.PathLike)):
        return cfg
    return {**cfg, "path": str(Path(cfg["path"]).expanduser().resolve())}


# --------------------------------------------------------------------------
# planned size (the preflight's memory check, before any data exists)
# --------------------------------------------------------------------------

# Copies of X # (N, d) float64 alive at once while a generator draws, splits and standardizes
# it (the draw, sklearn's or the shuffle's copy, the train/test parts, the standardized parts).
DATA_COPIES = 4


def planned_size(cfg: dict) -> tuple[int, int] | None:
    """(rows, features) a generator's config will produce; None for a CSV (its file decides)."""
    name = cfg["name"]
    if name == "csv":
        return None
    defaults = {p.name: p.default for p in _signature_params(name)}
    rows = cfg.get("n_samples", defaults.get("n_samples", 4))
    return int(rows), int(cfg.get("n_features", defaults.get("n_features", 2)))


def planned_bytes(cfg: dict) -> int:
    """Bytes the data of a generator's config needs while it is made: DATA_COPIES of X and the
    labels, and for ``classification`` sklearn's per-class covariance of the informative
    features (n_features x n_features float64 each, drawn from a matrix of that size too)."""
    size = planned_size(cfg)
    if size is None:
        return 0
    rows, feats = size
    need = 8 * rows * (DATA_COPIES * feats + 3)
    if cfg["name"] == "classification":
        need += 8 * 3 * feats * feats
    return need
