"""Projection and capping maths."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.vectors import cap_projection, capping_correction, project, unit_vector


def test_project_is_the_scalar_projection_on_the_unit_direction():
    direction = np.array([3.0, 4.0, 0.0])
    assert project([3.0, 4.0, 9.0], direction) == pytest.approx(5.0)
    batch = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0], [3.0, 4.0, 0.0]]])
    np.testing.assert_allclose(project(batch, direction), [[0.6, 0.8], [0.0, 5.0]])
    with pytest.raises(ValueError, match="length 3"):
        project(np.ones(4), direction)
    with pytest.raises(ValueError, match="zero"):
        project(np.ones(3), np.zeros(3))


def test_floor_matches_lu_et_al():
    rng = np.random.default_rng(0)
    axis = rng.normal(size=16)
    unit = unit_vector(axis)
    h = rng.normal(size=(50, 16)) * 3
    tau = 0.5
    expected = h - unit * np.minimum(h @ unit - tau, 0)[:, None]  # the paper's formula
    capped = cap_projection(h, axis, low=tau)
    np.testing.assert_allclose(capped, expected, atol=1e-12)
    assert (capped @ unit >= tau - 1e-12).all()


def test_capping_moves_only_along_the_axis_and_only_when_outside():
    rng = np.random.default_rng(1)
    axis = rng.normal(size=8)
    unit = unit_vector(axis)
    h = rng.normal(size=(200, 8)) * 4
    capped = cap_projection(h, axis, low=-1.0, high=2.0)
    p = h @ unit
    q = capped @ unit
    np.testing.assert_allclose(q, np.clip(p, -1.0, 2.0), atol=1e-12)
    inside = (p >= -1.0) & (p <= 2.0)
    np.testing.assert_array_equal(capped[inside], h[inside])
    orthogonal = lambda x: x - np.outer(x @ unit, unit)  # noqa: E731
    np.testing.assert_allclose(orthogonal(capped), orthogonal(h), atol=1e-12)
    ceiling_only = cap_projection(h, axis, high=0.0)
    assert (ceiling_only @ unit <= 1e-12).all()


def test_capping_correction_is_what_an_add_only_backend_adds():
    rng = np.random.default_rng(2)
    axis = rng.normal(size=8)
    h = rng.normal(size=(10, 8)) * 4
    measured = project(h, axis)
    correction = capping_correction(measured, axis, low=0.0)
    assert correction.shape == (10, 8)
    np.testing.assert_allclose(h + correction, cap_projection(h, axis, low=0.0), atol=1e-12)
    one = capping_correction(-3.0, [0.0, 2.0], low=1.0)
    np.testing.assert_allclose(one, [0.0, 4.0])
    np.testing.assert_array_equal(capping_correction(5.0, [0.0, 2.0], low=1.0), [0.0, 0.0])


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [(None, None, "bound"), (2.0, 1.0, "empty"), (float("nan"), None, "NaN")],
)
def test_capping_bounds_are_validated(low, high, message):
    with pytest.raises(ValueError, match=message):
        cap_projection(np.ones(3), np.ones(3), low=low, high=high)
