"""Tests for shallownet.datasets: generators, splits, fingerprints and DataError messages."""

import functools

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from shallownet import datasets as ds
from shallownet.datasets import DataError, load, validate_params

# ----------------------------------------------------------------- generators / load


def test_classification_reproduces_tutorial_000():
    X, y = make_classification(
        n_samples=500,
        n_features=3,
        n_redundant=0,
        n_informative=3,
        n_clusters_per_class=1,
        flip_y=0.1,
        class_sep=1.5,
        random_state=42,
    )
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=42)
    s = load({"name": "classification"})  # defaults: seed 42, test_size 0.2
    np.testing.assert_array_equal(s.X_train, X_tr)
    np.testing.assert_array_equal(s.X_test, X_te)
    np.testing.assert_array_equal(s.y_train, y_tr)
    np.testing.assert_array_equal(s.y_test, y_te)
    assert s.X_train.shape == (400, 3) and s.X_test.shape == (100, 3)
    assert s.X_train.dtype == np.float64 and s.y_train.dtype == np.int64
    assert s.X_train.flags.c_contiguous
    assert not s.test_is_train


@pytest.mark.parametrize("name", sorted(ds.GENERATORS.keys() - {"csv"}))
def test_generator_contract(name):
    X, y = ds.GENERATORS[name](7)
    assert X.dtype == np.float64 and X.ndim == 2 and X.flags.c_contiguous
    assert y.dtype == np.int64 and y.shape == (X.shape[0],)
    assert set(np.unique(y).tolist()) == {0, 1}
    X2, y2 = ds.GENERATORS[name](7)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    s = load({"name": name, "seed": 7})
    assert (s.X_test.shape[0] + s.X_train.shape[0] == X.shape[0]) or s.test_is_train


def test_xor_and_toy4_are_tutorial_points_and_test_on_train():
    s = load({"name": "xor"})
    np.testing.assert_array_equal(s.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(s.y_train, [0, 1, 1, 0])
    assert s.test_is_train
    np.testing.assert_array_equal(s.X_test, s.X_train)
    np.testing.assert_array_equal(s.y_test, s.y_train)
    assert s.X_test is not s.X_train

    t = load({"name": "toy4"})
    np.testing.assert_array_equal(t.X_train, [[0.5, 1.5], [1.0, 0.8], [-0.5, 0.2], [0.0, -1.0]])
    np.testing.assert_array_equal(t.y_train, [1, 1, 0, 0])
    assert t.test_is_train


def test_quadrant_labels_follow_sign_rule():
    X, y = ds.quadrant(42)
    assert X.shape == (200, 2)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(np.int64))
    np.testing.assert_array_equal(X, np.random.default_rng(42).standard_normal((200, 2)))
    s = load({"name": "quadrant"})
    assert s.X_train.shape == (160, 2) and s.X_test.shape == (40, 2)
    for Xp, yp in ((s.X_train, s.y_train), (s.X_test, s.y_test)):
        np.testing.assert_array_equal(yp, (Xp[:, 0] * Xp[:, 1] > 0).astype(np.int64))


def test_blobs_means_and_standardize_on_train_only():
    X, y = ds.blobs(42)
    assert X.shape == (1000, 2) and y.sum() == 500
    np.testing.assert_allclose(X[y == 0].mean(axis=0), [2, 2], atol=0.15)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [6, 6], atol=0.15)
    assert np.corrcoef(X[y == 0].T)[0, 1] == pytest.approx(0.5, abs=0.1)
    assert np.corrcoef(X[y == 1].T)[0, 1] == pytest.approx(-0.5, abs=0.1)

    raw = load({"name": "blobs"})
    s = load({"name": "blobs", "standardize": True})
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.X_train.std(axis=0), 1.0, atol=1e-12)
    # the test part uses the training mean/std, so it is not exactly 0/1
    mean, std = raw.X_train.mean(axis=0), raw.X_train.std(axis=0)
    np.testing.assert_allclose(s.X_test, (raw.X_test - mean) / std, rtol=1e-12)
    assert np.abs(s.X_test.mean(axis=0)).max() > 1e-6
    np.testing.assert_array_equal(s.y_train, raw.y_train)
    assert s.fingerprint != raw.fingerprint


