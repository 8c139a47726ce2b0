"""Grouping respondents' contexts under a cell and sequence budget (pure logic)."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.instruments.grouping import ContextSize, common_length, plan_groups, trie_cells


def size(tokens: list[int], cells: int, sequences: int = 1) -> ContextSize:
    return ContextSize(np.array(tokens, dtype=np.int32), cells, sequences)


def test_trie_cells_counts_shared_prefixes_once():
    a, b, c = np.array([1, 2, 3, 4]), np.array([1, 2, 5]), np.array([1, 2])
    assert trie_cells([a]) == 4
    assert trie_cells([a, b]) == 5  # 1 2 3 4 + 5
    assert trie_cells([a, b, c]) == 5  # a prefix of another adds nothing
    assert trie_cells([b, a, a]) == 5  # order and duplicates do not matter
    assert trie_cells([]) == 0
    assert common_length(a, b) == 2 and common_length(a, c) == 2 and common_length(a, a[:0]) == 0


def test_groups_are_sorted_by_tokens_and_cut_at_the_cell_budget():
    contexts = [size([9, 1], 40), size([1, 2, 3], 40), size([1, 2, 4], 40), size([5], 40)]
    # Sorted: [1,2,3], [1,2,4] (shares 2 tokens: 38 more cells), [5], [9,1].
    assert plan_groups(contexts, max_cells=100, max_sequences=10) == [[1, 2], [3, 0]]
    assert plan_groups(contexts, max_cells=1000, max_sequences=10) == [[1, 2, 3, 0]]
    assert plan_groups(contexts, max_cells=79, max_sequences=10) == [[1, 2], [3], [0]]


def test_groups_respect_the_sequence_budget_and_oversized_contexts_stand_alone():
    contexts = [size([1], 10, 3), size([2], 10, 3), size([3], 500, 1), size([4], 10, 2)]
    assert plan_groups(contexts, max_cells=100, max_sequences=6) == [[0, 1], [2], [3]]
    assert plan_groups(contexts, max_cells=1000, max_sequences=5) == [[0], [1, 2], [3]]
    assert plan_groups([], max_cells=10, max_sequences=1) == []
    with pytest.raises(ValueError, match="at least one cell"):
        plan_groups(contexts, max_cells=0, max_sequences=1)


def test_equal_keys_keep_the_callers_order():
    contexts = [size([7, 7], 5), size([7, 7], 5), size([7, 7], 5)]
    assert plan_groups(contexts, max_cells=100, max_sequences=10) == [[0, 1, 2]]
    # The key prefix a context shares with the one before it is counted once: 5 + 3 + 3.
    assert plan_groups(contexts, max_cells=11, max_sequences=10) == [[0, 1, 2]]
    assert plan_groups(contexts, max_cells=10, max_sequences=10) == [[0, 1], [2]]


def test_a_full_group_is_cut_where_its_neighbours_share_the_least():
    # Sorted: A1 [1,1,1,1], A2 [1,1,1,2], A3 [1,1,1,3], B1 [1,2,1,1], B2 [1,2,1,2]; the
    # A's share 3 tokens, B1 shares 1 with A3. B2 does not fit after B1 (40 > 35 cells):
    # the cut falls between A3 and B1, not after B1, so B1 and B2 keep their 3 shared
    # tokens in one group.
    contexts = [
        size([1, 2, 1, 2], 10),
        size([1, 1, 1, 1], 10),
        size([1, 2, 1, 1], 10),
        size([1, 1, 1, 3], 10),
        size([1, 1, 1, 2], 10),
    ]
    assert plan_groups(contexts, max_cells=35, max_sequences=10) == [[1, 4, 3], [2, 0]]
    # With room for all five (40 cells), nothing is cut.
    assert plan_groups(contexts, max_cells=60, max_sequences=10) == [[1, 4, 3, 2, 0]]
    # A cut never leaves a group under half its budget: at 70 cells a sixth context
    # of 40 does not fit, and the weakest link (before B1, 24 cells) is too early.
    sixth = [*contexts, size([2], 40)]
    assert plan_groups(sixth, max_cells=70, max_sequences=10) == [[1, 4, 3, 2, 0], [5]]
