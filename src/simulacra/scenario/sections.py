"""Validating each section of a scenario file into its spec.

One parser per section (``[model]``, ``[[simulacra]]``, ``[[agents]]``,
``[dialogue]``, ``[belief]``, ``[[probes]]``, ``[regeneration]``). Each records
every problem it finds in the shared :class:`~simulacra.scenario.parsing.Issues`
and returns its spec, or :data:`~simulacra.scenario.parsing.INVALID`. Sections
that depend on others (agents on the simulacra, probes on the agents and the
number of turns) receive what those sections could establish, even when they
are partly invalid, so that their own checks still run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from simulacra.instruments.likert import MAX_POINTS
from simulacra.scenario.parsing import (
    INVALID,
    Issues,
    Parser,
    check_table,
    check_tables,
    describe,
    first_index,
    get_field,
    join_path,
    parse_array,
    parse_choice,
    parse_float,
    parse_int,
    parse_string,
    parse_unit_interval,
    quote,
    unknown_name,
)
from simulacra.scenario.schema import (
    AGENT_KEYS,
    BELIEF_KEYS,
    DIALOGUE_KEYS,
    MIN_N_CTX,
    MODEL_KEYS,
    NORMALIZATIONS,
    NUMERIC_KEYS,
    OBSERVATIONS,
    PERSONA_MODES,
    PROBE_KEYS,
    PROBE_KINDS,
    PROBE_PERSONAS,
    REGENERATION_KEYS,
    SCALE_KEYS,
    SIMULACRUM_KEYS,
    AgentSpec,
    BeliefSpec,
    DialogueSpec,
    ModelSpec,
    NumericSpec,
    ProbeSpec,
    RegenerationSpec,
    ScaleSpec,
    resolve_turn,
    scheduler_names,
)
from simulacra.simulation.simulacrum import Simulacrum

__all__ = [
    "AgentInfo",
    "SimulacraInfo",
    "parse_agents",
    "parse_belief",
    "parse_dialogue",
    "parse_model",
    "parse_probes",
    "parse_regeneration",
    "parse_simulacra",
]

_MISSING_MODEL = "missing model: set model.name (a registry name) or model.path (a GGUF file)"


def parse_model(data: Mapping[str, Any], issues: Issues) -> Any:
    """Parse the ``[model]`` table."""
    if "model" not in data:
        issues.add("model", _MISSING_MODEL)
        return INVALID
    table = check_table(data["model"], "model", issues, keys=MODEL_KEYS)
    if table is INVALID:
        return INVALID
    text = partial(parse_string, nonempty=True)
    values = {
        "name": get_field(table, "name", "model", issues, text, None),
        "path": get_field(table, "path", "model", issues, text, None),
        "n_ctx": get_field(
            table, "n_ctx", "model", issues, partial(parse_int, minimum=MIN_N_CTX), None
        ),
        "n_threads": get_field(
            table, "n_threads", "model", issues, partial(parse_int, minimum=1), None
        ),
        "n_gpu_layers": get_field(
            table, "n_gpu_layers", "model", issues, partial(parse_int, minimum=-1), 0
        ),
    }
    if "name" not in table and "path" not in table:
        issues.add("model", _MISSING_MODEL)
        return INVALID
    if "name" in table and "path" in table:
        issues.add("model", "give either model.name or model.path, not both")
        return INVALID
    if any(value is INVALID for value in values.values()):
        return INVALID
    return ModelSpec(**values)


@dataclass
class SimulacraInfo:
    """What later sections need to know about the simulacra, even if some are invalid."""

    items: Any  # tuple[Simulacrum, ...] or INVALID
    names: list[str]
    tags: dict[str, list[str]]
    known: bool  # False when the array itself is missing or malformed


def parse_simulacra(data: Mapping[str, Any], issues: Issues) -> SimulacraInfo:
    """Parse the ``[[simulacra]]`` array."""
    need = "at least 2 simulacra are required"
    if "simulacra" not in data:
        issues.add("simulacra", f"missing simulacra: {need} ([[simulacra]] tables)")
        return SimulacraInfo(INVALID, [], {}, known=False)
    tables = check_tables(data["simulacra"], "simulacra", issues, keys=SIMULACRUM_KEYS)
    if tables is INVALID:
        return SimulacraInfo(INVALID, [], {}, known=False)
    if len(tables) < 2:
        issues.add("simulacra", f"{need}, got {len(tables)}")
    names: list[str] = []
    tags: dict[str, list[str]] = {}
    items: list[Simulacrum] = []
    valid = len(tables) >= 2
    for index, table in enumerate(tables):
        path = f"simulacra[{index}]"
        if table is INVALID:
            valid = False
            continue
        name = get_field(table, "name", path, issues, partial(parse_string, name=True))
        description = get_field(
            table, "description", path, issues, partial(parse_string, nonempty=True)
        )
        tag_list = get_field(table, "tags", path, issues, _tag_list, [])
        if name is not INVALID:
            if name in names:
                other = first_index(names, name)
                issues.add(
                    f"{path}.name",
                    f"duplicate simulacrum name {quote(name)} (also simulacra[{other}])",
                )
                name = INVALID
            else:
                names.append(name)
        if INVALID in (name, description, tag_list):
            valid = False
            continue
        for tag in tag_list:
            tags.setdefault(tag, []).append(name)
        items.append(Simulacrum(name, description, tuple(tag_list)))
    return SimulacraInfo(tuple(items) if valid else INVALID, names, tags, known=True)


def _tag_list(value: Any, path: str, issues: Issues) -> Any:
    """Parse a list of distinct tag names."""
    tags = parse_array(value, path, issues, item=partial(parse_string, name=True))
    if tags is INVALID:
        return INVALID
    for index, tag in enumerate(tags):
        if tag in tags[:index]:
            issues.add(f"{path}[{index}]", f"duplicate tag {quote(tag)}")
            return INVALID
    return tags


def parse_dialogue(data: Mapping[str, Any], issues: Issues) -> Any:
    """Parse the optional ``[dialogue]`` table."""
    table = check_table(data.get("dialogue", {}), "dialogue", issues, keys=DIALOGUE_KEYS)
    if table is INVALID:
        return INVALID
    default = DialogueSpec()

    def get(key: str, parse: Parser) -> Any:
        return get_field(table, key, "dialogue", issues, parse, getattr(default, key))

    values = {
        "opening": get("opening", parse_string),
        "opening_speaker": get("opening_speaker", partial(parse_string, nonempty=True)),
        "turns": get("turns", partial(parse_int, minimum=1)),
        "scheduler": get("scheduler", partial(parse_choice, choices=scheduler_names())),
        "max_tokens": get("max_tokens", partial(parse_int, minimum=1)),
        "temperature": get("temperature", partial(parse_float, minimum=0.0)),
        "top_p": get("top_p", parse_unit_interval),
    }
    if any(value is INVALID for value in values.values()):
        return INVALID
    return DialogueSpec(**values)


def parse_belief(data: Mapping[str, Any], issues: Issues) -> Any:
    """Parse the optional ``[belief]`` table."""
    table = check_table(data.get("belief", {}), "belief", issues, keys=BELIEF_KEYS)
    if table is INVALID:
        return INVALID
    default = BeliefSpec()

    def get(key: str, parse: Parser) -> Any:
        return get_field(table, key, "belief", issues, parse, getattr(default, key))

    values = {
        "beta": get("beta", partial(parse_float, minimum=0.0)),
        "normalize": get("normalize", partial(parse_choice, choices=NORMALIZATIONS)),
        "observe": get("observe", partial(parse_choice, choices=OBSERVATIONS)),
    }
    if any(value is INVALID for value in values.values()):
        return INVALID
    return BeliefSpec(**values)


def _weights(
    value: Any, path: str, issues: Issues, *, kind: str, known: Sequence[str] | None
) -> Any:
    """Parse a table of non-negative weights by name (checked against ``known``)."""
    if not isinstance(value, Mapping):
        issues.add(path, f"expected a table of weights by {kind}, got {describe(value)}")
        return INVALID
    weights: dict[str, float] = {}
    valid = True
    for key, raw in value.items():
        where = join_path(path, key)
        if known is not None and key not in known:
            issues.add(where, unknown_name(kind, key, known))
            valid = False
            continue
        weight = parse_float(raw, where, issues, minimum=0.0, what="weight")
        if weight is INVALID:
            valid = False
            continue
        weights[key] = weight
    if not valid:
        return INVALID
    if sum(weights.values()) <= 0:
        empty = " (the table is empty)" if not weights else ""
        issues.add(path, f"weights must sum to > 0{empty}")
        return INVALID
    return weights


def _resolve_prior(table: Mapping[str, Any], path: str, sim: SimulacraInfo, issues: Issues) -> Any:
    """Resolve an agent's prior to weights by simulacrum name, in scenario order."""
    if "prior" in table and "prior_tags" in table:
        issues.add(f"{path}.prior_tags", "give either prior or prior_tags, not both")
        return INVALID
    if "prior" in table:
        known = sim.names if sim.known else None
        weights = _weights(table["prior"], f"{path}.prior", issues, kind="simulacrum", known=known)
        if weights is INVALID or not sim.known:
            return INVALID
        return {name: weights[name] for name in sim.names if name in weights}
    if "prior_tags" in table:
        known = list(sim.tags) if sim.known else None
        weights = _weights(
            table["prior_tags"], f"{path}.prior_tags", issues, kind="tag", known=known
        )
        if weights is INVALID or not sim.known:
            return INVALID
        spread: dict[str, float] = {}
        for tag, weight in weights.items():
            members = sim.tags[tag]
            for name in members:
                spread[name] = spread.get(name, 0.0) + weight / len(members)
        return {name: spread[name] for name in sim.names if name in spread}
    if not sim.known:
        return INVALID
    return dict.fromkeys(sim.names, 1.0)


