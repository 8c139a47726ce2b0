"""The stability battery's per-model directions: capped blocks, measure block, capping floor."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.batteries.stability.vectors import capped_blocks, floor_of, measure_block


def test_capped_blocks_follow_the_depth_on_both_embedded_models():
    assert capped_blocks((0.5, 0.625), 30) == (15, 16, 17, 18)  # SmolLM2-135M
    assert capped_blocks((0.5, 0.625), 18) == (9, 10, 11)  # Gemma 3 270M
    assert capped_blocks((0.9, 1.0), 10) == (9,)  # never past the last block
    assert capped_blocks((0.5, 0.5), 30) == (15,)


def test_the_measure_block_is_the_nearest_to_the_middle_lower_on_a_tie():
    layers = (4, 6, 8, 10, 12, 14)
    assert measure_block(layers, 30) == 14
    assert measure_block(layers, 18) == 8  # 8 and 10 are both 1 from 9
    assert measure_block([15, 16], 30) == 15


def test_the_floor_is_the_mean_of_the_per_block_percentiles():
    rng = np.random.default_rng(0)
    low = rng.permutation(np.arange(1.0, 101.0))  # block 0: 1..100
    projections = np.stack([low, low + 10.0], axis=1)  # block 1: shifted by 10
    tau, by_block = floor_of(projections, 25.0)
    q0 = float(np.percentile(np.arange(1.0, 101.0), 25))
    assert by_block == {0: pytest.approx(q0), 1: pytest.approx(q0 + 10)}
    assert tau == pytest.approx(q0 + 5)
