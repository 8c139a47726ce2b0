"""Hidden states read in the engine's batched decode, on the embedded model."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_model import TinyModel

from simulacra.errors import EngineError
from simulacra.llm.activations import ActivationRecorder
from simulacra.llm.engine import Engine
from simulacra.vectors import PersonaVector

LAYERS = [3, 12, 29]  # 29: the last block, whose rows llama.cpp prunes to the outputs
USER = "<|im_start|>user\n"
PROMPTS = [
    [USER, "Your weekend?<|im_end|>\n<|im_start|>assistant\n"],
    [USER, "Your job?<|im_end|>\n<|im_start|>assistant\n"],
    [USER, "Your home?<|im_end|>\n<|im_start|>assistant\n"],
]
REPLY = " I sail the sea."


def reference(tiny: TinyModel, tokens: list[int], rows: slice) -> np.ndarray:
    """The mean of ``l_out-b`` over ``rows`` on a bare context, every row an output."""
    recorder = ActivationRecorder(LAYERS)
    tiny.logits(tiny.context(recorder, n_ubatch=63), tokens)
    taken = recorder.take()
    return np.stack([taken[b][rows].mean(axis=0) for b in LAYERS])


def test_states_match_a_bare_context_and_do_not_depend_on_the_batch(engine):
    engine.reset()
    together = engine.hidden_states(PROMPTS, LAYERS)
    assert together.shape == (3, 3, 576) and together.dtype == np.float32
    engine.loglik(PROMPTS, REPLY)  # now every prompt is cached but its last token is read again
    alone = np.concatenate([engine.hidden_states([p], LAYERS) for p in PROMPTS])
    np.testing.assert_array_equal(together, alone)
    pairs = [(p, REPLY) for p in PROMPTS]
    means = engine.continuation_states(pairs, LAYERS)
    assert means.shape == (3, 3, 576)
    np.testing.assert_array_equal(engine.continuation_states(pairs[1:2], LAYERS)[0], means[1])

    tiny = TinyModel()
    try:
        for k, prompt in enumerate(PROMPTS):
            tokens = [int(t) for t in engine.prompt_tokens(prompt)]
            full = tokens + [int(t) for t in engine.tokenize(REPLY)]
            np.testing.assert_allclose(
                together[k], reference(tiny, tokens, slice(-1, None)), rtol=1e-3, atol=2e-2
            )
            np.testing.assert_allclose(
                means[k], reference(tiny, full, slice(len(tokens), None)), rtol=1e-3, atol=2e-2
            )
    finally:
        tiny.close()
    engine.reset()


def test_states_show_the_steering_added_at_its_block(engine):
    row = np.random.default_rng(3).standard_normal(576).astype(np.float32)
    vector = PersonaVector(row[None, :], (12,), name="r", method="mean_diff")
    plain = engine.hidden_states(PROMPTS[:1], [11, 12])
    with engine.steering(vector, 2.0):
        steered = engine.hidden_states(PROMPTS[:1], [11, 12])
    np.testing.assert_array_equal(steered[0, 0], plain[0, 0])
    np.testing.assert_allclose(steered[0, 1] - plain[0, 1], 2 * row, atol=1e-3)


def test_beliefs_are_bit_identical_with_capture_off(engine):
    """An engine without the eval callback, and one that reads states in between, agree."""
    bare = Engine.load(n_ctx=4096, hooks=False)
    try:
        expected = bare.loglik(PROMPTS, REPLY, per_token=True)
        with pytest.raises(EngineError, match="hooks=False"):
            bare.hidden_states(PROMPTS, [3])
    finally:
        bare.close()
    engine.reset()
    np.testing.assert_array_equal(engine.loglik(PROMPTS, REPLY, per_token=True), expected)
    engine.reset()
    engine.hidden_states(PROMPTS[:2], range(engine.n_layer))  # capture every block
    engine.continuation_states([(PROMPTS[2], REPLY)], [5])
    np.testing.assert_array_equal(engine.loglik(PROMPTS, REPLY, per_token=True), expected)
    engine.reset()


def test_bad_reads_are_refused(engine):
    with pytest.raises(ValueError, match="do not exist"):
        engine.hidden_states(PROMPTS, [30])
    with pytest.raises(ValueError, match="at least one block"):
        engine.hidden_states(PROMPTS, [])
    with pytest.raises(ValueError, match="twice"):
        engine.hidden_states(PROMPTS, [3, 3])
    with pytest.raises(ValueError, match="empty"):
        engine.continuation_states([(PROMPTS[0], "")], [3])
    with pytest.raises(ValueError, match="non-empty"):
        engine.hidden_states("a prompt", [3])
