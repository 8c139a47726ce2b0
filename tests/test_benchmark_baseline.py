"""The pure token accounting of ``benchmarks/baseline.py`` (no model is loaded)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from baseline import TokenLog, dropped_tokens, trie_size


class Request:
    def __init__(self, *tokens: int) -> None:
        self.tokens = seq(*tokens)
        self.n_cached = len(self.tokens)


class Pool:
    """What TokenLog wraps: run, decode_step and the current setting."""

    key = ""

    def run(self, requests):
        return [None] * len(requests)

    def decode_step(self, items):
        return []


class FakeEngine:
    def __init__(self) -> None:
        self.pool = Pool()


def seq(*tokens: int) -> np.ndarray:
    return np.array(tokens, dtype=np.int32)


def test_an_extended_sequence_drops_nothing():
    assert dropped_tokens([[seq(1, 2), seq(1, 2, 3), seq(1, 2, 3, 4, 5)]]) == 0


def test_a_diverging_request_drops_the_previous_tail():
    # 1 2 | 7 8 9 scored, then 1 2 | 5 ...: the three cells after the shared 1 2 go.
    assert dropped_tokens([[seq(1, 2, 7, 8, 9), seq(1, 2, 5, 7, 8, 9, 4)]]) == 3


def test_drops_add_up_over_turns_and_sequences():
    first = [seq(1, 9), seq(1, 2, 3), seq(1, 2, 8)]  # drops 1, then 1
    second = [seq(4), seq(4, 5)]  # drops nothing
    assert dropped_tokens([first, second]) == 2


def test_a_shorter_prefix_request_drops_the_rest():
    assert dropped_tokens([[seq(1, 2, 3, 4), seq(1, 2)]]) == 2


def test_trie_counts_shared_prefixes_once():
    assert trie_size([seq(1, 2, 3), seq(1, 2, 4), seq(1, 2)]) == 4


def test_the_same_tokens_under_two_settings_are_needed_twice():
    engine = FakeEngine()
    with TokenLog(engine) as log:
        engine.pool.run([Request(1, 2, 3), Request(1, 2, 4)])
        engine.pool.key = "steer:+4"  # a steered context: other activations, other cells
        engine.pool.run([Request(1, 2, 3)])
        engine.pool.key = ""
        engine.pool.run([Request(1, 2, 3, 5)])
    assert log.unique() == 4 + 3 + 0 + 1
