"""Steering on the engine: every decode steered inside the block, caches kept apart."""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import pytest

from simulacra.llm.steering import SteeringSetting
from simulacra.vectors import PersonaVector

LAYER = 12
USER = "<|im_start|>user\n"
PROMPTS = [
    [USER, "Your weekend?<|im_end|>\n<|im_start|>assistant\n"],
    [USER, "Your job?<|im_end|>\n<|im_start|>assistant\n"],
]
CONTINUATION = " Sailing the sea."


def enter(manager: AbstractContextManager[object]) -> None:
    """Enter ``manager``; reaching its block is a failure (the setting should be refused)."""
    with manager:
        pytest.fail("the setting was accepted")


def direction(seed: int, norm: float = 60.0, n_embd: int = 576) -> PersonaVector:
    """A fixed random direction at block 12 with about a residual-sized norm."""
    row = np.random.default_rng(seed).standard_normal(n_embd)
    row *= norm / np.linalg.norm(row)
    return PersonaVector(row[None, :], (LAYER,), name=f"d{seed}", method="mean_diff")


A, B = direction(1), direction(2)


def answers(engine):
    """Each way of decoding once: teacher forcing, a next-token read, greedy text."""
    return {
        "loglik": engine.loglik(PROMPTS, CONTINUATION, per_token=True),
        "options": np.concatenate(engine.option_logprobs([(PROMPTS[1], ["1", "2", " no"])])),
        "text": engine.generate(PROMPTS[:1], max_tokens=4, temperature=0)[0],
    }


def run(engine, vector):
    """The answers under a steering setting (None: unsteered) and the tokens reused."""
    before = engine.stats.tokens_reused
    if vector is None:
        with engine.steering(None):
            result = answers(engine)
    else:
        with engine.steering(vector, 1.0, layers=(LAYER, LAYER)):
            result = answers(engine)
    return result, engine.stats.tokens_reused - before


def assert_same(a, b):
    for name in ("loglik", "options"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert a["text"] == b["text"]


def test_no_prefix_is_reused_across_steering_settings(engine):
    fresh = {}
    for name, vector in (("A", A), ("B", B), ("none", None)):
        engine.reset()
        fresh[name] = run(engine, vector)
    engine.reset()
    order = [("A", A), ("B", B), ("A", A), ("none", None)]
    mixed = [(name, *run(engine, vector)) for name, vector in order]
    for name, result, _ in mixed:
        assert_same(result, fresh[name][0])
    # B and the unsteered pass reuse only what they share among themselves, as when fresh,
    # never A's cells; A's second pass reuses its own first pass.
    (_, _, a1), (_, _, b), (_, _, a2), (_, _, none) = mixed
    assert a1 == fresh["A"][1] and b == fresh["B"][1] and none == fresh["none"][1]
    assert a2 >= a1 + len(engine.prompt_tokens(PROMPTS[0]))
    # steering does change the numbers, and the two directions differently
    assert np.abs(fresh["A"][0]["loglik"] - fresh["none"][0]["loglik"]).max() > 0.1
    assert np.abs(fresh["A"][0]["loglik"] - fresh["B"][0]["loglik"]).max() > 0.1
    engine.reset()


def test_steering_nests_restores_and_keys_the_pool(engine):
    engine.reset()
    plain = engine.loglik(PROMPTS[:1], CONTINUATION)
    assert engine.steering_setting is None and engine.pool.key == ""
    with engine.steering(A, 2.0, layers=(LAYER, LAYER)) as outer:
        assert outer == SteeringSetting.of(A, 2.0, n_layer=engine.n_layer, layers=(12, 12))
        assert engine.pool.key == outer.key
        steered = engine.loglik(PROMPTS[:1], CONTINUATION)
        with engine.steering(None) as inner:
            assert inner is None and engine.pool.key == ""
            np.testing.assert_array_equal(engine.loglik(PROMPTS[:1], CONTINUATION), plain)
        assert engine.steering_setting == outer
        np.testing.assert_array_equal(engine.loglik(PROMPTS[:1], CONTINUATION), steered)
    assert engine.steering_setting is None and engine.pool.key == ""
    np.testing.assert_array_equal(engine.loglik(PROMPTS[:1], CONTINUATION), plain)
    assert not np.array_equal(steered, plain)
    engine.reset()


def test_an_exception_inside_the_block_still_restores_the_setting(engine):
    with pytest.raises(RuntimeError), engine.steering(A, layers=(LAYER, LAYER)):
        raise RuntimeError
    assert engine.steering_setting is None and engine.pool.key == ""


def test_bad_steering_is_refused_before_anything_changes(engine):
    narrow = PersonaVector(np.ones((1, 8)), (LAYER,), name="narrow", method="mean_diff")
    with pytest.raises(ValueError, match="576"):
        enter(engine.steering(narrow))
    with pytest.raises(ValueError, match="block 0 cannot be steered"):
        enter(engine.steering(A, layers=(0, LAYER)))
    assert engine.steering_setting is None and engine.pool.key == ""
