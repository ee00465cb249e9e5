"""blobs(cov_scale=...): the default draws the data it always drew; larger values overlap it."""

import numpy as np
import pytest

from shallownet import datasets as ds

# datasets.load({"name": "blobs"}).fingerprint before cov_scale existed (commit e04791b):
# runs logged before it must reproduce bit for bit.
BLOBS_DEFAULT_FINGERPRINT = "d198d6b9818cb1897330d92ffa2e33d8810eed75b4cd5e2b973350e8dbb5198a"
BLOBS_STANDARDIZED_FINGERPRINT = "cc6a621dd5677c8d9f0a6e49929c24c5499e9e1a84619732a8523861d5aea74b"


def test_default_blobs_are_bit_identical_to_before():
    assert ds.load({"name": "blobs"}).fingerprint == BLOBS_DEFAULT_FINGERPRINT
    assert ds.load({"name": "blobs", "standardize": True}).fingerprint == BLOBS_STANDARDIZED_FINGERPRINT
    assert ds.load({"name": "blobs", "cov_scale": 1.0}).fingerprint == BLOBS_DEFAULT_FINGERPRINT
    assert ds.load({"name": "blobs", "cov_scale": 1}).fingerprint == BLOBS_DEFAULT_FINGERPRINT


def test_cov_scale_widens_the_blobs_around_the_same_means():
    X1, y1 = ds.blobs(42)
    X9, y9 = ds.blobs(42, cov_scale=9.0)
    assert np.array_equal(y1, y9)
    means = np.where(y1[:, None] == 0, [2.0, 2.0], [6.0, 6.0])  # (N, 2)
    # the same standard-normal draws, scaled by sqrt(cov_scale) around each class mean
    np.testing.assert_allclose(X9 - means, 3.0 * (X1 - means), rtol=1e-9, atol=1e-12)
    for label in (0, 1):
        std = X9[y9 == label].std(axis=0)
        assert np.all(np.abs(std - 3.0) < 0.3), std


def test_overlap_grows_with_cov_scale():
    """The fraction of points on the wrong side of the line x0 + x1 = 8 between the means."""

    def wrong_side(cov_scale):
        X, y = ds.blobs(42, cov_scale=cov_scale)
        return float(np.mean((X.sum(axis=1) > 8) != (y == 1)))

    assert wrong_side(1.0) < 0.01  # the tutorial's blobs: (almost) linearly separable
    assert 0.1 < wrong_side(9.0) < 0.25  # tutorial001_blobs: they overlap
    assert wrong_side(1.0) < wrong_side(4.0) < wrong_side(9.0) < wrong_side(16.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "9", True, None])
def test_bad_cov_scale_is_a_data_error(bad):
    with pytest.raises(ds.DataError, match="cov_scale"):
        ds.load({"name": "blobs", "cov_scale": bad})


def test_cov_scale_is_a_blobs_parameter():
    assert "cov_scale" in ds.dataset_params("blobs")
    with pytest.raises(ds.DataError, match="unknown key"):
        ds.validate_params({"name": "quadrant", "cov_scale": 9.0})