@dataclass
class AgentInfo:
    """What probes need to know about the agents, even if some are invalid."""

    items: Any  # tuple[AgentSpec, ...] or INVALID
    names: list[str]  # expanded names
    groups: dict[str, list[str]]  # base name -> expanded names, for count > 1
    known: bool


def _expand(name: str, count: int) -> list[str]:
    """Expand an agent name: ``name`` for one, ``name_1`` .. ``name_n`` for several."""
    return [name] if count == 1 else [f"{name}_{k}" for k in range(1, count + 1)]


def parse_agents(data: Mapping[str, Any], sim: SimulacraInfo, issues: Issues) -> AgentInfo:
    """Parse the ``[[agents]]`` array, expanded by count."""
    need = "at least one agent is required (an [[agents]] table)"
    if "agents" not in data:
        issues.add("agents", f"missing agents: {need}")
        return AgentInfo(INVALID, [], {}, known=False)
    tables = check_tables(data["agents"], "agents", issues, keys=AGENT_KEYS)
    if tables is INVALID:
        return AgentInfo(INVALID, [], {}, known=False)
    if not tables:
        issues.add("agents", need)
    valid = bool(tables)
    items: list[AgentSpec] = []
    names: list[str] = []
    owner: dict[str, tuple[int, str, int]] = {}  # expanded -> (index, base, count)
    groups: dict[str, list[str]] = {}
    for index, table in enumerate(tables):
        path = f"agents[{index}]"
        if table is INVALID:
            valid = False
            continue
        name = get_field(table, "name", path, issues, partial(parse_string, name=True))
        count = get_field(table, "count", path, issues, partial(parse_int, minimum=1), 1)
        persona = get_field(
            table, "persona", path, issues, partial(parse_choice, choices=PERSONA_MODES), "sample"
        )
        assigned = get_field(
            table, "assigned", path, issues, partial(parse_string, nonempty=True), None
        )
        prior = _resolve_prior(table, path, sim, issues)
        if persona is not INVALID and assigned is not INVALID:
            assigned = _check_assigned(table, path, persona, assigned, prior, sim, issues)
        expanded = _expanded_names(index, name, count, owner, issues)
        if expanded is not INVALID:
            names.extend(expanded)
            if count > 1:
                groups[name] = expanded
        if INVALID in (name, count, persona, assigned, prior, expanded):
            valid = False
            continue
        items.extend(AgentSpec(agent, persona, assigned, dict(prior)) for agent in expanded)
    return AgentInfo(tuple(items) if valid else INVALID, names, groups, known=True)


