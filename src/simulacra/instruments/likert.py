"""The Likert instrument: an N-point rating scale with labelled ends.

The question asks for a number from 1 (the ``low`` label) to N (the ``high`` label).
The answer is the probability of each point as the reply. When every point label
is one token of the model's vocabulary ("1".."7" are, for SmolLM2), the
distribution is read from the logits at a single position, the reply's first;
otherwise each label followed by the end of the message is scored by its summed
log-probability, so that "1" and "10" are told apart. From the distribution come
the expected value sum_k k * p_k, which lies within [1, N], and a seeded sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = ["MAX_POINTS", "Likert", "expected_point", "likert_text", "point_labels"]

MAX_POINTS = 101
"""The most points a scale may have (0..100 percent scales fit as 1..101)."""


@dataclass(frozen=True)
class Likert:
    """A rating on a scale of ``points`` points, 1 = ``low`` ... N = ``high``.

    Attributes:
        name: the instrument's name, carried into its answers.
        question: the question, without the scale.
        points: the number of points N (at least 2).
        low: what 1 means.
        high: what N means.

    """

    name: str
    question: str
    points: int
    low: str
    high: str

    kind: ClassVar[str] = "likert"

    def __post_init__(self) -> None:
        if isinstance(self.points, bool) or not isinstance(self.points, int):
            raise ValueError(
                f"likert {self.name!r}: points must be an integer, got {self.points!r}"
            )
        if not 2 <= self.points <= MAX_POINTS:
            raise ValueError(
                f"likert {self.name!r}: points must be in [2, {MAX_POINTS}], got {self.points}"
            )
        if not self.low.strip() or not self.high.strip():
            raise ValueError(f"likert {self.name!r}: both ends need a label")


def point_labels(points: int) -> tuple[str, ...]:
    """The labels of a scale's points: ``("1", ..., "N")``."""
    return tuple(str(k) for k in range(1, points + 1))


def likert_text(question: str, points: int, low: str, high: str) -> str:
    """The question followed by its scale.

    Args:
        question: the question.
        points: the number of points N.
        low: what 1 means.
        high: what N means.

    Returns:
        E.g. ``"How tired are you? Answer with a number from 1 (not at all) to 7 (very)."``.
    """
    return f"{question} Answer with a number from 1 ({low}) to {points} ({high})."


def expected_point(probabilities: np.ndarray) -> float:
    """The expected point sum_k k * p_k of a distribution over points 1..N."""
    p = np.asarray(probabilities, dtype=np.float64)
    return float(np.dot(np.arange(1, len(p) + 1), p) / p.sum())
