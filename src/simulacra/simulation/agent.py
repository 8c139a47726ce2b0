"""PersonaAgent: a Mesa agent holding a superposition of simulacra.

On its turn the agent chooses the simulacrum to speak as (drawn from its posterior,
its most probable one, or a fixed assignment) and renders the prompt for the
engine from that persona and the shared history, seen from its own seat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import mesa

from simulacra.llm.chat import Message, render_dialogue
from simulacra.simulation.superposition import Superposition

if TYPE_CHECKING:
    from simulacra.scenario import AgentSpec, Scenario

__all__ = ["EMPTY_UTTERANCE", "PersonaAgent", "Stage"]

EMPTY_UTTERANCE = "..."
"""What an agent is recorded as saying when the model generates only whitespace."""


class Stage(Protocol):
    """What an agent needs of the dialogue it speaks in (a ``DialogueModel``)."""

    scenario: Scenario

    def prompt_history(self) -> list[Message]:
        """The recent messages that fit the prompt budget."""
        ...

    def take_turn(self, speaker: PersonaAgent) -> None:
        """Let ``speaker`` say one utterance."""
        ...


class PersonaAgent(mesa.Agent):
    """An agent of a dialogue with a distribution over candidate personas.

    Attributes:
        name: the agent's name in the dialogue.
        persona_mode: "sample", "map" or "fixed".
        assigned: the fixed persona, if any.
        superposition: the agent's beliefs over its simulacra.
        simulacrum: the persona it last spoke as (None before it speaks).
    """

    model: Stage

    def __init__(self, model: Stage, spec: AgentSpec) -> None:
        super().__init__(model)
        self.name = spec.name
        self.persona_mode = spec.persona
        self.assigned = spec.assigned
        belief = model.scenario.belief
        self.superposition = Superposition(
            list(spec.prior),
            list(spec.prior.values()),
            beta=belief.beta,
            normalize=belief.normalize,
        )
        self.simulacrum: str | None = None

    def __repr__(self) -> str:
        return f"PersonaAgent({self.name!r}, mode={self.persona_mode!r})"

    @property
    def support(self) -> tuple[str, ...]:
        """The simulacra this agent's beliefs range over."""
        return self.superposition.names

    def choose_simulacrum(self) -> str:
        """Pick the persona to speak as this turn, according to ``persona_mode``."""
        if self.persona_mode == "fixed":
            assert self.assigned is not None
            return self.assigned
        if self.persona_mode == "map":
            return self.map_simulacrum()
        return self.superposition.sample(self.model.rng)

    def map_simulacrum(self) -> str:
        """The agent's most probable simulacrum, a tie broken by the model's generator.

        A tie (a flat prior, say) is broken once, by a uniform draw from
        ``model.rng``, and the agent keeps that persona while it stays tied, so
        its starting persona, its turns in ``map`` mode and the persona answering
        its ``map`` probes agree (see :meth:`Superposition.map`).
        """
        return self.superposition.map(self.model.rng)

    def system_prompt(self, simulacrum: str) -> str:
        """The persona text for ``simulacrum``, with this agent's name and company."""
        description = self.model.scenario.simulacrum(simulacrum).description
        others = [a.name for a in self.model.persona_agents if a is not self]
        company = f" You are talking with {', '.join(others)}." if others else ""
        return (
            f"{description} Your name is {self.name}.{company} "
            "Stay in character and reply with one or two short sentences."
        )

    def prompt(self, simulacrum: str, history: list[Message] | None = None) -> list[str]:
        """Prompt segments for this agent's next message as ``simulacrum``."""
        history = self.model.prompt_history() if history is None else history
        return render_dialogue(
            self.model.engine.chat, self.system_prompt(simulacrum), history, self.name
        )

    def step(self) -> None:
        """Take a turn in the dialogue (Mesa's idiom; the model decides who steps)."""
        self.model.take_turn(self)