def _check_assigned(
    table: Mapping[str, Any],
    path: str,
    persona: str,
    assigned: str | None,
    prior: Any,
    sim: SimulacraInfo,
    issues: Issues,
) -> Any:
    """Check ``assigned`` against ``persona`` and the support; return it or INVALID."""
    where = f"{path}.assigned"
    related = (f"{path}.persona",)
    if persona != "fixed":
        if assigned is not None:
            message = (
                f"'assigned' is only allowed with persona = 'fixed' (persona is {quote(persona)})"
            )
            issues.add(where, message, related)
            return INVALID
        return None
    if assigned is None:
        issues.add(
            where, "persona = 'fixed' requires 'assigned' (the simulacrum the agent plays)", related
        )
        return INVALID
    if sim.known and assigned not in sim.names:
        issues.add(where, unknown_name("simulacrum", assigned, sim.names))
        return INVALID
    if prior is not INVALID and assigned not in prior:
        support = ", ".join(map(quote, prior))
        issues.add(
            where,
            f"assigned simulacrum {quote(assigned)} is not in the agent's support ({support})",
            (f"{path}.prior", f"{path}.prior_tags"),
        )
        return INVALID
    return assigned


def _expanded_names(
    index: int, name: Any, count: Any, owner: dict[str, tuple[int, str, int]], issues: Issues
) -> Any:
    """Expand ``agents[index]`` by count and check the names are new; record them in ``owner``."""
    if name is INVALID or count is INVALID:
        return INVALID
    path = f"agents[{index}]"
    expanded = _expand(name, count)
    for agent in expanded:
        if agent in owner:
            other, base, other_count = owner[agent]
            if base == name:
                detail = f"also agents[{other}]"
            elif other_count > 1:
                detail = f"agents[{other}] with count = {other_count} also makes {quote(agent)}"
            else:
                detail = f"also agents[{other}]"
            where = f"{path}.name"
            issues.add(where, f"duplicate agent name {quote(agent)} ({detail})", (f"{path}.count",))
            return INVALID
    for agent in expanded:
        owner[agent] = (index, name, count)
    return expanded


