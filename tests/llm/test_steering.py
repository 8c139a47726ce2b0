"""Steering buffers and settings (pure), and control vectors on the embedded model."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_model import PROMPT, TinyModel

from simulacra.errors import EngineError
from simulacra.llm.activations import ActivationRecorder
from simulacra.llm.steering import (
    SteeringSetting,
    apply_control_vector,
    clear_control_vector,
    control_vector_buffer,
    steered_layer_range,
)
from simulacra.vectors import (
    PersonaVector,
    mean_difference,
    read_control_vector,
    write_control_vector,
)


def vector(layers, n_embd=3, scale=1.0, name="v") -> PersonaVector:
    rows = np.array([[layer * 10 + j for j in range(n_embd)] for layer in layers], np.float32)
    return PersonaVector(rows * scale, tuple(layers), name=name, method="mean_diff")


# --------------------------------------------------------------------------- buffers


def test_buffer_row_i_is_block_i_plus_1():
    v = vector([2, 4])
    buffer = control_vector_buffer(v, 2.0, n_layer=6)
    assert buffer.shape == (5, 3) and buffer.dtype == np.float32
    assert buffer.flags.c_contiguous
    np.testing.assert_array_equal(buffer[1], 2 * v.direction(2))  # block 2
    np.testing.assert_array_equal(buffer[3], 2 * v.direction(4))  # block 4
    np.testing.assert_array_equal(buffer[[0, 2, 4]], 0)


def test_layer_ranges_select_blocks_and_block_zero_is_never_steered():
    v = vector([0, 1, 3, 5])
    assert steered_layer_range(v, n_layer=8) == (1, 5)
    buffer = control_vector_buffer(v, n_layer=8)  # default range skips block 0
    np.testing.assert_array_equal(buffer[0], v.direction(1))
    only = control_vector_buffer(v, n_layer=8, layers=(3, 4))
    np.testing.assert_array_equal(only[2], v.direction(3))
    assert np.count_nonzero(only.any(axis=1)) == 1
    with pytest.raises(ValueError, match="block 0 cannot be steered"):
        control_vector_buffer(v, n_layer=8, layers=(0, 3))
    with pytest.raises(ValueError, match="does not exist"):
        control_vector_buffer(v, n_layer=5, layers=(1, 5))
    with pytest.raises(ValueError, match="empty layer range"):
        control_vector_buffer(v, n_layer=8, layers=(4, 3))
    with pytest.raises(ValueError, match="no direction at a steerable block"):
        control_vector_buffer(vector([0]), n_layer=8)


def test_several_vectors_are_summed_with_their_coefficients():
    a, b = vector([1, 2]), vector([2, 3], scale=-1)
    buffer = control_vector_buffer([a, b], [1.0, 0.5], n_layer=4)
    np.testing.assert_allclose(buffer[0], a.direction(1))
    np.testing.assert_allclose(buffer[1], a.direction(2) + 0.5 * b.direction(2))
    np.testing.assert_allclose(buffer[2], 0.5 * b.direction(3))
    with pytest.raises(ValueError, match="coefficients"):
        control_vector_buffer([a, b], [1.0], n_layer=4)
    with pytest.raises(ValueError, match="widths"):
        control_vector_buffer([a, vector([1], n_embd=4)], n_layer=4)
    with pytest.raises(ValueError, match="finite"):
        control_vector_buffer(a, float("nan"), n_layer=4)


# --------------------------------------------------------------------------- settings


def test_steering_setting_key_is_stable_and_distinguishes_settings():
    v = vector([10, 12])
    setting = SteeringSetting.of(v, 1.5, n_layer=30)
    assert setting.layers == (10, 12)
    assert setting.key == f"cvec[{v.sha256}*1.5]@10-12"
    assert SteeringSetting.of(v, 1.5, n_layer=30) == setting
    assert hash(SteeringSetting.of(v, 1.5, n_layer=30)) == hash(setting)
    others = {
        SteeringSetting.of(v, 2.0, n_layer=30).key,
        SteeringSetting.of(v, 1.5, n_layer=30, layers=(11, 12)).key,
        SteeringSetting.of(v.scaled(2), 1.5, n_layer=30).key,
        SteeringSetting.of(v, 1.5, n_layer=30, cap=(0.5, None)).key,
        setting.key,
    }
    assert len(others) == 5
    capped = SteeringSetting.of(v, 1.5, n_layer=30, cap=(None, 2))
    assert capped.key.endswith(";cap=:2.0")
    assert (
        SteeringSetting(((v.sha256, -0.0),), (1, 2)).key
        == SteeringSetting(((v.sha256, 0.0),), (1, 2)).key
    )


@pytest.mark.parametrize(
    ("terms", "layers", "cap", "message"),
    [
        ((), (1, 2), None, "at least one"),
        ((("abc", 1.0),), (1, 2), None, "sha256"),
        ((("a" * 64, float("inf")),), (1, 2), None, "finite"),
        ((("a" * 64, 1.0),), (0, 2), None, "1 <= start"),
        ((("a" * 64, 1.0),), (1, 2), (None, None), "bound"),
        ((("a" * 64, 1.0),), (1, 2), (3.0, 1.0), "empty"),
    ],
)
def test_steering_setting_validates(terms, layers, cap, message):
    with pytest.raises(ValueError, match=message):
        SteeringSetting(terms, layers, cap)


# --------------------------------------------------------------------------- real model

LAYER = 12
QUESTIONS = ["What do you do on a rainy day?", "Describe your home.", "What is your job?"]
PIRATE = "You are a rough pirate captain who sails the seven seas hunting treasure."
PHYSICIST = "You are a careful physicist who measures everything in the laboratory."


def chat(system: str, question: str) -> str:
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


@pytest.fixture(scope="module")
def tiny() -> TinyModel:
    model = TinyModel()
    yield model
    model.close()


@pytest.fixture(scope="module")
def pirate(tiny) -> PersonaVector:
    """Pirate minus physicist at block 12: the mean over each prompt's tokens."""
    recorder = ActivationRecorder([LAYER])
    ctx = tiny.context(recorder)
    means = {}
    for persona, system in (("pirate", PIRATE), ("physicist", PHYSICIST)):
        rows = []
        for question in QUESTIONS:
            tiny.logits(ctx, tiny.tokens(chat(system, question)), all_rows=False)
            rows.append(recorder.take()[LAYER].mean(axis=0))
        means[persona] = np.stack(rows)[:, None, :]
    direction = mean_difference(means["pirate"], means["physicist"])
    return PersonaVector(
        direction,
        (LAYER,),
        name="pirate",
        method="mean_diff",
        model_name=tiny.resolved.name,
        model_sha256=tiny.resolved.sha256,
        architecture="llama",
    )


