"""The scenario file kind: one pydantic model per table of a scenario file.

:class:`ScenarioFile` is the file as written (agents with ``count``, priors by
tag, turns counted from the end); :mod:`simulacra.scenario.loading` resolves it
into a :class:`~simulacra.scenario.Scenario`. The sections whose written and
resolved forms are the same (``[model]``, ``[dialogue]``, ``[belief]``, a probe's
``scale`` and ``numeric``, an agent's ``steer``, ``[projections]``) are used as they
are by the resolved scenario. Checks that span sections read the facts of the
sections validated before them (:func:`~simulacra.schema.facts`): the simulacra for
the agents' priors, the agents and ``dialogue.turns`` for the probes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from simulacra.instruments.likert import MAX_POINTS
from simulacra.schema import (
    Array,
    Count,
    ExistingFile,
    Expect,
    FilePath,
    Name,
    NonNegative,
    Problem,
    SchemaModel,
    Text,
    Unique,
    facts,
    fail,
    one_of,
    ordered_pair,
    quote,
    unknown,
    with_problems,
)

__all__ = [
    "MIN_N_CTX",
    "PROBE_KINDS",
    "SCHEDULERS",
    "AgentEntry",
    "BeliefSpec",
    "DialogueSpec",
    "ModelSpec",
    "NumericSpec",
    "ProbeEntry",
    "ProjectionsSpec",
    "RegenerationEntry",
    "ScaleSpec",
    "ScenarioFile",
    "SimulacrumEntry",
    "SteerSpec",
    "allow_scheduler",
    "expand",
    "probed_agents",
    "resolve_prior",
    "resolve_turn",
    "scheduler_names",
]

PersonaMode = Literal["sample", "map", "fixed"]
ProbePersona = Literal["map", "sample", "mixture", "assigned"]
ProbeKind = Literal["choice", "likert", "numeric"]
Normalization = Literal["none", "per_token"]
Observation = Literal["self", "all"]

PROBE_KINDS: tuple[str, ...] = get_args(ProbeKind)
SCHEDULERS: tuple[str, ...] = ("round_robin", "random", "addressed", "monologue")
_scheduler_names: list[str] = list(SCHEDULERS)

MIN_N_CTX = 256
"""Smallest context size accepted for ``model.n_ctx``."""
_MISSING_MODEL = "missing model: set model.name (a registry name) or model.path (a GGUF file)"
_SCALE_EXAMPLE = 'scale = {points = 5, low = "not at all", high = "completely"}'


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


def _known_scheduler(name: str) -> str:
    if name not in _scheduler_names:
        fail([((), one_of(name, _scheduler_names))])
    return name


def resolve_turn(turn: int, last: int) -> int:
    """The absolute turn of a turn as written: ``-1`` is ``last``, ``-2`` the one before..."""
    return turn if turn >= 0 else last + 1 + turn


def expand(name: str, count: int) -> list[str]:
    """An agent's names: ``name`` for one, ``name_1`` .. ``name_n`` for ``count`` of them."""
    return [name] if count == 1 else [f"{name}_{k}" for k in range(1, count + 1)]


def resolve_prior(
    prior: Mapping[str, float] | None,
    prior_tags: Mapping[str, float] | None,
    simulacra: Sequence[SimulacrumEntry],
) -> dict[str, float]:
    """Prior weights by simulacrum name, in scenario order; the keys are the support.

    A tag's weight is split equally among the simulacra carrying it; without
    ``prior`` or ``prior_tags`` the prior is uniform over every simulacrum.
    """
    names = [sim.name for sim in simulacra]
    if prior is not None:
        return {name: float(prior[name]) for name in names if name in prior}
    if prior_tags is None:
        return dict.fromkeys(names, 1.0)
    spread: dict[str, float] = {}
    for tag, weight in prior_tags.items():
        members = [sim.name for sim in simulacra if tag in sim.tags]
        for name in members:
            spread[name] = spread.get(name, 0.0) + weight / len(members)
    return {name: spread[name] for name in names if name in spread}


def probed_agents(names: Sequence[str] | None, known: Mapping[str, Any]) -> tuple[str, ...]:
    """Expanded agent names of a probe's ``agents`` (base names expand; None: all), deduplicated."""
    if names is None:
        return tuple(known["agents"])
    groups = known["groups"]
    return tuple(dict.fromkeys(n for name in names for n in groups.get(name, [name])))


