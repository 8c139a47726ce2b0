"""Hidden-state capture through llama.cpp's eval callback, on the embedded model."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_model import PROMPT, TinyModel

from simulacra.llm.activations import (
    ActivationRecorder,
    ggml_base,
    ggml_base_path,
    layer_tensor_name,
)


@pytest.fixture(scope="module")
def tiny() -> TinyModel:
    model = TinyModel()
    yield model
    model.close()


@pytest.fixture(scope="module")
def tokens(tiny) -> list[int]:
    return tiny.tokens(PROMPT)


def test_the_ggml_library_is_found_inside_llama_cpp():
    path = ggml_base_path()
    assert "llama_cpp" in str(path) and "ggml-base" in path.name
    assert ggml_base().ggml_get_name is not None
    assert layer_tensor_name(12) == "l_out-12"


def test_recorder_captures_only_the_requested_layers(tiny, tokens):
    assert (tiny.n_layer, tiny.n_embd) == (30, 576)
    recorder = ActivationRecorder([3, 10, 20])
    ctx = tiny.context(recorder)
    tiny.logits(ctx, tokens)
    (micro_batch,) = recorder.captures
    assert sorted(micro_batch.activations) == [3, 10, 20]
    for rows in micro_batch.activations.values():
        assert rows.shape == (len(tokens), 576) and rows.dtype == np.float32
        assert np.isfinite(rows).all()
    norms = {b: float(np.linalg.norm(recorder.stacked(b), axis=1).mean()) for b in (3, 10, 20)}
    assert all(10 < n < 10_000 for n in norms.values()), norms
    with pytest.raises(KeyError, match="not being captured"):
        recorder.stacked(4)
    taken = recorder.take()
    assert sorted(taken) == [3, 10, 20] and not recorder.captures


def test_logits_are_bit_identical_with_and_without_the_recorder(tiny, tokens):
    plain = tiny.context()
    recorder = ActivationRecorder(range(tiny.n_layer))
    recording = tiny.context(recorder)
    np.testing.assert_array_equal(tiny.logits(plain, tokens), tiny.logits(recording, tokens))
    assert len(recorder.take()) == tiny.n_layer
    recorder.set_layers([])  # idle: nothing asked, nothing copied
    np.testing.assert_array_equal(tiny.logits(plain, tokens), tiny.logits(recording, tokens))
    assert recorder.captures == ()


def test_the_last_block_holds_only_output_rows(tiny, tokens):
    last = tiny.n_layer - 1
    recorder = ActivationRecorder([last - 1, last])
    ctx = tiny.context(recorder)
    tiny.logits(ctx, tokens, all_rows=False)
    assert recorder.stacked(last).shape == (1, 576)
    assert recorder.stacked(last - 1).shape == (len(tokens), 576)


def test_rows_follow_the_batch_order_across_micro_batches(tiny, tokens):
    whole = ActivationRecorder([5, 9])
    tiny.logits(tiny.context(whole), tokens)
    split = ActivationRecorder([5, 9])
    tiny.logits(tiny.context(split, n_ubatch=4), tokens)
    captures = split.captures
    assert len(captures) == -(-len(tokens) // 4)
    assert [c.index for c in captures] == list(range(len(captures)))
    assert [c.activations[5].shape[0] for c in captures] == [
        min(4, len(tokens) - 4 * i) for i in range(len(captures))
    ]
    for layer in (5, 9):
        np.testing.assert_array_equal(split.stacked(layer), whole.stacked(layer))


def test_successive_decodes_append_until_cleared(tiny, tokens):
    recorder = ActivationRecorder([7])
    ctx = tiny.context(recorder)
    tiny.logits(ctx, tokens)
    tiny.logits(ctx, tokens[:3])
    assert [c.activations[7].shape[0] for c in recorder.captures] == [len(tokens), 3]
    np.testing.assert_array_equal(recorder.stacked(7)[len(tokens) :], recorder.stacked(7)[:3])
    recorder.clear()
    assert recorder.captures == ()


def test_bad_layers_are_refused():
    with pytest.raises(ValueError, match="block indices"):
        ActivationRecorder([-1])
    with pytest.raises(ValueError, match="block indices"):
        ActivationRecorder(["3"])
