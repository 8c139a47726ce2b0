"""The parts of a scenario: frozen dataclasses, one per section of a scenario file.

Each spec is the validated, resolved form of one TOML section (``[model]``,
``[[agents]]``, ``[dialogue]``, ...), with a ``to_dict`` giving it back in the
shape of the file. The allowed values of the enumerated fields and the keys
each section accepts live here too; the whole :class:`~simulacra.scenario.Scenario`
is assembled in :mod:`simulacra.scenario.loading`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

__all__ = [
    "AGENT_KEYS",
    "BELIEF_KEYS",
    "DIALOGUE_KEYS",
    "MIN_N_CTX",
    "MODEL_KEYS",
    "NORMALIZATIONS",
    "NUMERIC_KEYS",
    "OBSERVATIONS",
    "PERSONA_MODES",
    "PROBE_KEYS",
    "PROBE_KINDS",
    "PROBE_PERSONAS",
    "REGENERATION_KEYS",
    "SCALE_KEYS",
    "SCHEDULERS",
    "SIMULACRUM_KEYS",
    "TOP_KEYS",
    "AgentSpec",
    "BeliefSpec",
    "DialogueSpec",
    "ModelSpec",
    "NumericSpec",
    "ProbeSpec",
    "RegenerationSpec",
    "ScaleSpec",
    "resolve_turn",
]

PersonaMode: TypeAlias = Literal["sample", "map", "fixed"]
ProbePersona: TypeAlias = Literal["map", "sample", "mixture"]
ProbeKind: TypeAlias = Literal["choice", "likert", "numeric"]
SchedulerName: TypeAlias = Literal["round_robin", "random", "addressed"]
Normalization: TypeAlias = Literal["none", "per_token"]
Observation: TypeAlias = Literal["self", "all"]

PERSONA_MODES: tuple[str, ...] = get_args(PersonaMode)
PROBE_PERSONAS: tuple[str, ...] = get_args(ProbePersona)
PROBE_KINDS: tuple[str, ...] = get_args(ProbeKind)
SCHEDULERS: tuple[str, ...] = get_args(SchedulerName)
_scheduler_names: list[str] = list(SCHEDULERS)


def allow_scheduler(name: str) -> None:
    """Let scenario files name the scheduler ``name`` in ``dialogue.scheduler``.

    The scenario owns the vocabulary of scheduler names; the simulation owns the
    policies and calls this from :func:`simulacra.simulation.scheduling.register_scheduler`.
    """
    if name not in _scheduler_names:
        _scheduler_names.append(name)


def scheduler_names() -> tuple[str, ...]:
    """The scheduler names a scenario may use: the built-in ones and any registered."""
    return tuple(_scheduler_names)


NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
OBSERVATIONS: tuple[str, ...] = get_args(Observation)

MIN_N_CTX = 256
"""Smallest context size accepted for ``model.n_ctx``."""


@dataclass(frozen=True)
class ModelSpec:
    """Which model to run: a registry name or a GGUF path (exactly one).

    Attributes:
        name: Registry name of an embedded model, e.g. ``"smollm2-135m-instruct"``.
        path: Path of a GGUF file.
        n_ctx: Context size in tokens; None for the engine's default.
        n_threads: CPU threads; None for all cores (the same count for every
            run of a sweep, whatever its workers).
        n_gpu_layers: Layers offloaded to a GPU (-1: all); 0 runs on the CPU.

    """

    name: str | None = None
    path: str | None = None
    n_ctx: int | None = None
    n_threads: int | None = None
    n_gpu_layers: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the set fields as a plain dict (TOML has no null)."""
        fields = {"name": self.name, "path": self.path, "n_ctx": self.n_ctx}
        fields["n_threads"] = self.n_threads
        fields["n_gpu_layers"] = self.n_gpu_layers or None
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class AgentSpec:
    """One agent, after expansion by ``count``.

    Attributes:
        name: Unique agent name (``alice``, or ``alice_1`` .. ``alice_n``).
        persona: How the agent picks the simulacrum it speaks as each turn:
            ``"sample"`` from its posterior, ``"map"`` its most probable one, or
            ``"fixed"`` always :attr:`assigned`.
        assigned: The simulacrum played when ``persona == "fixed"``, else None.
        prior: Prior weights (not normalised) by simulacrum name, in scenario
            order; its keys are exactly the agent's support.

    """

    name: str
    persona: PersonaMode
    assigned: str | None
    prior: dict[str, float] = field(hash=False)

    @property
    def support(self) -> tuple[str, ...]:
        """The simulacra the agent's beliefs range over, in scenario order."""
        return tuple(self.prior)

    def to_dict(self) -> dict[str, Any]:
        """Return the agent as a plain dict in the shape of an ``[[agents]]`` table."""
        data: dict[str, Any] = {"name": self.name, "persona": self.persona}
        if self.assigned is not None:
            data["assigned"] = self.assigned
        data["prior"] = dict(self.prior)
        return data