def _check_agents(names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    """Every name is an agent's (expanded, or the base name of a counted agent)."""
    known = facts(info)
    if "agents" in known:
        fail(unknown("agent", names, [*known["agents"], *known["groups"]], "agents"))
    return names


def _check_turns(turns: tuple[int, ...], info: ValidationInfo, first: int) -> tuple[int, ...]:
    """Turns in ``[first, dialogue.turns]``, or counted back from the end; no two the same."""
    last = facts(info).get("turns")
    if last is None:
        return turns
    span = last + 1 - first
    seen: dict[int, int] = {}  # resolved turn -> the turn as written
    problems: list[Problem] = []
    for index, turn in enumerate(turns):
        resolved = resolve_turn(turn, last)
        if turn > last or 0 <= turn < first:
            message = f"turn {turn} is outside [{first}, {last}] (dialogue.turns = {last})"
        elif resolved < first:
            message = (
                f"turn {turn} is outside [{-span}, -1], the turns counted from the end "
                f"(-1 is turn {last}, {-span} is turn {first}; dialogue.turns = {last})"
            )
        elif resolved in seen and seen[resolved] == turn:
            problems.append(((index,), f"duplicate turn {turn}"))
            continue
        elif resolved in seen:
            message = (
                f"duplicate turn: {turn} and {seen[resolved]} are both turn {resolved} "
                f"(dialogue.turns = {last})"
            )
        else:
            seen[resolved] = turn
            continue
        problems.append(((index,), message, ("dialogue.turns",)))
    fail(problems)
    return turns


# --------------------------------------------------------------------------- sections


class Section(SchemaModel):
    """A table whose written and resolved forms are the same."""

    def to_dict(self) -> dict[str, Any]:
        """The table as plain, JSON-able values (TOML has no null: unset keys are left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class ModelSpec(Section):
    """Which model to run: a registry name or a GGUF file (exactly one)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [k]} for k in ("name", "path")]}
    )

    name: Text | None = None
    """Registry name of an embedded model, e.g. "smollm2-135m-instruct"."""
    path: FilePath | None = None
    """A GGUF file, relative to the scenario file."""
    n_ctx: Annotated[int, Field(ge=MIN_N_CTX)] | None = None
    """Context size in tokens (default: the engine's)."""
    n_threads: Count | None = None
    """CPU threads (default: every core; the same for every run of a sweep)."""
    n_gpu_layers: Annotated[int, Field(ge=-1)] = 0
    """Layers offloaded to a GPU (-1: all; 0: the CPU only)."""

    @model_validator(mode="wrap")
    @classmethod
    def _one_source(cls, data: Any, handler: Any) -> Any:
        given = [
            k for k in ("name", "path") if isinstance(data, Mapping) and data.get(k) is not None
        ]
        problems: list[Problem] = []
        if isinstance(data, Mapping) and not given:
            problems.append(((), _MISSING_MODEL))
        elif len(given) == 2:
            problems.append(((), "give either model.name or model.path, not both"))
        return with_problems(handler, data, problems)

    def to_dict(self) -> dict[str, Any]:
        """The set fields as a plain dict (``n_gpu_layers = 0`` is left out too)."""
        return {key: value for key, value in super().to_dict().items() if value != 0}


class SimulacrumEntry(SchemaModel):
    """A candidate persona (``[[simulacra]]``)."""

    name: Name
    """Unique name."""
    description: Text
    """The persona prompt, in the second person: "You are ..."."""
    tags: Annotated[Array[Name], Unique("tag")] = ()
    """Labels grouping simulacra, for priors by tag and for analyses."""


class SteerSpec(Section):
    """Steering an agent's generations by a control vector (``[agents.steer]``)."""

    vector: ExistingFile
    """A control-vector GGUF file, relative to the scenario file."""
    coefficient: float
    """How strongly to steer: the multiple of the vector added (negative: away from it)."""
    layers: ordered_pair(
        Annotated[int, Field(ge=1)], "the first and last block steered", ("start", "end")
    )
    """The first and last block steered, inclusive: [start, end] with 1 <= start <= end."""


Weight = Annotated[NonNegative, Expect(noun="weight")]
NONEMPTY = Field(json_schema_extra={"minProperties": 1})


