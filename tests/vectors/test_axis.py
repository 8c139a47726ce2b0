"""Persona space and the Assistant axis on planted role geometry."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.vectors import (
    assistant_axis,
    assistant_axis_by_layer,
    contrast_axis,
    persona_space,
)


def planted_roles(rng, n_roles=40, n_embd=24, spread=(6.0, 3.0, 1.5), noise=0.05):
    """Role vectors on three planted orthonormal axes with decreasing spread."""
    basis, _ = np.linalg.qr(rng.normal(size=(n_embd, 3)))
    axes = basis.T  # (3, n_embd)
    coords = rng.normal(size=(n_roles, 3)) * np.array(spread)
    offset = rng.normal(size=n_embd) * 10
    roles = offset + coords @ axes + rng.normal(scale=noise, size=(n_roles, n_embd))
    return roles, axes, coords, offset


def test_persona_space_recovers_planted_components_in_order():
    rng = np.random.default_rng(0)
    roles, axes, _, _ = planted_roles(rng)
    space = persona_space(roles, n_components=3)
    assert space.components.shape == (3, 24)
    np.testing.assert_allclose(space.components @ space.components.T, np.eye(3), atol=1e-10)
    for k in range(3):
        assert abs(space.components[k] @ axes[k]) > 0.99
    ratios = space.explained_variance_ratio
    assert ratios[0] > ratios[1] > ratios[2] > 0 and ratios.sum() > 0.99
    np.testing.assert_allclose(space.scores, space.project(roles), atol=1e-9)
    np.testing.assert_allclose(space.scores.mean(axis=0), 0.0, atol=1e-9)


def test_persona_space_validates():
    with pytest.raises(ValueError, match="at least 3"):
        persona_space(np.ones((2, 4)))
    with pytest.raises(ValueError, match="n_components"):
        persona_space(np.random.default_rng(0).normal(size=(4, 8)), n_components=4)
    with pytest.raises(ValueError, match="identical"):
        persona_space(np.ones((5, 4)))


def test_contrast_axis_per_layer_and_at_one_layer():
    rng = np.random.default_rng(1)
    default = rng.normal(size=(6, 3, 5))
    roles = rng.normal(size=(9, 3, 5))
    axis = contrast_axis(default, roles)
    np.testing.assert_allclose(axis, default.mean(0) - roles.mean(0))
    np.testing.assert_allclose(contrast_axis(default[:, 1], roles[:, 1]), axis[1])
    with pytest.raises(ValueError, match="trailing"):
        contrast_axis(default, roles[:, :2])


def test_default_beyond_the_roles_is_at_the_positive_end_of_pc1():
    rng = np.random.default_rng(2)
    roles, axes, coords, offset = planted_roles(rng)
    # the default assistant sits past the top of the roles' spread along planted axis 0,
    # opposite to whatever sign the SVD would give, so orientation must flip when needed
    top = coords[:, 0].max()
    for sign in (1.0, -1.0):
        default_point = offset + sign * (top + 4.0) * axes[0]
        default = default_point + rng.normal(scale=0.05, size=(5, 24))
        result = assistant_axis(roles, default)
        assert result.default_scores[0] > 0
        separation = result.separation
        assert separation.separates and separation.rank == 0
        assert separation.position > 1.0 and separation.distance_from_end < 0
        assert separation.cosine_with_contrast > 0.7
        assert abs(result.space.components[0] @ axes[0]) > 0.99
        np.testing.assert_allclose(result.contrast, default.mean(0) - roles.mean(0))


def test_a_default_inside_the_cloud_is_reported_as_not_separated():
    rng = np.random.default_rng(3)
    roles, _, _, _ = planted_roles(rng)
    default = roles[:5] + 0.0  # the mean of five roles: well inside the range
    separation = assistant_axis(roles, default).separation
    assert not separation.separates and separation.rank > 0
    assert 0.0 <= separation.position <= 1.0
    assert separation.distance_from_end == pytest.approx(1.0 - separation.position)


def test_assistant_axis_validates_widths():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="width"):
        assistant_axis(rng.normal(size=(5, 4)), rng.normal(size=(2, 3)))


def test_assistant_axis_by_layer_matches_one_layer_at_a_time():
    rng = np.random.default_rng(5)
    roles = rng.normal(size=(8, 2, 6))
    default = rng.normal(size=(3, 2, 6)) + 2.0
    by_layer = assistant_axis_by_layer(roles, default, layers=[10, 14])
    assert list(by_layer) == [10, 14]
    single = assistant_axis(roles[:, 1], default[:, 1])
    np.testing.assert_allclose(by_layer[14].contrast, single.contrast)
    assert by_layer[14].separation == single.separation
    with pytest.raises(ValueError, match="each of the 2"):
        assistant_axis_by_layer(roles, default, layers=[10])
    with pytest.raises(ValueError, match="alike"):
        assistant_axis_by_layer(roles, default[:, :1], layers=[10, 14])