def test_circle_labels_are_radius_rule_without_noise():
    X, y = ds.circle(42)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_array_equal(y, (r < 2.5).astype(np.int64))
    assert y.sum() == 250
    assert r.max() <= 5.0
    assert r[y == 0].min() >= 3.5
    # noise flips some labels near the boundary, but not most of them
    Xn, yn = ds.circle(42, noise=0.5)
    flipped = np.mean(yn != (np.hypot(Xn[:, 0], Xn[:, 1]) < 2.5))
    assert 0.01 < flipped < 0.5


def test_spiral_two_arms_within_radius_5():
    X, y = ds.spiral(42)
    r = np.hypot(X[:, 0], X[:, 1])
    assert X.shape == (500, 2) and y.sum() == 250
    assert r.max() <= 5.0
    # the label-0 arm is the label-1 arm rotated by pi
    np.testing.assert_allclose(X[y == 0], -X[y == 1], atol=1e-12)
    np.testing.assert_allclose(r[y == 1], 5.0 * np.arange(250) / 250, atol=1e-12)
    Xn, _ = ds.spiral(42, noise=0.5)
    assert 0 < np.abs(Xn - X).max() <= 0.5


def test_gauss_cluster_means_and_variance():
    X, y = ds.gauss(42)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [2, 2], atol=0.15)
    np.testing.assert_allclose(X[y == 0].mean(axis=0), [-2, -2], atol=0.15)
    np.testing.assert_allclose(X[y == 1].var(axis=0), 0.5, atol=0.15)
    Xn, yn = ds.gauss(42, noise=0.5)
    np.testing.assert_allclose(Xn[yn == 0].var(axis=0), 4.0, rtol=0.2)


def test_playground_xor_padding_and_label_rule():
    X, y = ds.playground_xor(42)
    assert np.abs(X).min() >= 0.3 and np.abs(X).max() <= 5.3
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] >= 0).astype(np.int64))


@pytest.mark.parametrize("name", ["circle", "gauss", "spiral", "playground_xor"])
def test_playground_split_sizes_and_shuffle(name):
    s = load({"name": name})
    assert s.X_train.shape == (250, 2) and s.X_test.shape == (250, 2)
    assert s.y_train.shape == (250,) and s.y_test.shape == (250,)
    # shuffled: both classes in both parts, roughly balanced
    assert 0.35 < s.y_train.mean() < 0.65 and 0.35 < s.y_test.mean() < 0.65
    # the union of the parts is the generated data
    X, _ = ds.GENERATORS[name](42)
    all_pts = np.vstack([s.X_train, s.X_test])
    np.testing.assert_array_equal(np.sort(all_pts, axis=0), np.sort(X, axis=0))
    t = load({"name": name, "test_size": 0.2, "n_samples": 100})
    assert t.X_train.shape == (80, 2) and t.X_test.shape == (20, 2)


def test_moons_matches_sklearn():
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=500, noise=0.2, random_state=3)
    X2, y2 = ds.moons(3)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


# ----------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", ["classification", "blobs", "quadrant", "moons", "spiral", "circle"])
def test_fingerprint_deterministic_in_seed(name):
    a = load({"name": name, "seed": 1})
    b = load({"name": name, "seed": 1})
    c = load({"name": name, "seed": 2})
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 64 and int(a.fingerprint, 16) >= 0
    assert a.fingerprint != c.fingerprint
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_fingerprint_is_sha256_of_arrays():
    import hashlib

    s = load({"name": "xor"})
    h = hashlib.sha256()
    for a in (s.X_train, s.X_test, s.y_train, s.y_test):
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    assert s.fingerprint == h.hexdigest()
    # tiny datasets ignore the seed, so their fingerprint does not depend on it
    assert load({"name": "xor", "seed": 5}).fingerprint == s.fingerprint