class AgentEntry(SchemaModel):
    """An agent, or ``count`` alike (``[[agents]]``)."""

    name: Name
    """Unique name; with count > 1 the agents are name_1 .. name_n."""
    count: Count = 1
    """How many agents alike."""
    persona: PersonaMode = "sample"
    """How the agent picks the simulacrum it speaks as: drawn from its beliefs, their
    most probable one (map), or always `assigned` (fixed)."""
    prior: (
        Annotated[dict[str, Weight], NONEMPTY, Expect(type="a table of weights by simulacrum")]
        | None
    ) = None
    """Prior weights by simulacrum name (>= 0, sum > 0); the names listed are the support."""
    prior_tags: (
        Annotated[dict[str, Weight], NONEMPTY, Expect(type="a table of weights by tag")] | None
    ) = None
    """Prior weights by tag, each split equally among the tag's simulacra."""
    assigned: Text | None = Field(None, validate_default=True)
    """The simulacrum a fixed agent plays; required with persona = "fixed" only."""
    steer: SteerSpec | None = None
    """Steer the agent's generations with a control vector."""

    @field_validator("prior")
    @classmethod
    def _prior(cls, prior: dict[str, float] | None, info: ValidationInfo) -> Any:
        simulacra = facts(info).get("simulacra")
        names = None if simulacra is None else [sim.name for sim in simulacra]
        return _weights(prior, names, "simulacrum")

    @field_validator("prior_tags")
    @classmethod
    def _prior_tags(cls, weights: dict[str, float] | None, info: ValidationInfo) -> Any:
        if weights is not None and info.data.get("prior") is not None:
            fail([((), "give either prior or prior_tags, not both")])
        simulacra = facts(info).get("simulacra")
        tags = (
            None if simulacra is None else list(dict.fromkeys(t for s in simulacra for t in s.tags))
        )
        return _weights(weights, tags, "tag")

    @field_validator("assigned")
    @classmethod
    def _assigned(cls, assigned: str | None, info: ValidationInfo) -> str | None:
        data, simulacra = info.data, facts(info).get("simulacra")
        persona = data.get("persona")
        if persona is None:
            return assigned
        if persona != "fixed" and assigned is not None:
            message = (
                f"'assigned' is only allowed with persona = 'fixed' (persona is {quote(persona)})"
            )
            fail([((), message, (".persona",))])
        if persona == "fixed" and assigned is None:
            message = "persona = 'fixed' requires 'assigned' (the simulacrum the agent plays)"
            fail([((), message, (".persona",))])
        if assigned is None:
            return None
        if simulacra is not None:
            fail(unknown("simulacrum", assigned, [sim.name for sim in simulacra]))
        support = _support(data, simulacra)
        if support is not None and assigned not in support:
            message = (
                f"assigned simulacrum {quote(assigned)} is not in the agent's support "
                f"({', '.join(map(quote, support))})"
            )
            fail([((), message, (".prior", ".prior_tags"))])
        return assigned


def _support(data: Mapping[str, Any], simulacra: Any) -> list[str] | None:
    """An agent's support (in scenario order when the simulacra are known); None if unknown."""
    if "prior" not in data or "prior_tags" not in data:
        return None  # one of them is invalid
    if simulacra is not None:
        return list(resolve_prior(data["prior"], data["prior_tags"], simulacra))
    return None if data["prior"] is None else list(data["prior"])


def _weights(
    weights: dict[str, float] | None, known: list[str] | None, kind: str
) -> dict[str, float] | None:
    """Weights by known names (unchecked while the names are unknown), summing to > 0."""
    if weights is None:
        return None
    if known is not None:
        fail(unknown(kind, weights, known))
    if sum(weights.values()) <= 0:
        fail([((), "weights must sum to > 0" + ("" if weights else " (the table is empty)"))])
    return weights


class DialogueSpec(Section):
    """How the conversation runs (``[dialogue]``)."""

    opening: str = ""
    """The opening message (turn 0); may be empty."""
    opening_speaker: Text = "Moderator"
    """Who says the opening message (not an agent's name)."""
    turns: Count = 8
    """Agent utterances after the opening."""
    scheduler: Annotated[str, AfterValidator(_known_scheduler)] = "round_robin"
    """Turn-taking policy: "round_robin", "random", "addressed", "monologue", or registered."""
    max_tokens: Count = 40
    """Largest number of tokens per utterance."""
    temperature: NonNegative = 0.8
    """Sampling temperature (0 is greedy)."""
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    """Nucleus sampling mass, in (0, 1]."""


class BeliefSpec(Section):
    """How agents update their beliefs (``[belief]``)."""

    beta: NonNegative = 1.0
    """Likelihood tempering exponent (0 freezes the prior)."""
    normalize: Normalization = "none"
    """"none": the sum of token log-probabilities; "per_token": their mean."""
    observe: Observation = "self"
    """"self": an agent updates on its own utterances only; "all": on every utterance."""


