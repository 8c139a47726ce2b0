"""Extraction maths on planted data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.vectors import mean_difference, pca_of_differences, prompts_hash


def test_mean_difference_is_the_difference_of_means_per_layer():
    rng = np.random.default_rng(0)
    positive = rng.normal(size=(5, 3, 8))
    negative = rng.normal(size=(7, 3, 8))
    result = mean_difference(positive, negative)
    assert result.shape == (3, 8) and result.dtype == np.float32
    np.testing.assert_allclose(result, positive.mean(0) - negative.mean(0), rtol=1e-6)


def test_mean_difference_recovers_a_planted_shift_unnormalised():
    rng = np.random.default_rng(1)
    shift = np.zeros((2, 16))
    shift[0, 3] = 5.0
    shift[1, 7] = -2.0
    negative = rng.normal(scale=0.01, size=(400, 2, 16))
    positive = rng.normal(scale=0.01, size=(400, 2, 16)) + shift
    np.testing.assert_allclose(mean_difference(positive, negative), shift, atol=0.005)


@pytest.mark.parametrize(
    ("positive", "negative", "message"),
    [
        (np.ones((2, 3)), np.ones((2, 3)), "n_samples, n_layers, n_embd"),
        (np.ones((0, 2, 3)), np.ones((2, 2, 3)), "no samples"),
        (np.ones((2, 2, 3)), np.ones((2, 2, 4)), "share"),
        (np.full((2, 2, 3), np.inf), np.ones((2, 2, 3)), "infinite"),
    ],
)
def test_mean_difference_validates(positive, negative, message):
    with pytest.raises(ValueError, match=message):
        mean_difference(positive, negative)


def planted_pairs(rng, direction, n_pairs=40, noise=0.05, n_layers=2):
    """Pairs whose difference is a varying multiple of ``direction`` plus small noise."""
    n_embd = direction.size
    negative = rng.normal(size=(n_pairs, n_layers, n_embd))
    strength = rng.uniform(1.0, 3.0, size=(n_pairs, 1, 1))
    positive = negative + strength * direction + rng.normal(scale=noise, size=negative.shape)
    return positive, negative


@pytest.mark.parametrize("center", [True, False])
def test_pca_recovers_the_planted_direction_with_the_right_sign(center):
    rng = np.random.default_rng(2)
    direction = rng.normal(size=32)
    direction /= np.linalg.norm(direction)
    positive, negative = planted_pairs(rng, direction)
    result = pca_of_differences(positive, negative, center=center)
    assert result.directions.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(result.directions, axis=1), 1.0, rtol=1e-6)
    cosines = result.directions @ direction
    assert (cosines > 0.99).all()  # aligned, not anti-aligned
    assert (result.explained_variance_ratio > 0.8).all()
    assert (result.agreement == 1.0).all()
    # swapping the roles flips the sign
    swapped = pca_of_differences(negative, positive, center=center)
    assert (swapped.directions @ direction < -0.99).all()


def test_centred_pca_misses_a_constant_shift_that_uncentred_pca_finds():
    rng = np.random.default_rng(3)
    direction = np.zeros(16)
    direction[0] = 1.0
    negative = rng.normal(size=(30, 1, 16))
    positive = negative + 4.0 * direction + rng.normal(scale=0.1, size=negative.shape)
    uncentred = pca_of_differences(positive, negative, center=False)
    assert uncentred.directions[0] @ direction > 0.99
    centred = pca_of_differences(positive, negative, center=True)
    assert abs(centred.directions[0] @ direction) < 0.9
    assert centred.explained_variance_ratio[0] < 0.5  # the report shows the component is noise


def test_pca_validates_pairs():
    with pytest.raises(ValueError, match="pairs rows"):
        pca_of_differences(np.ones((3, 1, 4)), np.ones((2, 1, 4)))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        pca_of_differences(np.ones((1, 1, 4)), np.zeros((1, 1, 4)))
    same = np.ones((3, 1, 4))
    with pytest.raises(ValueError, match="no variance"):
        pca_of_differences(same, same)


def test_prompts_hash_is_canonical():
    a = prompts_hash({"pairs": [["pos", "neg"]], "questions": ["q1", "q2"], "é": "ü"})
    b = prompts_hash({"questions": ["q1", "q2"], "é": "ü", "pairs": [("pos", "neg")]})
    assert a == b and len(a) == 64
    assert a != prompts_hash({"pairs": [["pos", "neg"]], "questions": ["q2", "q1"], "é": "ü"})
    with pytest.raises(ValueError, match="JSON"):
        prompts_hash({"x": object()})
    with pytest.raises(ValueError, match="JSON"):
        prompts_hash([float("nan")])
