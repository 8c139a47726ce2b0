"""The numeric instrument: an open estimate (a distance, a count, a price).

The respondent's short reply is sampled with a seed of its own, stopped at the end
of the line, and read by :func:`~simulacra.instruments.number_parsing.parse_number`.
A reply with no readable number is kept, with its raw text and ``parsed=False``, so
that refusals and rambling are counted rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["Numeric", "numeric_text"]


@dataclass(frozen=True)
class Numeric:
    """A question answered with a number.

    Attributes:
        name: the instrument's name, carried into its answers.
        question: the question.
        unit: the unit the number is wanted in (e.g. ``"miles"``); ``""`` for none.
        max_tokens: the longest reply sampled.
        temperature: the sampling temperature (0 is greedy).

    """

    name: str
    question: str
    unit: str = ""
    max_tokens: int = 16
    temperature: float = 1.0

    kind: ClassVar[str] = "numeric"

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"numeric {self.name!r}: max_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError(f"numeric {self.name!r}: temperature must be >= 0")


def numeric_text(question: str, unit: str = "") -> str:
    """The question followed by the request for a number (in ``unit``, if any).

    Returns:
        E.g. ``"How far is Paris from Rome? Answer with a single number, in miles."``.
    """
    wanted = f"a single number, in {unit}" if unit else "a single number"
    return f"{question} Answer with {wanted}."