class ScaleSpec(Section):
    """A Likert probe's scale: 1 = ``low`` ... ``points`` = ``high``."""

    points: Annotated[int, Field(ge=2, le=MAX_POINTS)]
    """The number of points N."""
    low: Text
    """What 1 means."""
    high: Text
    """What N means."""


class NumericSpec(Section):
    """How a numeric probe is answered: a short sampled reply read as a number."""

    unit: str = ""
    """The unit the number is wanted in ("" for none)."""
    max_tokens: Count = 16
    """The longest reply sampled."""
    temperature: NonNegative = 1.0
    """The sampling temperature (0 is greedy)."""


_KIND_KEYS = {"options": "choice", "scale": "likert", "numeric": "numeric"}
"""The probe keys that belong to one kind of probe."""


def _agent_list(verb: str) -> Any:
    size = f"must list at least one agent (leave it out to {verb} all agents)"
    return Annotated[
        Array[Text], Field(min_length=1), Expect(size=size), AfterValidator(_check_agents)
    ]


def _turn_list(first: int) -> Any:
    check = AfterValidator(lambda turns, info: _check_turns(turns, info, first))
    size = Expect(size="must list at least one turn")
    return Annotated[
        Array[int], Field(min_length=1, json_schema_extra={"uniqueItems": True}), size, check
    ]


ProbeTurns = _turn_list(0)
RegenerationTurns = _turn_list(1)
ProbeAgents = _agent_list("probe")
RegenerationAgents = _agent_list("regenerate")


class ProbeEntry(SchemaModel):
    """A question put to agents at chosen turns, outside the dialogue (``[[probes]]``)."""

    name: Name
    """Unique name."""
    kind: ProbeKind = "choice"
    """A forced "choice" between options, a "likert" rating, or a "numeric" estimate."""
    question: Text
    """The question asked."""
    options: (
        Annotated[
            Array[Text],
            Field(min_length=2),
            Unique("option"),
            Expect(size="need at least {min} options, got {got}"),
        ]
        | None
    ) = None
    """A choice probe's answers: at least 2, distinct."""
    scale: Annotated[ScaleSpec, Expect(type=f"a table like {_SCALE_EXAMPLE}")] | None = None
    """A likert probe's scale."""
    numeric: NumericSpec | None = None
    """A numeric probe's settings."""
    turns: ProbeTurns
    """Turns after which the probe is taken (0: before the first utterance; -1: the last)."""
    agents: ProbeAgents | None = None
    """Agents probed (a counted agent's base name means all of them; default: all)."""
    persona: ProbePersona = "map"
    """Who answers: the agent's most probable simulacrum (map), one drawn from its beliefs
    (sample), their answers mixed by belief (mixture; not numeric), or a fixed agent's
    assigned simulacrum (assigned)."""

    @field_validator("persona")
    @classmethod
    def _persona(cls, persona: str, info: ValidationInfo) -> str:
        if persona == "mixture" and info.data.get("kind") == "numeric":
            message = (
                "persona = 'mixture' needs answer probabilities, and a numeric probe's answer "
                "is one sampled reply; use 'map' or 'sample'"
            )
            fail([((), message, (".kind",))])
        known = facts(info)
        if persona == "assigned" and "agents" in known and "agents" in info.data:
            for name in probed_agents(info.data["agents"], known):
                mode = known["agents"][name].persona
                if mode != "fixed":
                    message = (
                        f"persona = 'assigned' asks each agent as its assigned simulacrum, and "
                        f"agent {quote(name)} is not fixed (its persona is {quote(mode)}); "
                        "probe only fixed agents (agents = [...]) or use 'map'"
                    )
                    fail([((), message, ("agents", ".agents"))])
        return persona

    @model_validator(mode="wrap")
    @classmethod
    def _kind_keys(cls, data: Any, handler: Any) -> Any:
        """The keys of another kind of probe, or those this kind needs, on the raw table."""
        kind = data.get("kind", "choice") if isinstance(data, Mapping) else None
        if kind not in PROBE_KINDS:
            return handler(data)
        given = "" if "kind" in data else ", the default"
        stray = [key for key, owner in _KIND_KEYS.items() if key in data and owner != kind]
        problems: list[Problem] = [
            (
                (key,),
                f"{quote(key)} is only for kind = {quote(owner)} probes (this probe's kind is "
                f"{quote(kind)}{given}; set kind = {quote(owner)} or remove {quote(key)})",
                (".kind",),
            )
            for key, owner in _KIND_KEYS.items()
            if key in stray
        ]
        if not problems and kind == "choice" and "options" not in data:
            message = (
                "missing required key 'options': a choice probe lists at least 2 answers "
                "(or set kind = 'likert' or 'numeric')"
            )
            problems.append((("options",), message))
        if not problems and kind == "likert" and "scale" not in data:
            message = "missing required key 'scale': a likert probe needs its scale, e.g. "
            problems.append((("scale",), message + _SCALE_EXAMPLE, (".kind",)))
        rest = {key: value for key, value in data.items() if key not in stray}
        return with_problems(handler, rest, problems)  # a stray key's one issue is its place


