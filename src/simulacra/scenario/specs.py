"""The resolved parts of a scenario that differ from the file: agents, probes, regeneration.

Each ``to_dict`` gives the part back in the shape of the file, where agents are
already expanded and turns are written as in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulacra.scenario.schema import (
    NumericSpec,
    PersonaMode,
    ProbeKind,
    ProbePersona,
    ScaleSpec,
    SteerSpec,
)

__all__ = ["AgentSpec", "ProbeSpec", "RegenerationSpec"]


@dataclass(frozen=True)
class AgentSpec:
    """One agent, expanded by ``count`` (``alice``, or ``alice_1`` .. ``alice_n``).

    Attributes:
        name: Unique agent name.
        persona: ``"sample"`` (drawn from its posterior), ``"map"`` or ``"fixed"``.
        assigned: The simulacrum played when ``persona == "fixed"``, else None.
        prior: Prior weights (not normalised) by simulacrum name, in scenario
            order; its keys are exactly the agent's support.
        steer: The control vector steering its generations, or None.
    """

    name: str
    persona: PersonaMode
    assigned: str | None
    prior: dict[str, float] = field(hash=False)
    steer: SteerSpec | None = None

    @property
    def support(self) -> tuple[str, ...]:
        """The simulacra the agent's beliefs range over, in scenario order."""
        return tuple(self.prior)

    def to_dict(self) -> dict[str, Any]:
        """The agent as a plain dict in the shape of an ``[[agents]]`` table."""
        data: dict[str, Any] = {"name": self.name, "persona": self.persona}
        if self.assigned is not None:
            data["assigned"] = self.assigned
        data["prior"] = dict(self.prior)
        if self.steer is not None:
            data["steer"] = self.steer.to_dict()
        return data


@dataclass(frozen=True)
class ProbeSpec:
    """A question put to agents at chosen turns (``[[probes]]``, resolved).

    Attributes:
        name: Unique probe name.
        question: The question asked.
        options: A choice probe's answers; empty for the other kinds.
        turns: Sorted, distinct turns after which it is taken (0: before the first
            utterance), resolved against ``dialogue.turns``.
        agents: Expanded names of the agents probed.
        persona: Who answers: ``"map"``, ``"sample"``, ``"mixture"`` (answers mixed by
            posterior weight; not numeric) or ``"assigned"`` (a fixed agent's simulacrum).
        kind: ``"choice"``, ``"likert"`` or ``"numeric"``.
        scale: A Likert probe's scale, else None.
        numeric: A numeric probe's settings, else None.
        written_turns: The turns as written (``-1``: the last), in the order of
            :attr:`turns`, so that a new ``dialogue.turns`` resolves them again;
            by default :attr:`turns`.
    """

    name: str
    question: str
    options: tuple[str, ...]
    turns: tuple[int, ...]
    agents: tuple[str, ...]
    persona: ProbePersona = "map"
    kind: ProbeKind = "choice"
    scale: ScaleSpec | None = None
    numeric: NumericSpec | None = None
    written_turns: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "written_turns", self.written_turns or tuple(self.turns))

    def to_dict(self) -> dict[str, Any]:
        """The probe as a plain dict in the shape of a ``[[probes]]`` table."""
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "question": self.question}
        if self.kind == "choice":
            data["options"] = list(self.options)
        if self.scale is not None:
            data["scale"] = self.scale.to_dict()
        if self.numeric is not None:
            data["numeric"] = self.numeric.to_dict()
        data |= {"turns": list(self.written_turns), "agents": list(self.agents)}
        return data | {"persona": self.persona}


@dataclass(frozen=True)
class RegenerationSpec:
    """The regeneration test: before the utterances of chosen turns, redraw them M times.

    Each listed agent's next utterance is regenerated ``samples`` times from the
    same dialogue state (the dialogue itself is unchanged), and each regeneration
    is labelled by its likeliest simulacrum (:mod:`simulacra.simulation.regeneration`).

    Attributes:
        turns: Sorted, distinct turns in ``[1, dialogue.turns]``; turn ``t`` redraws
            the ``t``-th utterance.
        samples: Regenerations per agent and turn (>= 2).
        agents: Expanded names of the agents whose utterances are regenerated.
        written_turns: The turns as written, as for :class:`ProbeSpec`.
    """

    turns: tuple[int, ...]
    samples: int
    agents: tuple[str, ...]
    written_turns: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "written_turns", self.written_turns or tuple(self.turns))

    def to_dict(self) -> dict[str, Any]:
        """The test as a plain dict in the shape of ``[regeneration]``."""
        return {
            "turns": list(self.written_turns),
            "samples": self.samples,
            "agents": list(self.agents),
        }
