"""Capping on the engine: the clamp reaches later blocks, cached apart, CPU only."""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import pytest

from simulacra.errors import EngineError
from simulacra.llm.capping import CappingSetting, clamp_rows
from simulacra.vectors import PersonaVector, cap_projection

LAYER = 12
ONE_TOKEN = "Hello"
OPTIONS = [" world", " there", ",", "!", " my", " and", " I", " everyone"]
USER = "<|im_start|>user\n"
PROMPTS = [
    [USER, "Your weekend?<|im_end|>\n<|im_start|>assistant\n"],
    [USER, "Your job?<|im_end|>\n<|im_start|>assistant\n"],
]
REPLY = " I sail the sea."


def enter(manager: AbstractContextManager[object]) -> None:
    """Enter ``manager``; reaching its block is a failure (the setting should be refused)."""
    with manager:
        pytest.fail("the setting was accepted")


def axis(layers=(LAYER,), seed: int = 5) -> PersonaVector:
    rows = np.random.default_rng(seed).standard_normal((len(layers), 576))
    return PersonaVector(rows, tuple(layers), name="axis", method="assistant_axis")


def unit(vector: PersonaVector, layer: int) -> np.ndarray:
    row = vector.direction(layer).astype(np.float64)
    return row / np.linalg.norm(row)


# --------------------------------------------------------------------------- pure


def test_clamp_rows_moves_only_rows_outside_the_band_along_the_axis():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((6, 8)).astype(np.float32) * 3
    direction = rng.standard_normal(8)
    u = direction / np.linalg.norm(direction)
    before = rows.copy()
    clamp_rows(rows, u, -1.0, 1.0)
    projection = before.astype(np.float64) @ u
    inside = (projection >= -1) & (projection <= 1)
    np.testing.assert_array_equal(rows[inside], before[inside])
    np.testing.assert_allclose(rows.astype(np.float64) @ u, np.clip(projection, -1, 1), atol=1e-5)
    np.testing.assert_allclose(rows, cap_projection(before, direction, -1, 1), atol=1e-5)


def test_capping_settings_have_stable_distinct_keys():
    sha = "a" * 64
    setting = CappingSetting(sha, (13, 12, 12), None, 2)
    assert setting.layers == (12, 13) and setting.bounds == (-np.inf, 2.0)
    assert setting.key == f"cap[{sha}]@12,13::2.0"
    assert CappingSetting(sha, (12,), -0.0, None).key == CappingSetting(sha, (12,), 0.0).key
    keys = {
        CappingSetting(sha, (12,), 1.0).key,
        CappingSetting(sha, (12,), None, 1.0).key,
        CappingSetting(sha, (12, 13), 1.0).key,
        CappingSetting("b" * 64, (12,), 1.0).key,
    }
    assert len(keys) == 4
    for bad, message in (
        (dict(low=None, high=None), "bound"),
        (dict(low=2.0, high=1.0), "empty"),
        (dict(low=float("nan")), "NaN"),
    ):
        with pytest.raises(ValueError, match=message):
            CappingSetting(sha, (12,), **bad)


def test_a_capping_band_per_block_keys_and_bounds_each_block():
    sha = "a" * 64
    setting = CappingSetting(sha, (13, 12), (-1.0, -2.0), (1.0, 2.0))
    assert setting.bounds_at(12) == (-1.0, 1.0) and setting.bounds_at(13) == (-2.0, 2.0)
    assert setting.key == f"cap[{sha}]@12,13:(-1.0, -2.0):(1.0, 2.0)"
    assert setting.key != CappingSetting(sha, (12, 13), -1.0, 1.0).key
    with pytest.raises(ValueError, match="bounds_at"):
        _ = setting.bounds
    with pytest.raises(ValueError, match="one capping bound per block"):
        CappingSetting(sha, (12, 13), (1.0,))
    with pytest.raises(ValueError, match="empty"):
        CappingSetting(sha, (12, 13), (0.0, 3.0), (1.0, 2.0))


# --------------------------------------------------------------------------- real model