def test_does_not_touch_global_numpy_rng():
    state = np.random.get_state()[1].copy()
    load({"name": "blobs"})
    load({"name": "spiral", "noise": 0.3})
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_dataset_params():
    assert ds.dataset_params("spiral") == ["n_samples", "noise", "name", "seed", "test_size", "standardize"]
    assert set(ds.dataset_params("classification")) >= {"n_features", "class_sep", "flip_y"}
    assert ds.dataset_params("csv")[:2] == ["path", "target"]
    assert ds.DEFAULT_TEST_SIZE.keys() == ds.GENERATORS.keys()
    with pytest.raises(DataError, match="valid names"):
        ds.dataset_params("nope")


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "cfg, words",
    [
        ({"name": "nope"}, ["name", "nope", "spiral", "classification"]),
        ({}, ["name"]),
        ({"name": "spiral", "nosie": 0.1}, ["nosie", "noise", "n_samples"]),
        ({"name": "xor", "n_samples": 10}, ["n_samples"]),
        ({"name": "spiral", "test_size": 0}, ["test_size"]),
        ({"name": "spiral", "test_size": 1.5}, ["test_size"]),
        ({"name": "spiral", "test_size": 1.0}, ["test_size"]),
        ({"name": "spiral", "noise": 0.9}, ["noise", "0.5"]),
        ({"name": "circle", "noise": -0.1}, ["noise"]),
        ({"name": "moons", "n_samples": 3}, ["n_samples", "4"]),
        ({"name": "quadrant", "n_samples": 10.5}, ["n_samples"]),
        ({"name": "spiral", "seed": -1}, ["seed"]),
        ({"name": "spiral", "seed": 1.5}, ["seed"]),
        ({"name": "blobs", "standardize": "yes"}, ["standardize"]),
        ({"name": "classification", "flip_y": 2.0}, ["flip_y"]),
        ({"name": "classification", "n_features": 0}, ["n_features"]),
        ({"name": "csv", "target": "label"}, ["path"]),
        ({"name": "csv", "path": "/no/such/file.csv", "target": "label"}, ["path", "/no/such/file.csv"]),
    ],
)
def test_validate_params_errors_name_the_key(cfg, words):
    with pytest.raises(DataError) as err:
        validate_params(cfg)
    for w in words:
        assert w in str(err.value)
    with pytest.raises(DataError):
        load(cfg)


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)


def _write(tmp_path, text, name="data.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    "text, words",
    [
        ("a,b,label\n1,x,0\n2,y,1\n3,z,0\n4,w,1\n", ["non-numeric", "'b'"]),
        ("a,b,label\n1,2,0\n2,,1\n3,4,0\n4,5,1\n", ["NaN", "'b'"]),
        ("a,b,label\n1,2,0\n2,3,\n3,4,0\n4,5,1\n", ["NaN", "'label'"]),
        ("a,b,label\n1,2,1\n2,3,1\n3,4,1\n4,5,1\n", ["label", "fewer than 2 classes"]),
        ("a,b,y\n1,2,0\n2,3,1\n3,4,0\n4,5,1\n", ["label", "'y'", "columns"]),
        ("label\n0\n1\n0\n1\n", ["feature"]),
        ("", ["path"]),
    ],
)
def test_csv_bad_data(tmp_path, text, words):
    path = _write(tmp_path, text)
    cfg = {"name": "csv", "path": path, "target": "label"}
    validate_params(cfg)  # cheap checks pass: the file exists
    with pytest.raises(DataError) as err:
        load(cfg)
    msg = str(err.value)
    assert path in msg
    for w in words:
        assert w in msg