@dataclass(frozen=True)
class DialogueSpec:
    """How the conversation runs; the defaults are those of a scenario file.

    Attributes:
        opening: The opening message (turn 0); may be empty.
        opening_speaker: Who says the opening message.
        turns: Number of agent utterances after the opening.
        scheduler: Turn-taking policy: ``"round_robin"``, ``"random"`` or ``"addressed"``.
        max_tokens: Largest number of tokens per utterance.
        temperature: Sampling temperature (0 is greedy).
        top_p: Nucleus sampling mass, in (0, 1].

    """

    opening: str = ""
    opening_speaker: str = "Moderator"
    turns: int = 8
    scheduler: SchedulerName = "round_robin"
    max_tokens: int = 40
    temperature: float = 0.8
    top_p: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict in the shape of ``[dialogue]``."""
        return {
            "opening": self.opening,
            "opening_speaker": self.opening_speaker,
            "turns": self.turns,
            "scheduler": self.scheduler,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }


@dataclass(frozen=True)
class BeliefSpec:
    """How agents update their beliefs; the defaults are those of a scenario file.

    Attributes:
        beta: Likelihood tempering exponent (0 freezes the prior).
        normalize: ``"none"`` (sum of token log-probabilities) or ``"per_token"``
            (mean per token).
        observe: ``"self"`` (an agent updates on its own utterances only) or
            ``"all"`` (on every utterance).

    """

    beta: float = 1.0
    normalize: Normalization = "none"
    observe: Observation = "self"

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict in the shape of ``[belief]``."""
        return {"beta": self.beta, "normalize": self.normalize, "observe": self.observe}


def resolve_turn(turn: int, last: int) -> int:
    """The absolute turn of a turn as written: ``-k`` counts back from the end.

    ``-1`` is the last turn (``last``), ``-2`` the one before, and so on; a turn
    ``>= 0`` is itself.

    Args:
        turn: The turn as written in a scenario file.
        last: ``dialogue.turns``.

    Returns:
        ``turn`` if it is >= 0, else ``last + 1 + turn``.

    """
    return turn if turn >= 0 else last + 1 + turn


