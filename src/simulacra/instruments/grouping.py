"""Grouping: many respondents' prompts cut into groups that keep the KV cache small.

llama.cpp's CPU attention visits every cell of the KV cache up to the highest one in
use, for every token, whichever sequence the cell belongs to. A call of
:func:`~simulacra.instruments.ask` over hundreds of respondents that decodes all of
them into one cache therefore slows down as the cache fills: each token attends,
masked or not, over thousands of cells. :func:`plan_groups` orders the respondents'
*contexts* (the prompts sharing one persona and history) by their tokens, so that
contexts with a common beginning sit side by side, and cuts that order into
consecutive groups of at most ``max_cells`` cells and ``max_sequences`` sequences,
cutting where neighbours share the fewest tokens. Asked group after group, with the
cache cleared in between but for the prefix the group shares, a token never attends
over more than about one group, and a shared prefix is decoded about once.

Everything here is pure: token arrays in, index lists out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ContextSize", "common_length", "plan_groups", "trie_cells"]


def common_length(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differs = np.asarray(a[:n]) != np.asarray(b[:n])
    return int(differs.argmax()) if differs.any() else n


def trie_cells(sequences: Sequence[np.ndarray]) -> int:
    """The KV cells the sequences need together: the nodes of their prefix trie.

    Args:
        sequences: token arrays.

    Returns:
        The number of distinct non-empty prefixes; a sequence that shares its first
        tokens with another only adds the tokens past the shared part.
    """
    # Any lexicographic order puts sequences that share a prefix side by side; the
    # bytes of equal-width integers give one without building a tuple per token.
    arrays = [np.asarray(s, dtype=np.int64) for s in sequences]
    ordered = sorted(arrays, key=lambda a: a.tobytes())
    total, previous = 0, np.zeros(0, dtype=np.int64)
    for current in ordered:
        total += len(current) - common_length(current, previous)
        previous = current
    return total


@dataclass(frozen=True)
class ContextSize:
    """What one context (the prompts of one persona and history) needs in the cache.

    Attributes:
        tokens: a prompt of the context, the key it is ordered by.
        cells: KV cells its prompts, continuations and generations need together.
        sequences: the sequences it holds at once (one per scoring request).
    """

    tokens: np.ndarray
    cells: int
    sequences: int


def plan_groups(
    contexts: Sequence[ContextSize], *, max_cells: int, max_sequences: int
) -> list[list[int]]:
    """Order contexts by their tokens and cut the order into groups that fit the budget.

    Contexts are sorted by their token key (ties by position), so contexts with a
    common beginning (one persona in several studies; the chat header; one
    question's stem) are neighbours. A group takes contexts in that order while its
    cells, counting the prefix a context shares with the one before it once, stay
    within ``max_cells`` and its sequences within ``max_sequences``. Where the next
    context does not fit, the group is cut at its weakest link instead: among the
    places past half its cell budget, the one whose two sides share the fewest
    leading tokens (the latest of equals), so that a prefix many contexts share
    stays within one group rather than being decoded again by the next. A context
    larger than the budget forms a group of its own.

    Args:
        contexts: the contexts, in the caller's order.
        max_cells: the most KV cells a group may need (at least 1).
        max_sequences: the most sequences a group may hold at once (at least 1).

    Returns:
        Groups of indices into ``contexts``, every index exactly once, in decoding
        order.
    """
    if max_cells < 1 or max_sequences < 1:
        raise ValueError(
            f"a group needs room for at least one cell and one sequence, got "
            f"max_cells={max_cells}, max_sequences={max_sequences}"
        )
    order = sorted(range(len(contexts)), key=lambda i: (tuple(contexts[i].tokens.tolist()), i))
    ordered = [contexts[i] for i in order]
    # shared[k]: leading tokens context k shares with context k - 1 (sorted order).
    shared = [0] + [
        common_length(ordered[k - 1].tokens, ordered[k].tokens) for k in range(1, len(ordered))
    ]
    groups: list[list[int]] = []
    start = 0
    while start < len(ordered):
        cells, sequences = ordered[start].cells, ordered[start].sequences
        filled = [cells]  # filled[j]: the cells of the group's first j + 1 contexts
        end = start + 1
        while end < len(ordered):
            extra = max(0, ordered[end].cells - shared[end])
            if cells + extra > max_cells or sequences + ordered[end].sequences > max_sequences:
                break
            cells += extra
            sequences += ordered[end].sequences
            filled.append(cells)
            end += 1
        if end < len(ordered):  # cut at the weakest link past half the budget
            cuts = [k for k in range(start + 1, end + 1) if filled[k - start - 1] * 2 >= max_cells]
            if cuts:
                end = min(cuts, key=lambda k: (shared[k], -k))
        groups.append(order[start:end])
        start = end
    return groups