def parse_probes(
    data: Mapping[str, Any], agents: AgentInfo, turns: int | None, issues: Issues
) -> Any:
    """Parse the optional ``[[probes]]`` array."""
    if "probes" not in data:
        return ()
    tables = check_tables(data["probes"], "probes", issues, keys=PROBE_KEYS)
    if tables is INVALID:
        return INVALID
    probes: list[ProbeSpec] = []
    names: list[str] = []
    valid = True
    for index, table in enumerate(tables):
        path = f"probes[{index}]"
        if table is INVALID:
            valid = False
            continue
        name = get_field(table, "name", path, issues, partial(parse_string, name=True))
        if name is not INVALID:
            if name in names:
                other = first_index(names, name)
                issues.add(
                    f"{path}.name", f"duplicate probe name {quote(name)} (also probes[{other}])"
                )
                name = INVALID
            else:
                names.append(name)
        kind = get_field(
            table, "kind", path, issues, partial(parse_choice, choices=PROBE_KINDS), "choice"
        )
        question = get_field(table, "question", path, issues, partial(parse_string, nonempty=True))
        answers = _probe_answers(table, path, kind, issues)
        probe_turns = get_field(table, "turns", path, issues, partial(_turns, last=turns))
        default_agents = tuple(agents.names) if agents.known else INVALID
        probed = get_field(
            table, "agents", path, issues, partial(_probe_agents, agents=agents), default_agents
        )
        persona = get_field(
            table, "persona", path, issues, partial(parse_choice, choices=PROBE_PERSONAS), "map"
        )
        if kind == "numeric" and persona == "mixture":
            issues.add(
                f"{path}.persona",
                "persona = 'mixture' needs answer probabilities, and a numeric probe's answer "
                "is one sampled reply; use 'map' or 'sample'",
                (f"{path}.kind",),
            )
            persona = INVALID
        values = (name, kind, question, answers, probe_turns, probed, persona)
        if INVALID in values:
            valid = False
            continue
        options, scale, numeric = answers
        resolved, written = probe_turns
        probes.append(
            ProbeSpec(
                name,
                question,
                options,
                resolved,
                probed,
                persona,
                kind=kind,
                scale=scale,
                numeric=numeric,
                written_turns=written,
            )
        )
    return tuple(probes) if valid else INVALID


