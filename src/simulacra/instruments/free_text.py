"""The free-text instrument: the respondent's reply, sampled and kept as text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["FreeText"]


@dataclass(frozen=True)
class FreeText:
    """A question answered in the respondent's own words.

    Attributes:
        name: the instrument's name, carried into its answers.
        question: the question, put as it is.
        max_tokens: the longest reply sampled.
        temperature: the sampling temperature (0 is greedy).

    """

    name: str
    question: str
    max_tokens: int = 64
    temperature: float = 0.8

    kind: ClassVar[str] = "free_text"

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"free text {self.name!r}: max_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError(f"free text {self.name!r}: temperature must be >= 0")