def test_csv_valid_loads_with_right_shapes(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    labels = np.where(X[:, 0] > 0, "yes", "no")
    rows = "\n".join(f"{a},{b},{c},{lab}" for (a, b, c), lab in zip(X, labels))
    path = _write(tmp_path, "f1,f2,f3,label\n" + rows + "\n")
    s = load({"name": "csv", "path": path, "target": "label", "positive": "yes", "seed": 0})
    assert s.X_train.shape == (40, 3) and s.X_test.shape == (10, 3)
    assert s.y_train.shape == (40,) and s.y_test.shape == (10,)
    assert s.X_train.dtype == np.float64 and s.y_train.dtype == np.int64
    # positive "yes" -> 1; labels follow the sign of the first feature
    np.testing.assert_array_equal(s.y_train, (s.X_train[:, 0] > 0).astype(np.int64))
    np.testing.assert_array_equal(s.y_test, (s.X_test[:, 0] > 0).astype(np.int64))
    X_tr, _, _, _ = train_test_split(X, labels, test_size=0.2, random_state=0)
    np.testing.assert_allclose(s.X_train, X_tr, rtol=1e-12)


@pytest.mark.parametrize(
    "text, extra, words",
    [
        ("a,a,label\n1,2,0\n2,3,1\n3,4,0\n4,5,1\n", {}, ["['a']", "more than once"]),
        (
            "a,b,label\n1,2,no\n2,3,yes\n3,4,no\n4,5,yes\n",
            {},
            ["['no', 'yes']", "not 0/1", "dataset.positive=yes"],
        ),
        ("a,b,label\n1,2,1\n2,3,2\n3,4,1\n4,5,2\n", {}, ["[1, 2]", "not 0/1", "dataset.positive=2"]),
        (
            "a,b,label\n1,2,no\n2,3,yes\n3,4,no\n4,5,yes\n",
            {"positive": "maybe"},
            ["positive='maybe'", "['no', 'yes']"],
        ),
    ],
)
def test_csv_labels_and_columns_must_be_unambiguous(tmp_path, text, extra, words):
    """Repeated column names (pandas renames them silently) and labels other than 0/1
    without the positive class named are refused, with what to do."""
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load({"name": "csv", "path": path, "target": "label", **extra})
    for w in words:
        assert w in str(err.value), str(err.value)


def test_csv_positive_names_class_one(tmp_path):
    path = _write(tmp_path, "a,b,label\n" + "".join(f"{i},{i % 3},{1 + i % 2}\n" for i in range(20)))
    s = load({"name": "csv", "path": path, "target": "label", "positive": 2, "test_size": None})
    np.testing.assert_array_equal(s.y_train, np.arange(20) % 2)  # label 2 -> 1, label 1 -> 0


def test_one_class_training_part_raises():
    # quadrant with 4 points: pick a data seed whose 4 labels are all equal
    for seed in range(200):
        X, y = ds.quadrant(seed, n_samples=4)
        if y.min() == y.max():
            break
    else:  # pragma: no cover
        pytest.fail("no one-class quadrant seed found")
    with pytest.raises(DataError, match="one-class data"):
        load({"name": "quadrant", "n_samples": 4, "seed": seed})


@pytest.mark.parametrize("name", sorted(ds.GENERATORS))
def test_validate_params_generates_nothing(tmp_path, monkeypatch, name):
    """Validation is cheap because it never calls the generator (10**9 samples would take
    minutes): checked by making every generator raise."""
    cfg = {"name": name}
    if name == "csv":
        cfg.update(path=_write(tmp_path, "a,label\n1,0\n2,1\n"), target="label")
    if "n_samples" in ds.dataset_params(name):
        cfg["n_samples"] = 10**9

    original = ds.GENERATORS[name]

    @functools.wraps(original)  # the same signature: it names the dataset's valid keys
    def never(*args, **kwargs):
        raise AssertionError("validate_params generated data")

    monkeypatch.setitem(ds.GENERATORS, name, never)
    validate_params(cfg)
    with pytest.raises(AssertionError, match="generated data"):
        load(cfg)
