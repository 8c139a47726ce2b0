"""Turn-taking policies: who speaks next in a dialogue.

A scheduler is a small object with a ``name`` and a ``next_speaker(model)`` method.
The built-in policies are registered by name for scenario files; register your own
with :func:`register_scheduler`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from simulacra.scenario.schema import allow_scheduler

if TYPE_CHECKING:
    from simulacra.simulation.agent import PersonaAgent
    from simulacra.simulation.dialogue import Dialogue

__all__ = [
    "Addressed",
    "Monologue",
    "RandomOrder",
    "RoundRobin",
    "Scheduler",
    "addressed_agent",
    "make_scheduler",
    "register_scheduler",
    "scheduler_names",
]


class Scheduler(Protocol):
    """Chooses the speaker of each turn."""

    name: str

    def next_speaker(self, model: Dialogue) -> PersonaAgent:
        """Return the agent who speaks in the model's next turn."""
        ...


class RoundRobin:
    """Agents speak in the order of the scenario, cycling."""

    name = "round_robin"

    def next_speaker(self, model: Dialogue) -> PersonaAgent:
        """Return the agent after the last speaker, wrapping around."""
        agents = model.persona_agents
        return agents[model.turn % len(agents)]


class RandomOrder:
    """A speaker drawn uniformly from ``model.rng``, never the last speaker twice in a row."""

    name = "random"

    def next_speaker(self, model: Dialogue) -> PersonaAgent:
        """Draw the next speaker among the agents other than the last one."""
        agents = model.persona_agents
        candidates = [a for a in agents if a is not model.last_speaker] or list(agents)
        return candidates[int(model.rng.integers(len(candidates)))]


def addressed_agent(text: str, names: Sequence[str], speaker: str | None) -> str | None:
    """The first agent named in ``text`` other than its speaker, if any.

    Names match as whole words, case-insensitively, with an optional leading "@".

    Args:
        text: an utterance.
        names: the agents' names.
        speaker: who said it (never returned).

    Returns:
        The addressed agent's name, or None.
    """
    best: tuple[int, str] | None = None
    for name in names:
        if name == speaker:
            continue
        match = re.search(rf"(?<![\w@])@?{re.escape(name)}(?!\w)", text, flags=re.IGNORECASE)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), name)
    return best[1] if best else None


class Addressed:
    """The agent named in the last utterance speaks next; otherwise round robin."""

    name = "addressed"

    def __init__(self) -> None:
        self._fallback = RoundRobin()

    def next_speaker(self, model: Dialogue) -> PersonaAgent:
        """Return the agent addressed in the last message, else the round-robin choice."""
        if model.history:
            last = model.history[-1]
            by_name = {a.name: a for a in model.persona_agents}
            target = addressed_agent(last.text, list(by_name), last.speaker)
            if target is not None:
                return by_name[target]
        return self._fallback.next_speaker(model)


class Monologue:
    """The first agent speaks every turn; the others only listen (with ``observe = "all"``).

    For observers that must judge one speaker without speaking themselves, as in
    the planted-persona test (``scenarios/planted_persona.toml``).
    """

    name = "monologue"

    def next_speaker(self, model: Dialogue) -> PersonaAgent:
        """Return the first agent of the scenario."""
        return model.persona_agents[0]


_SCHEDULERS: dict[str, Callable[[], Scheduler]] = {
    RoundRobin.name: RoundRobin,
    RandomOrder.name: RandomOrder,
    Addressed.name: Addressed,
    Monologue.name: Monologue,
}


def register_scheduler(name: str, factory: Callable[[], Scheduler]) -> None:
    """Make a scheduler available to scenario files under ``name``.

    Args:
        name: the name used in ``dialogue.scheduler``.
        factory: a callable returning a new scheduler.
    """
    _SCHEDULERS[name] = factory
    allow_scheduler(name)


def scheduler_names() -> tuple[str, ...]:
    """The registered scheduler names."""
    return tuple(_SCHEDULERS)


def make_scheduler(name: str) -> Scheduler:
    """Create the scheduler registered as ``name``.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        return _SCHEDULERS[name]()
    except KeyError:
        raise ValueError(
            f"unknown scheduler {name!r}: expected one of {', '.join(_SCHEDULERS)}"
        ) from None
