"""A simulacrum: one candidate persona that a language model may be simulating.

A simulacrum is pure data: a unique name, the persona prompt (written in the
second person, "You are ...") and a set of free-form tags used to group
simulacra (``aligned``, ``villain``) in priors and analyses.  Nothing here knows
about inference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Simulacrum"]


@dataclass(frozen=True)
class Simulacrum:
    """A candidate persona.

    Attributes:
        name: Unique identifier within a scenario.
        description: The persona prompt, e.g. ``"You are a pirate ..."``.
        tags: Labels grouping simulacra; any iterable of strings is stored as a tuple.

    """

    name: str
    description: str
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.tags, tuple):
            object.__setattr__(self, "tags", _as_tuple(self.tags))

    def has_tag(self, tag: str) -> bool:
        """Tell whether this simulacrum carries ``tag``.

        Args:
            tag: The tag to look for.

        Returns:
            True when ``tag`` is one of :attr:`tags`.

        """
        return tag in self.tags


def _as_tuple(tags: Iterable[str]) -> tuple[str, ...]:
    """Turn an iterable of tags into a tuple (a lone string is one tag)."""
    if isinstance(tags, str):
        return (tags,)
    return tuple(tags)