@dataclass(frozen=True)
class ScaleSpec:
    """The scale of a Likert probe: ``points`` points, 1 = ``low`` ... N = ``high``.

    Attributes:
        points: The number of points N (>= 2).
        low: What 1 means.
        high: What N means.

    """

    points: int
    low: str
    high: str

    def to_dict(self) -> dict[str, Any]:
        """Return the scale as a plain dict in the shape of a probe's ``scale`` table."""
        return {"points": self.points, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class NumericSpec:
    """How a numeric probe is answered: a short sampled reply read as a number.

    Attributes:
        unit: The unit the number is wanted in (``""`` for none).
        max_tokens: The longest reply sampled.
        temperature: The sampling temperature (0 is greedy).

    """

    unit: str = ""
    max_tokens: int = 16
    temperature: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict in the shape of a probe's ``numeric`` table."""
        return {"unit": self.unit, "max_tokens": self.max_tokens, "temperature": self.temperature}


@dataclass(frozen=True)
class ProbeSpec:
    """A question put to agents at chosen turns, outside the dialogue.

    A probe is one of three kinds: a forced ``"choice"`` between options, a
    ``"likert"`` rating on a scale, or a ``"numeric"`` estimate.

    Attributes:
        name: Unique probe name.
        question: The question asked.
        options: The answers of a choice probe (at least two, distinct); empty
            for the other kinds.
        turns: Sorted, distinct turns after which the probe is taken (0 = before
            the first utterance), resolved against ``dialogue.turns``.
        agents: Expanded names of the agents probed.
        persona: Which persona answers: ``"map"``, ``"sample"`` or
            ``"mixture"`` (posterior-weighted mixture over the support; choice
            and Likert probes only).
        kind: ``"choice"``, ``"likert"`` or ``"numeric"``.
        scale: The scale of a Likert probe, else None.
        numeric: The settings of a numeric probe, else None.
        written_turns: The turns as written (negative ones count back from the
            end, ``-1`` = the last turn), in the order of :attr:`turns`; what
            :meth:`to_dict` writes, so that overriding ``dialogue.turns``
            resolves them again; defaults to :attr:`turns`.

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
        if not self.written_turns:  # built in code with absolute turns only
            object.__setattr__(self, "written_turns", tuple(self.turns))

    def to_dict(self) -> dict[str, Any]:
        """Return the probe as a plain dict in the shape of a ``[[probes]]`` table."""
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "question": self.question}
        if self.kind == "choice":
            data["options"] = list(self.options)
        if self.scale is not None:
            data["scale"] = self.scale.to_dict()
        if self.numeric is not None:
            data["numeric"] = self.numeric.to_dict()
        data["turns"] = list(self.written_turns)
        data["agents"] = list(self.agents)
        data["persona"] = self.persona
        return data


@dataclass(frozen=True)
class RegenerationSpec:
    """The regeneration test: at chosen turns, redraw an agent's next utterance M times.

    Before the utterance of each listed turn is played, every listed agent's next
    utterance is regenerated ``samples`` times from the same dialogue state (the
    dialogue itself is unchanged); each regeneration is labelled by its most likely
    simulacrum (see :mod:`simulacra.simulation.regeneration`).

    Attributes:
        turns: Sorted, distinct turns in ``[1, dialogue.turns]``; turn ``t`` redraws
            the ``t``-th utterance from the state after ``t - 1`` utterances.
        samples: Regenerations per agent and turn (>= 2).
        agents: Expanded names of the agents whose utterances are regenerated.
        written_turns: The turns as written (``-1`` = the last utterance), in the
            order of :attr:`turns`; what :meth:`to_dict` writes; defaults to
            :attr:`turns`.

    """

    turns: tuple[int, ...]
    samples: int
    agents: tuple[str, ...]
    written_turns: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.written_turns:  # built in code with absolute turns only
            object.__setattr__(self, "written_turns", tuple(self.turns))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict in the shape of ``[regeneration]``."""
        return {
            "turns": list(self.written_turns),
            "samples": self.samples,
            "agents": list(self.agents),
        }


# --------------------------------------------------------------------------- keys

TOP_KEYS = (
    "seed",
    "model",
    "simulacra",
    "agents",
    "dialogue",
    "belief",
    "probes",
    "regeneration",
)
MODEL_KEYS = ("name", "path", "n_ctx", "n_threads", "n_gpu_layers")
SIMULACRUM_KEYS = ("name", "description", "tags")
AGENT_KEYS = ("name", "count", "persona", "assigned", "prior", "prior_tags")
DIALOGUE_KEYS = tuple(DialogueSpec().to_dict())
BELIEF_KEYS = tuple(BeliefSpec().to_dict())
PROBE_KEYS = (
    "name",
    "kind",
    "question",
    "options",
    "scale",
    "numeric",
    "turns",
    "agents",
    "persona",
)
SCALE_KEYS = ("points", "low", "high")
NUMERIC_KEYS = tuple(NumericSpec().to_dict())
REGENERATION_KEYS = ("turns", "samples", "agents")