class RegenerationEntry(SchemaModel):
    """The regeneration test: at chosen turns, redraw the agents' next utterance M times."""

    turns: RegenerationTurns
    """Utterances redrawn, in [1, dialogue.turns] or counted from the end (-1: the last)."""
    samples: Annotated[int, Field(ge=2)]
    """Regenerations per agent and turn (M)."""
    agents: RegenerationAgents | None = None
    """Agents whose utterances are regenerated (default: all)."""


class ProjectionsSpec(Section):
    """Vectors whose projections of the agents' activations are recorded (``[projections]``)."""

    vectors: Annotated[Array[ExistingFile], Unique("vector")] = ()
    """Persona-vector files, relative to the scenario file."""
    axis: ExistingFile | None = None
    """An assistant-axis file, relative to the scenario file."""


class ScenarioFile(SchemaModel):
    """A scenario file: the model, the simulacra, the agents, the dialogue and what is measured."""

    seed: Annotated[int, Field(ge=0)] = 0
    """Base random seed."""
    model: Annotated[ModelSpec, Expect(missing=_MISSING_MODEL)]
    """Which model to run."""
    simulacra: Annotated[
        Array[SimulacrumEntry],
        Field(min_length=2),
        Unique("simulacrum name", "name"),
        Expect(
            missing="missing simulacra: at least 2 simulacra are required ([[simulacra]] tables)",
            size="at least 2 simulacra are required, got {got}",
        ),
    ]
    """The candidate personas (at least 2)."""
    agents: Annotated[
        Array[AgentEntry],
        Field(min_length=1),
        Expect(
            missing="missing agents: at least one agent is required (an [[agents]] table)",
            size="at least one agent is required (an [[agents]] table)",
        ),
    ]
    """The agents (at least 1)."""
    dialogue: DialogueSpec = Field(DialogueSpec(), validate_default=True)
    """How the conversation runs."""
    belief: BeliefSpec = BeliefSpec()
    """How agents update their beliefs."""
    probes: Annotated[Array[ProbeEntry], Unique("probe name", "name")] = ()
    """Questions put to agents at chosen turns."""
    regeneration: RegenerationEntry | None = None
    """The regeneration test."""
    projections: ProjectionsSpec | None = None
    """Vectors to project the agents' activations on."""

    @field_validator("simulacra")
    @classmethod
    def _remember_simulacra(
        cls, simulacra: tuple[SimulacrumEntry, ...], info: ValidationInfo
    ) -> Any:
        facts(info)["simulacra"] = simulacra
        return simulacra

    @field_validator("agents")
    @classmethod
    def _expand_agents(cls, agents: tuple[AgentEntry, ...], info: ValidationInfo) -> Any:
        owner: dict[str, tuple[int, AgentEntry]] = {}
        problems: list[Problem] = []
        for index, entry in enumerate(agents):
            names = expand(entry.name, entry.count)
            clash = next((name for name in names if name in owner), None)
            if clash is None:
                owner.update((name, (index, entry)) for name in names)
                continue
            other, first = owner[clash]
            detail = f"also agents[{other}]"
            if first.name != entry.name and first.count > 1:
                detail = f"agents[{other}] with count = {first.count} also makes {quote(clash)}"
            message = f"duplicate agent name {quote(clash)} ({detail})"
            problems.append(((index, "name"), message, (".count",)))
        fail(problems)
        groups = {e.name: expand(e.name, e.count) for e in agents if e.count > 1}
        facts(info).update(agents={n: e for n, (_, e) in owner.items()}, groups=groups)
        return agents

    @field_validator("dialogue")
    @classmethod
    def _dialogue(cls, dialogue: DialogueSpec, info: ValidationInfo) -> DialogueSpec:
        known = facts(info)
        known["turns"] = dialogue.turns
        if dialogue.opening_speaker in known.get("agents", {}):
            message = (
                f"opening speaker {quote(dialogue.opening_speaker)} is also the name of an agent"
            )
            fail([(("opening_speaker",), message, ("agents",))])
        return dialogue