_KIND_KEYS = {"options": "choice", "scale": "likert", "numeric": "numeric"}
"""The probe keys that belong to one kind of probe."""

_SCALE_EXAMPLE = 'scale = {points = 5, low = "not at all", high = "completely"}'


def _probe_answers(table: Mapping[str, Any], path: str, kind: Any, issues: Issues) -> Any:
    """Parse what a probe's kind needs: ``(options, scale, numeric)``, or INVALID."""
    if kind is INVALID:
        return INVALID
    mismatched = [
        (key, owner) for key, owner in _KIND_KEYS.items() if key in table and owner != kind
    ]
    for key, owner in mismatched:
        given = "" if "kind" in table else ", the default"
        issues.add(
            join_path(path, key),
            f"{quote(key)} is only for kind = {quote(owner)} probes "
            f"(this probe's kind is {quote(kind)}{given}; set kind = {quote(owner)} "
            f"or remove {quote(key)})",
            (f"{path}.kind",),
        )
    if mismatched:
        return INVALID
    options: Any = ()
    scale: Any = None
    numeric: Any = None
    if kind == "choice":
        if "options" not in table:
            issues.add(
                f"{path}.options",
                "missing required key 'options': a choice probe lists at least 2 answers "
                "(or set kind = 'likert' or 'numeric')",
            )
            return INVALID
        options = _options(table["options"], f"{path}.options", issues)
    elif kind == "likert":
        if "scale" not in table:
            issues.add(
                f"{path}.scale",
                f"missing required key 'scale': a likert probe needs its scale, e.g. "
                f"{_SCALE_EXAMPLE}",
                (f"{path}.kind",),
            )
            return INVALID
        scale = _scale(table["scale"], f"{path}.scale", issues)
    else:
        numeric = _numeric(table.get("numeric", {}), f"{path}.numeric", issues)
    if INVALID in (options, scale, numeric):
        return INVALID
    return tuple(options), scale, numeric


def _options(value: Any, path: str, issues: Issues) -> Any:
    """Parse at least two distinct, non-empty answer options."""
    options = parse_array(value, path, issues, item=partial(parse_string, nonempty=True))
    if options is INVALID:
        return INVALID
    if len(options) < 2:
        issues.add(path, f"need at least 2 options, got {len(options)}")
        return INVALID
    for index, option in enumerate(options):
        if option in options[:index]:
            issues.add(f"{path}[{index}]", f"duplicate option {quote(option)}")
            return INVALID
    return options


def _scale(value: Any, path: str, issues: Issues) -> Any:
    """Parse a Likert scale table ``{points, low, high}``."""
    if not isinstance(value, Mapping):
        issues.add(path, f"expected a table like {_SCALE_EXAMPLE}, got {describe(value)}")
        return INVALID
    table = check_table(value, path, issues, keys=SCALE_KEYS)
    if any(key not in SCALE_KEYS for key in table):
        return INVALID  # a misspelt key is reported once, not again as missing
    points = get_field(table, "points", path, issues, partial(parse_int, minimum=2))
    if points is not INVALID and points > MAX_POINTS:
        issues.add(f"{path}.points", f"must be <= {MAX_POINTS}, got {points}")
        points = INVALID
    low = get_field(table, "low", path, issues, partial(parse_string, nonempty=True))
    high = get_field(table, "high", path, issues, partial(parse_string, nonempty=True))
    if INVALID in (points, low, high):
        return INVALID
    return ScaleSpec(points, low, high)


def _numeric(value: Any, path: str, issues: Issues) -> Any:
    """Parse a numeric probe's optional settings table ``{unit, max_tokens, temperature}``."""
    table = check_table(value, path, issues, keys=NUMERIC_KEYS)
    if table is INVALID:
        return INVALID
    default = NumericSpec()
    values = {
        "unit": get_field(table, "unit", path, issues, parse_string, default.unit),
        "max_tokens": get_field(
            table, "max_tokens", path, issues, partial(parse_int, minimum=1), default.max_tokens
        ),
        "temperature": get_field(
            table,
            "temperature",
            path,
            issues,
            partial(parse_float, minimum=0.0),
            default.temperature,
        ),
    }
    if INVALID in values.values() or any(key not in NUMERIC_KEYS for key in table):
        return INVALID
    return NumericSpec(**values)


