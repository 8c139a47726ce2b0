"""The choice instrument: a forced choice between option texts, counterbalanced for order.

Small models favour whichever option is listed first (or last). A :class:`Choice`
is therefore asked in several orders: both orders for two options, every cyclic
rotation of the given list for more. Each order's question lists the options in
that order; in each, P(option) is the softmax of the summed log-probability of the
option's text as the reply, and the answer averages these over the orders. The
per-order probabilities are kept so that position bias can be reported.

Because the orders are the rotations of the given list, giving the options in any
rotated order (for two options: in either order) asks exactly the same questions
and yields the same probabilities per option. A permutation that is not a rotation
(the reverse of three options) asks a different set of orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = ["Choice", "choice_text", "option_orders", "order_probabilities", "softmax"]


@dataclass(frozen=True)
class Choice:
    """A question answered by picking one of several option texts.

    Attributes:
        name: the instrument's name, carried into its answers.
        question: the question, without its options.
        options: two or more distinct, non-empty option texts.

    """

    name: str
    question: str
    options: tuple[str, ...]

    kind: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        if not isinstance(self.options, tuple):
            object.__setattr__(self, "options", tuple(self.options))
        if len(self.options) < 2:
            raise ValueError(f"choice {self.name!r} needs at least two options")
        if any(not isinstance(o, str) or not o.strip() for o in self.options):
            raise ValueError(f"choice {self.name!r} has an empty option: {self.options!r}")
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"choice {self.name!r} repeats an option: {self.options!r}")


def option_orders(k: int) -> list[tuple[int, ...]]:
    """The orders ``k`` options are asked in: the cyclic rotations of ``0..k-1``.

    Args:
        k: the number of options (two gives both orders).

    Returns:
        ``k`` orders; order ``r`` lists option ``r`` first.
    """
    return [tuple((r + j) % k for j in range(k)) for r in range(k)]


def choice_text(question: str, options: Sequence[str]) -> str:
    """The question with its options listed in the given order.

    Args:
        question: the question.
        options: the options, in the order this asking lists them.

    Returns:
        E.g. ``'Tea or coffee? Answer with "tea", "coffee" or "water".'``.
    """
    quoted = [f'"{option}"' for option in options]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"{question} Answer with {listed}."


def softmax(logprobs: np.ndarray) -> np.ndarray:
    """Normalised probabilities from log-probabilities (a stable softmax)."""
    values = np.asarray(logprobs, dtype=np.float64)
    weights = np.exp(values - values.max())
    return weights / weights.sum()


def order_probabilities(
    orders: Sequence[Sequence[int]], logprobs: Sequence[np.ndarray]
) -> np.ndarray:
    """Per-order option probabilities, columns in the original option order.

    Args:
        orders: the orders asked; ``orders[r][j]`` is the option listed j-th.
        logprobs: per order, the options' summed log-probabilities in listed order.

    Returns:
        A (len(orders), k) array whose rows sum to 1.
    """
    k = len(orders[0])
    out = np.zeros((len(orders), k))
    for r, (order, values) in enumerate(zip(orders, logprobs, strict=True)):
        out[r, list(order)] = softmax(values)
    return out