def test_a_cap_on_one_token_equals_steering_by_the_same_shift(engine):
    """The edited tensor is what later blocks read: capping == the equivalent control vector."""
    assert len(engine.prompt_tokens(ONE_TOKEN)) == 1
    vector = axis()
    u = unit(vector, LAYER)
    measured = float(engine.hidden_states([ONE_TOKEN], [LAYER])[0, 0] @ u)
    plain = engine.option_logprobs([(ONE_TOKEN, OPTIONS)])[0]
    for shift in (-20.0, 20.0):
        band = (None, measured + shift) if shift < 0 else (measured + shift, None)
        with engine.capping(vector, *band):
            capped = engine.option_logprobs([(ONE_TOKEN, OPTIONS)])[0]
            after = float(engine.hidden_states([ONE_TOKEN], [LAYER])[0, 0] @ u)
        shifted = PersonaVector((shift * u)[None, :], (LAYER,), name="s", method="contrast")
        with engine.steering(shifted):
            steered = engine.option_logprobs([(ONE_TOKEN, OPTIONS)])[0]
        assert after == pytest.approx(measured + shift, abs=1e-3)
        np.testing.assert_allclose(capped, steered, atol=2e-3)
        assert np.abs(capped - plain).max() > 0.01
    # a band the token is already inside changes nothing at all
    with engine.capping(vector, measured - 1, measured + 1):
        np.testing.assert_array_equal(engine.option_logprobs([(ONE_TOKEN, OPTIONS)])[0], plain)


def test_capping_is_cached_apart_composes_with_steering_and_restores(engine):
    vector = axis((LAYER, LAYER + 1))
    engine.reset()
    before = engine.stats.tokens_reused
    plain = engine.loglik(PROMPTS, REPLY, per_token=True)
    reused_fresh = engine.stats.tokens_reused - before
    measured = engine.hidden_states(PROMPTS, [LAYER])[:, 0] @ unit(vector, LAYER)
    ceiling = float(measured.min()) - 5
    with engine.capping(vector, None, ceiling) as setting:
        assert engine.pool.key == setting.key and engine.capping_setting == setting
        before = engine.stats.tokens_reused
        capped = engine.loglik(PROMPTS, REPLY, per_token=True)
        assert engine.stats.tokens_reused - before == reused_fresh  # none of the plain cells
        states = engine.hidden_states(PROMPTS, [LAYER])[:, 0] @ unit(vector, LAYER)
        np.testing.assert_allclose(states, ceiling, atol=1e-3)
        with engine.steering(vector, 1.0, layers=(LAYER, LAYER)) as steering:
            assert engine.pool.key == f"{steering.key};{setting.key}"
            both = engine.loglik(PROMPTS, REPLY, per_token=True)
            states = engine.hidden_states(PROMPTS, [LAYER])[:, 0] @ unit(vector, LAYER)
            np.testing.assert_allclose(states, ceiling, atol=1e-3)  # steered, then capped
        assert not np.array_equal(both, capped)
    assert engine.capping_setting is None and engine.pool.key == ""
    assert np.abs(capped - plain).max() > 0.01
    np.testing.assert_array_equal(engine.loglik(PROMPTS, REPLY, per_token=True), plain)
    engine.reset()
    with engine.capping(vector, None, ceiling):
        np.testing.assert_array_equal(engine.loglik(PROMPTS, REPLY, per_token=True), capped)
    engine.reset()


def test_a_band_per_block_caps_each_block_to_its_own_ceiling(engine):
    blocks = (LAYER, LAYER + 1)
    vector = axis(blocks)
    units = [unit(vector, b) for b in blocks]
    measured = engine.hidden_states(PROMPTS, list(blocks))
    ceilings = {
        b: float((measured[:, i] @ units[i]).min()) - 3 * (i + 1) for i, b in enumerate(blocks)
    }
    with engine.capping(vector, None, ceilings) as setting:
        assert setting.bounds_at(LAYER + 1)[1] == ceilings[LAYER + 1]
        states = engine.hidden_states(PROMPTS, list(blocks))
    for i, b in enumerate(blocks):
        np.testing.assert_allclose(states[:, i] @ units[i], ceilings[b], atol=1e-3)
    with pytest.raises(ValueError, match="exactly the capped blocks"):
        enter(engine.capping(vector, None, {LAYER: 0.0}))
    engine.reset()


def test_capping_refuses_what_it_cannot_do(engine, monkeypatch):
    vector = axis()
    with pytest.raises(ValueError, match="no direction at blocks"):
        enter(engine.capping(vector, 0.0, layers=[LAYER, LAYER + 1]))
    with pytest.raises(ValueError, match="bound"):
        enter(engine.capping(vector))
    narrow = PersonaVector(np.ones((1, 8)), (LAYER,), name="narrow", method="contrast")
    with pytest.raises(ValueError, match="576"):
        enter(engine.capping(narrow, 0.0))
    monkeypatch.setattr(engine, "n_gpu_layers", -1)
    with pytest.raises(EngineError, match="CPU backend only"):
        enter(engine.capping(vector, 0.0))
    assert engine.capping_setting is None and engine.pool.key == ""