def _turns(value: Any, path: str, issues: Issues, *, last: int | None, first: int = 0) -> Any:
    """Parse turns in ``[first, last]``, negative ones counted back from the end.

    ``-1`` is turn ``last`` (``dialogue.turns``), ``-2`` the one before, down to
    ``first``. Two entries that resolve to the same turn are an error.

    Returns:
        ``(resolved, written)``: the sorted, distinct resolved turns and the turns
        as written, in the same order; INVALID on any problem (also when
        ``last`` is unknown because ``[dialogue]`` is invalid).

    """
    turns = parse_array(value, path, issues, item=partial(parse_int))
    if turns is INVALID:
        return INVALID
    if not turns:
        issues.add(path, "must list at least one turn")
        return INVALID
    if last is None:
        return INVALID
    span = last + 1 - first
    valid = True
    seen: dict[int, int] = {}  # resolved turn -> the written turn that gave it
    for index, turn in enumerate(turns):
        where = f"{path}[{index}]"
        resolved = resolve_turn(turn, last)
        if turn > last or 0 <= turn < first:
            message = f"turn {turn} is outside [{first}, {last}] (dialogue.turns = {last})"
            issues.add(where, message, ("dialogue.turns",))
            valid = False
        elif resolved < first:
            message = (
                f"turn {turn} is outside [{-span}, -1], the turns counted from the end "
                f"(-1 is turn {last}, {-span} is turn {first}; dialogue.turns = {last})"
            )
            issues.add(where, message, ("dialogue.turns",))
            valid = False
        elif resolved in seen:
            other = seen[resolved]
            if other == turn:
                issues.add(where, f"duplicate turn {turn}")
            else:
                issues.add(
                    where,
                    f"duplicate turn: {turn} and {other} are both turn {resolved} "
                    f"(dialogue.turns = {last})",
                    ("dialogue.turns",),
                )
            valid = False
        else:
            seen[resolved] = turn
    if not valid:
        return INVALID
    order = sorted(seen)
    return tuple(order), tuple(seen[turn] for turn in order)


def _probe_agents(
    value: Any, path: str, issues: Issues, *, agents: AgentInfo, verb: str = "probe"
) -> Any:
    """Resolve probed agent names (base names of counted agents expand), deduplicated."""
    given = parse_array(value, path, issues, item=partial(parse_string, nonempty=True))
    if given is INVALID:
        return INVALID
    if not given:
        issues.add(path, f"must list at least one agent (leave it out to {verb} all agents)")
        return INVALID
    if not agents.known:
        return INVALID
    resolved: list[str] = []
    valid = True
    for index, name in enumerate(given):
        if name in agents.groups:
            resolved.extend(agents.groups[name])
        elif name in agents.names:
            resolved.append(name)
        else:
            candidates = [*agents.names, *agents.groups]
            issues.add(f"{path}[{index}]", unknown_name("agent", name, candidates), ("agents",))
            valid = False
    return tuple(dict.fromkeys(resolved)) if valid else INVALID


def parse_regeneration(
    data: Mapping[str, Any], agents: AgentInfo, turns: int | None, issues: Issues
) -> Any:
    """Parse the optional ``[regeneration]`` table (None when absent)."""
    if "regeneration" not in data:
        return None
    path = "regeneration"
    table = check_table(data[path], path, issues, keys=REGENERATION_KEYS)
    if table is INVALID:
        return INVALID
    regen_turns = get_field(table, "turns", path, issues, partial(_turns, last=turns, first=1))
    samples = get_field(table, "samples", path, issues, partial(parse_int, minimum=2))
    default_agents = tuple(agents.names) if agents.known else INVALID
    chosen = get_field(
        table,
        "agents",
        path,
        issues,
        partial(_probe_agents, agents=agents, verb="regenerate"),
        default_agents,
    )
    if INVALID in (regen_turns, samples, chosen):
        return INVALID
    resolved, written = regen_turns
    return RegenerationSpec(resolved, samples, tuple(chosen), written_turns=written)