def test_a_control_vector_changes_the_logits_and_clearing_restores_them(tiny, pirate):
    tokens = tiny.tokens(PROMPT)
    ctx = tiny.context()
    baseline = tiny.logits(ctx, tokens)
    buffer = control_vector_buffer(pirate, 1.0, n_layer=tiny.n_layer)
    apply_control_vector(ctx, buffer, tiny.n_embd, LAYER, LAYER)
    steered = tiny.logits(ctx, tokens)
    assert np.abs(steered - baseline).max() > 0.5
    clear_control_vector(ctx, tiny.n_embd)
    np.testing.assert_array_equal(tiny.logits(ctx, tokens), baseline)
    # a range that misses the vector's block steers nothing
    apply_control_vector(ctx, buffer, tiny.n_embd, LAYER + 1, tiny.n_layer - 1)
    np.testing.assert_array_equal(tiny.logits(ctx, tokens), baseline)
    clear_control_vector(ctx, tiny.n_embd)


def test_direction_n_is_added_to_the_output_of_block_n(tiny, pirate):
    tokens = tiny.tokens(PROMPT)
    recorder = ActivationRecorder([LAYER - 1, LAYER])
    ctx = tiny.context(recorder)
    tiny.logits(ctx, tokens)
    plain = recorder.take()
    buffer = control_vector_buffer(pirate, 1.0, n_layer=tiny.n_layer)
    apply_control_vector(ctx, buffer, tiny.n_embd, 1, tiny.n_layer - 1)
    tiny.logits(ctx, tokens)
    steered = recorder.take()
    clear_control_vector(ctx, tiny.n_embd)
    np.testing.assert_array_equal(steered[LAYER - 1], plain[LAYER - 1])
    added = steered[LAYER] - plain[LAYER]
    np.testing.assert_allclose(
        added, np.broadcast_to(pirate.direction(LAYER), added.shape), atol=1e-3
    )


def test_a_vector_read_back_from_gguf_steers_identically(tiny, pirate, tmp_path):
    path = write_control_vector(pirate, tmp_path / "pirate.gguf")
    loaded = read_control_vector(path)
    assert loaded == pirate
    tokens = tiny.tokens(PROMPT)
    ctx = tiny.context()
    results = []
    for candidate in (pirate, loaded):
        buffer = control_vector_buffer(candidate, 1.5, n_layer=tiny.n_layer)
        apply_control_vector(ctx, buffer, tiny.n_embd, 1, tiny.n_layer - 1)
        results.append(tiny.logits(ctx, tokens))
        clear_control_vector(ctx, tiny.n_embd)
    np.testing.assert_array_equal(results[0], results[1])


def test_a_wrong_width_is_refused(tiny):
    ctx = tiny.context()
    with pytest.raises(ValueError, match="shaped"):
        apply_control_vector(ctx, np.zeros((29, 4), np.float32), tiny.n_embd, 1, 29)
    with pytest.raises(EngineError, match="refused"):
        apply_control_vector(ctx, np.zeros((29, 4), np.float32), 4, 1, 29)
