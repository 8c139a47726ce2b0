"""What a turn's helpers see of a running dialogue: the :class:`Dialogue` protocol.

Schedulers, probes and the regeneration test read the dialogue they serve (its
agents, history, engine and random generator) without importing the Mesa model
that runs it: :class:`~simulacra.simulation.model.DialogueModel` satisfies this
protocol, and the model imports them, never the reverse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from simulacra.llm.chat import Message
    from simulacra.llm.engine import Engine
    from simulacra.scenario import Scenario
    from simulacra.simulation.agent import PersonaAgent

__all__ = ["Dialogue"]


class Dialogue(Protocol):
    """A dialogue in progress, as its turn-taking and measurement helpers see it.

    Attributes:
        scenario: the resolved scenario.
        seed: the run's seed.
        engine: the inference engine the dialogue runs on.
        rng: the dialogue's random generator (persona draws, scheduling, sampling).
        persona_agents: the agents, in scenario order.
        history: the messages so far (the opening first, if any).
        turn: the number of utterances so far.
        last_speaker: the agent who spoke last (None before the first turn).
    """

    scenario: Scenario
    seed: int
    engine: Engine
    rng: np.random.Generator
    persona_agents: list[PersonaAgent]
    history: list[Message]
    turn: int
    last_speaker: PersonaAgent | None

    def prompt_history(self) -> list[Message]:
        """The most recent messages that fit the prompt budget."""
        ...
