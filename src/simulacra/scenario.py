"""A scenario: the validated description of one simulation, and how to load it.

A scenario file (TOML, schema in ``docs/architecture.md``) names the model, the
candidate simulacra, the agents with their priors over those simulacra, the
dialogue settings, the belief update, the probes and, optionally, the turns at
which utterances are regenerated (the regeneration test).  :func:`load_scenario`
reads one, applies command-line ``--set key=value`` overrides and validates it
into frozen dataclasses; every problem found is collected and reported at once
in a single :class:`~simulacra.errors.ScenarioError`, each with the file, the
dotted path of the field and what was expected.

The resolved :class:`Scenario` is fully explicit: agents are expanded by
``count`` (``alice_1`` .. ``alice_n``), priors are resolved to weights by
simulacrum name (tag priors expanded, uniform priors written out), and probes
list their agents by expanded name.  :meth:`Scenario.to_dict` gives that
resolved form as a plain dict in the shape of the TOML file, which
:func:`parse_scenario` turns back into an equal scenario.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.scheduling import scheduler_names
from simulacra.simulacrum import Simulacrum

__all__ = [
    "MIN_N_CTX",
    "NORMALIZATIONS",
    "OBSERVATIONS",
    "PERSONA_MODES",
    "PROBE_PERSONAS",
    "SCHEDULERS",
    "AgentSpec",
    "BeliefSpec",
    "DialogueSpec",
    "ModelSpec",
    "Overrides",
    "ProbeSpec",
    "RegenerationSpec",
    "Scenario",
    "apply_overrides",
    "format_errors",
    "load_scenario",
    "parse_override",
    "parse_override_value",
    "parse_scenario",
]

PersonaMode: TypeAlias = Literal["sample", "map", "fixed"]
ProbePersona: TypeAlias = Literal["map", "sample", "mixture"]
SchedulerName: TypeAlias = Literal["round_robin", "random", "addressed"]
Normalization: TypeAlias = Literal["none", "per_token"]
Observation: TypeAlias = Literal["self", "all"]

PERSONA_MODES: tuple[str, ...] = get_args(PersonaMode)
PROBE_PERSONAS: tuple[str, ...] = get_args(ProbePersona)
SCHEDULERS: tuple[str, ...] = get_args(SchedulerName)
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
OBSERVATIONS: tuple[str, ...] = get_args(Observation)

MIN_N_CTX = 256
"""Smallest context size accepted for ``model.n_ctx``."""

Overrides: TypeAlias = Mapping[str, object] | Sequence[str] | None
"""Overrides: a mapping of dotted key to value, or ``"key=value"`` strings."""

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_KEY_SEGMENT = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class ModelSpec:
    """Which model to run: a registry name or a GGUF path (exactly one).

    Attributes:
        name: Registry name of an embedded model, e.g. ``"smollm2-135m-instruct"``.
        path: Path of a GGUF file.
        n_ctx: Context size in tokens; None for the engine's default.
        n_threads: CPU threads; None for all cores.

    """

    name: str | None = None
    path: str | None = None
    n_ctx: int | None = None
    n_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the set fields as a plain dict (TOML has no null)."""
        fields = {"name": self.name, "path": self.path, "n_ctx": self.n_ctx}
        fields["n_threads"] = self.n_threads
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


@dataclass(frozen=True)
class ProbeSpec:
    """A forced-choice question put to agents at chosen turns.

    Attributes:
        name: Unique probe name.
        question: The question asked.
        options: At least two distinct answers.
        turns: Sorted, distinct turns after which the probe is taken (0 = before
            the first utterance).
        agents: Expanded names of the agents probed.
        persona: Which persona answers: ``"map"``, ``"sample"`` or
            ``"mixture"`` (posterior-weighted mixture over the support).

    """

    name: str
    question: str
    options: tuple[str, ...]
    turns: tuple[int, ...]
    agents: tuple[str, ...]
    persona: ProbePersona = "map"

    def to_dict(self) -> dict[str, Any]:
        """Return the probe as a plain dict in the shape of a ``[[probes]]`` table."""
        return {
            "name": self.name,
            "question": self.question,
            "options": list(self.options),
            "turns": list(self.turns),
            "agents": list(self.agents),
            "persona": self.persona,
        }


@dataclass(frozen=True)
class RegenerationSpec:
    """The regeneration test: at chosen turns, redraw an agent's next utterance M times.

    Before the utterance of each listed turn is played, every listed agent's next
    utterance is regenerated ``samples`` times from the same dialogue state (the
    dialogue itself is unchanged); each regeneration is labelled by its most likely
    simulacrum (see :mod:`simulacra.analysis.regeneration`).

    Attributes:
        turns: Sorted, distinct turns in ``[1, dialogue.turns]``; turn ``t`` redraws
            the ``t``-th utterance from the state after ``t - 1`` utterances.
        samples: Regenerations per agent and turn (>= 2).
        agents: Expanded names of the agents whose utterances are regenerated.

    """

    turns: tuple[int, ...]
    samples: int
    agents: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict in the shape of ``[regeneration]``."""
        return {"turns": list(self.turns), "samples": self.samples, "agents": list(self.agents)}


@dataclass(frozen=True)
class Scenario:
    """A validated, fully resolved scenario.

    Attributes:
        seed: Base random seed (>= 0).
        model: Which model to run.
        simulacra: The candidate personas, in file order.
        agents: The agents, expanded by ``count``, in file order.
        dialogue: Conversation settings.
        belief: Belief-update settings.
        probes: Probes, in file order.
        regeneration: The regeneration test, or None when the scenario has none.
        source: Where the scenario came from (a file path); not part of equality.

    """

    seed: int
    model: ModelSpec
    simulacra: tuple[Simulacrum, ...]
    agents: tuple[AgentSpec, ...]
    dialogue: DialogueSpec = field(default_factory=DialogueSpec)
    belief: BeliefSpec = field(default_factory=BeliefSpec)
    probes: tuple[ProbeSpec, ...] = ()
    regeneration: RegenerationSpec | None = None
    source: str = field(default="<scenario>", compare=False)

    @property
    def simulacrum_names(self) -> tuple[str, ...]:
        """Names of the simulacra, in file order."""
        return tuple(sim.name for sim in self.simulacra)

    @property
    def agent_names(self) -> tuple[str, ...]:
        """Expanded agent names, in file order."""
        return tuple(agent.name for agent in self.agents)

    def simulacrum(self, name: str) -> Simulacrum:
        """Return the simulacrum called ``name``.

        Raises:
            KeyError: If there is none.

        """
        for sim in self.simulacra:
            if sim.name == name:
                return sim
        raise KeyError(name)

    def agent(self, name: str) -> AgentSpec:
        """Return the agent called ``name`` (an expanded name).

        Raises:
            KeyError: If there is none.

        """
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the resolved scenario as a plain, JSON-able dict shaped like the TOML.

        Agents appear expanded (no ``count``) with explicit ``prior`` weights, probes
        and the regeneration test with explicit ``agents``; ``regeneration`` is left
        out when there is none. ``parse_scenario(s.to_dict(), s.source) == s``.
        """
        data = {
            "seed": self.seed,
            "model": self.model.to_dict(),
            "simulacra": [
                {"name": sim.name, "description": sim.description, "tags": list(sim.tags)}
                for sim in self.simulacra
            ],
            "agents": [agent.to_dict() for agent in self.agents],
            "dialogue": self.dialogue.to_dict(),
            "belief": self.belief.to_dict(),
            "probes": [probe.to_dict() for probe in self.probes],
        }
        if self.regeneration is not None:
            data["regeneration"] = self.regeneration.to_dict()
        return data

    def with_overrides(self, overrides: Overrides) -> Scenario:
        """Return a new, re-validated scenario with ``overrides`` applied.

        Keys address the resolved form of :meth:`to_dict`: agents are already
        expanded, so ``agents[i]`` is the i-th expanded agent.

        Args:
            overrides: Dotted keys to values, or ``"key=value"`` strings.

        Raises:
            ScenarioError: If an override or the resulting scenario is invalid.

        """
        return _build(self.to_dict(), self.source, overrides)


# --------------------------------------------------------------------------- public API


def load_scenario(path: str | os.PathLike[str], overrides: Overrides = None) -> Scenario:
    """Read, override and validate a scenario file.

    Args:
        path: The TOML file.
        overrides: A mapping of dotted key to value (``{"belief.beta": 0.5}``) or
            command-line ``"key=value"`` strings (values parsed as TOML).

    Returns:
        The validated scenario, with ``source`` set to ``str(path)``.

    Raises:
        ScenarioError: With every problem found: unreadable file, invalid TOML,
            bad overrides, or invalid content.

    """
    source = os.fspath(path)
    data = _read_toml(Path(source), source)
    return _build(data, source, overrides)


def parse_scenario(
    data: Mapping[str, Any], source: str = "<scenario>", overrides: Overrides = None
) -> Scenario:
    """Validate a scenario given as a dict (as read from TOML).

    Args:
        data: The raw scenario.
        source: Where it came from, used in error messages.
        overrides: Optional overrides, as for :func:`load_scenario`.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: With every problem found.

    """
    return _build(data, source, overrides)


def apply_overrides(
    data: Mapping[str, Any], overrides: Overrides, *, source: str = "--set"
) -> dict[str, Any]:
    """Return a deep copy of ``data`` with overrides applied; ``data`` is untouched.

    Keys are dotted paths with optional list indices (``dialogue.turns``,
    ``agents[1].prior.pirate``) and must exist in the scenario schema; missing
    tables on the way are created, list indices must exist.

    Args:
        data: A raw scenario dict.
        overrides: Dotted keys to values, or ``"key=value"`` strings.
        source: Name used in error messages.

    Returns:
        The overridden copy (not validated).

    Raises:
        ScenarioError: If an override is malformed or its key path is invalid.

    """
    issues = _Issues(source)
    pairs = _override_pairs(overrides, issues)
    if not isinstance(data, Mapping):
        raise ScenarioError(ScenarioIssue(source, "", "expected a table at the top level"))
    result, _ = _apply(data, pairs, issues)
    if issues:
        raise issues.error({})
    return result


def parse_override(text: str) -> tuple[str, object]:
    """Split a command-line ``"key=value"`` override.

    Args:
        text: E.g. ``"dialogue.turns=4"`` or ``"agents[0].persona=map"``.

    Returns:
        The key and the value parsed by :func:`parse_override_value`.

    Raises:
        ScenarioError: If ``text`` has no ``=`` or an empty key.

    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        message = f"malformed override {_q(text)}: expected key=value, e.g. dialogue.turns=4"
        raise ScenarioError(ScenarioIssue("--set", "", message))
    return key, parse_override_value(raw.strip())


def parse_override_value(text: str) -> object:
    """Parse an override value as a TOML value, falling back to the raw string.

    Args:
        text: E.g. ``"4"``, ``"0.5"``, ``"true"``, ``"[0, 4]"``, ``"map"``.

    Returns:
        The TOML value, or ``text`` itself when it is not one.

    """
    try:
        parsed = tomllib.loads("v = " + text)
    except tomllib.TOMLDecodeError:
        return text
    return parsed["v"] if list(parsed) == ["v"] else text


def format_errors(err: ScenarioError) -> str:
    """Render a scenario error for the terminal: one ``error:`` line per issue.

    Args:
        err: The error to render.

    Returns:
        The text, without a trailing newline.

    """
    lines = [f"error: {issue}" for issue in err.issues]
    if len(err.issues) > 1:
        sources = ", ".join(dict.fromkeys(issue.source for issue in err.issues))
        lines.append(f"found {len(err.issues)} errors in {sources}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- issues


class _Invalid:
    """Marker for a value that failed validation (its issue is already recorded)."""

    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Any = _Invalid()
_REQUIRED: Any = object()


@dataclass
class _Issues:
    """Collects issues with the field paths they relate to."""

    source: str
    items: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def add(self, path: str, message: str, related: Iterable[str] = ()) -> None:
        """Record a problem at ``path``; ``related`` are other paths it depends on."""
        self.items.append((path, message, tuple(related)))

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self, origins: Mapping[str, str]) -> ScenarioError:
        """Build the error, noting the overrides (path -> text) behind each issue."""
        issues = []
        for path, message, related in self.items:
            texts = [
                text
                for key, text in origins.items()
                if any(_related_paths(key, p) for p in (path, *related) if p)
            ]
            if texts:
                message += " (with " + " ".join(f"--set {t}" for t in texts) + ")"
            issues.append(ScenarioIssue(self.source, path, message))
        return ScenarioError(issues)


def _related_paths(a: str, b: str) -> bool:
    """Tell whether one dotted path equals or contains the other."""
    return a == b or _is_under(a, b) or _is_under(b, a)


def _is_under(child: str, parent: str) -> bool:
    """Tell whether ``child`` is a strict descendant of ``parent``."""
    return child.startswith((parent + ".", parent + "["))


# --------------------------------------------------------------------------- formatting


def _q(text: str) -> str:
    """Quote a name for a message."""
    return f"'{text}'"


def _join(base: str, key: str) -> str:
    """Extend a dotted path with a key (quoted when not a bare name)."""
    segment = key if _NAME.fullmatch(key) else json.dumps(key)
    return f"{base}.{segment}" if base else segment


def _render_parts(parts: Sequence[str | int]) -> str:
    """Render key-path parts as a dotted path with ``[i]`` indices."""
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _describe(value: object) -> str:
    """Describe a value by TOML type and content, for 'got ...' messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        text = json.dumps(value)
        return f"string {text if len(text) <= 40 else text[:37] + '...'}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value}"


def _number_text(value: float) -> str:
    """Render a bound without a spurious ``.0``."""
    return f"{value:g}"


def _unknown(kind: str, word: str, candidates: Sequence[str]) -> str:
    """Message for an unknown name, suggesting the closest candidate."""
    message = f"unknown {kind} {_q(word)}"
    close = difflib.get_close_matches(word, list(candidates), n=1)
    if close:
        return f"{message}; did you mean {_q(close[0])}?"
    if candidates:
        return f"{message}; expected one of {', '.join(map(_q, candidates))}"
    return message


def _render_value(value: object) -> str:
    """Render an override value TOML-like, for '(with --set ...)' notes."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


# --------------------------------------------------------------------------- reading


def _read_toml(path: Path, source: str) -> dict[str, Any]:
    """Read and decode a TOML file, turning every failure into a ScenarioError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a scenario file"
    except PermissionError:
        message = "cannot read file: permission denied"
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
    else:
        try:
            return tomllib.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            message = f"not valid UTF-8 text (bad byte at offset {exc.start})"
        except tomllib.TOMLDecodeError as exc:
            message = f"invalid TOML: {exc}"
    raise ScenarioError(ScenarioIssue(source, "", message))


# --------------------------------------------------------------------------- overrides

_TOP_KEYS = (
    "seed",
    "model",
    "simulacra",
    "agents",
    "dialogue",
    "belief",
    "probes",
    "regeneration",
)
_MODEL_KEYS = ("name", "path", "n_ctx", "n_threads")
_SIMULACRUM_KEYS = ("name", "description", "tags")
_AGENT_KEYS = ("name", "count", "persona", "assigned", "prior", "prior_tags")
_DIALOGUE_KEYS = tuple(DialogueSpec().to_dict())
_BELIEF_KEYS = tuple(BeliefSpec().to_dict())
_PROBE_KEYS = ("name", "question", "options", "turns", "agents", "persona")
_REGENERATION_KEYS = ("turns", "samples", "agents")

_ANY_KEY = "*"
# A table is a dict of key -> schema (``*`` for free keys), an array a one-item
# list of its item's schema, a scalar None.
_SCHEMA: dict[str, Any] = {
    "seed": None,
    "model": dict.fromkeys(_MODEL_KEYS),
    "simulacra": [{"name": None, "description": None, "tags": [None]}],
    "agents": [
        dict.fromkeys(_AGENT_KEYS) | {"prior": {_ANY_KEY: None}, "prior_tags": {_ANY_KEY: None}}
    ],
    "dialogue": dict.fromkeys(_DIALOGUE_KEYS),
    "belief": dict.fromkeys(_BELIEF_KEYS),
    "probes": [dict.fromkeys(_PROBE_KEYS) | {"options": [None], "turns": [None], "agents": [None]}],
    "regeneration": dict.fromkeys(_REGENERATION_KEYS) | {"turns": [None], "agents": [None]},
}


def _override_pairs(overrides: Overrides, issues: _Issues) -> list[tuple[str, object, str]]:
    """Normalise overrides to (key, value, display text), recording malformed ones."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [(str(k), v, f"{k}={_render_value(v)}") for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    pairs = []
    for text in overrides:
        if not isinstance(text, str):
            issues.add("", f"malformed override {text!r}: expected a 'key=value' string")
            continue
        try:
            key, value = parse_override(text)
        except ScenarioError as exc:
            issues.add("", exc.issues[0].message)
            continue
        pairs.append((key, value, text.strip()))
    return pairs


def _parse_key_path(key: str) -> list[str | int] | None:
    """Split ``agents[1].prior.pirate`` into ``["agents", 1, "prior", "pirate"]``."""
    parts: list[str | int] = []
    for segment in key.split("."):
        match = _KEY_SEGMENT.fullmatch(segment.strip())
        if match is None:
            return None
        parts.append(match.group(1))
        parts.extend(int(index) for index in _INDEX.findall(match.group(2)))
    return parts


def _apply(
    data: Mapping[str, Any], pairs: Sequence[tuple[str, object, str]], issues: _Issues
) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply overrides to a deep copy; return it and the overridden path -> text."""
    result = copy.deepcopy(dict(data))
    origins: dict[str, str] = {}
    for key, value, text in pairs:
        note = f" (with --set {text})"
        parts = _parse_key_path(key)
        if parts is None:
            issues.add(
                "",
                f"malformed key path {_q(key)}: expected dotted keys with optional [index], "
                f"e.g. agents[0].prior.pirate{note}",
            )
            continue
        problem = _set_path(result, parts, copy.deepcopy(value))
        if problem is not None:
            issues.add(problem[0], problem[1] + note)
            continue
        origins[_render_parts(parts)] = text
    return result, origins


def _set_path(
    root: dict[str, Any], parts: Sequence[str | int], value: object
) -> tuple[str, str] | None:
    """Set ``value`` at ``parts`` in ``root`` following the schema; return a problem or None."""
    node: Any = root
    schema: Any = _SCHEMA
    done: list[str | int] = []
    for position, part in enumerate(parts):
        here = _render_parts(done)
        last = position == len(parts) - 1
        if isinstance(part, str):
            if not isinstance(schema, dict):
                return here, f"{here} is not a table; cannot set key {_q(part)} in it"
            if part not in schema and _ANY_KEY not in schema:
                return _render_parts([*done, part]), _unknown("key", part, list(schema))
            if not isinstance(node, dict):
                return here, f"cannot set {_q(part)}: {here} is {_describe(node)}, not a table"
            sub = schema.get(part, schema.get(_ANY_KEY))
            if last:
                node[part] = value
                return None
            if part not in node and isinstance(sub, dict):
                node[part] = {}
            node = node.get(part)
        else:
            if not isinstance(schema, list):
                return here, f"{here} is not an array; cannot index it with [{part}]"
            if node is not None and not isinstance(node, list):
                return here, f"cannot index {here}: it is {_describe(node)}, not an array"
            size = 0 if node is None else len(node)
            if part >= size:
                entries = "entry" if size == 1 else "entries"
                return f"{here}[{part}]", f"index {part} out of range: {here} has {size} {entries}"
            if last:
                node[part] = value
                return None
            sub = schema[0]
            node = node[part]
        schema = sub
        done.append(part)
    return None  # pragma: no cover - parts is never empty


# --------------------------------------------------------------------------- field parsers

Parser: TypeAlias = Callable[[Any, str, _Issues], Any]


def _get(
    table: Mapping[str, Any],
    key: str,
    path: str,
    issues: _Issues,
    parse: Parser,
    default: Any = _REQUIRED,
) -> Any:
    """Parse ``table[key]``, or return ``default`` (record it missing if required)."""
    where = _join(path, key)
    if key not in table:
        if default is _REQUIRED:
            issues.add(where, f"missing required key {_q(key)}")
            return _INVALID
        return default
    return parse(table[key], where, issues)


def _int(value: Any, path: str, issues: _Issues, *, minimum: int | None = None) -> Any:
    """Parse an integer (not a boolean), optionally >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        issues.add(path, f"expected an integer, got {_describe(value)}")
        return _INVALID
    if minimum is not None and value < minimum:
        issues.add(path, f"must be >= {minimum}, got {value}")
        return _INVALID
    return value


def _number(
    value: Any, path: str, issues: _Issues, *, minimum: float | None = None, what: str = ""
) -> Any:
    """Parse a finite number (an int is accepted) as a float, optionally >= ``minimum``."""
    label = f"{what} must" if what else "must"
    if isinstance(value, bool) or not isinstance(value, int | float):
        issues.add(path, f"expected a number, got {_describe(value)}")
        return _INVALID
    if not math.isfinite(value):
        issues.add(path, f"{label} be a finite number, got {value}")
        return _INVALID
    if minimum is not None and value < minimum:
        issues.add(path, f"{label} be >= {_number_text(minimum)}, got {value}")
        return _INVALID
    return float(value)


def _unit_interval(value: Any, path: str, issues: _Issues) -> Any:
    """Parse a number in (0, 1]."""
    number = _number(value, path, issues)
    if number is not _INVALID and not 0 < number <= 1:
        issues.add(path, f"must be in (0, 1], got {value}")
        return _INVALID
    return number


def _string(
    value: Any, path: str, issues: _Issues, *, nonempty: bool = False, name: bool = False
) -> Any:
    """Parse a string, optionally non-blank or a name matching ``[A-Za-z0-9_-]+``."""
    if not isinstance(value, str):
        issues.add(path, f"expected a string, got {_describe(value)}")
        return _INVALID
    if (nonempty or name) and not value.strip():
        issues.add(path, "must not be empty")
        return _INVALID
    if name and not _NAME.fullmatch(value):
        issues.add(path, f"invalid name {json.dumps(value)}: use only letters, digits, '_' and '-'")
        return _INVALID
    return value


def _choice(value: Any, path: str, issues: _Issues, *, choices: Sequence[str]) -> Any:
    """One of ``choices``."""
    text = _string(value, path, issues)
    if text is _INVALID:
        return _INVALID
    if text not in choices:
        message = f"must be one of {', '.join(map(_q, choices))}; got {_q(text)}"
        close = difflib.get_close_matches(text, list(choices), n=1)
        issues.add(path, message + (f" (did you mean {_q(close[0])}?)" if close else ""))
        return _INVALID
    return text


def _array(value: Any, path: str, issues: _Issues, *, item: Parser) -> Any:
    """Parse an array whose items all pass ``item`` (each one checked)."""
    if not isinstance(value, list):
        issues.add(path, f"expected an array, got {_describe(value)}")
        return _INVALID
    items = [item(entry, f"{path}[{index}]", issues) for index, entry in enumerate(value)]
    return _INVALID if any(entry is _INVALID for entry in items) else items


def _table(value: Any, path: str, issues: _Issues, *, keys: Sequence[str]) -> Any:
    """Check a table whose keys must all be in ``keys`` (suggesting fixes for typos)."""
    if not isinstance(value, Mapping):
        issues.add(path, f"expected a table, got {_describe(value)}")
        return _INVALID
    for key in value:
        if key not in keys:
            issues.add(_join(path, key), _unknown("key", key, keys))
    return value


def _tables(value: Any, path: str, issues: _Issues, *, keys: Sequence[str]) -> Any:
    """Check an array of tables (``[[path]]``), each item by ``_table``."""
    if isinstance(value, Mapping):
        issues.add(path, f"expected an array of tables ([[{path}]]), got a single table")
        return _INVALID
    if not isinstance(value, list):
        issues.add(path, f"expected an array of tables ([[{path}]]), got {_describe(value)}")
        return _INVALID
    return [_table(entry, f"{path}[{i}]", issues, keys=keys) for i, entry in enumerate(value)]


def _first_index(items: Sequence[object], value: object) -> int:
    """Index of the first occurrence of ``value``."""
    return list(items).index(value)


# --------------------------------------------------------------------------- sections


_MISSING_MODEL = "missing model: set model.name (a registry name) or model.path (a GGUF file)"


def _parse_model(data: Mapping[str, Any], issues: _Issues) -> Any:
    """Parse the ``[model]`` table."""
    if "model" not in data:
        issues.add("model", _MISSING_MODEL)
        return _INVALID
    table = _table(data["model"], "model", issues, keys=_MODEL_KEYS)
    if table is _INVALID:
        return _INVALID
    text = partial(_string, nonempty=True)
    values = {
        "name": _get(table, "name", "model", issues, text, None),
        "path": _get(table, "path", "model", issues, text, None),
        "n_ctx": _get(table, "n_ctx", "model", issues, partial(_int, minimum=MIN_N_CTX), None),
        "n_threads": _get(table, "n_threads", "model", issues, partial(_int, minimum=1), None),
    }
    if "name" not in table and "path" not in table:
        issues.add("model", _MISSING_MODEL)
        return _INVALID
    if "name" in table and "path" in table:
        issues.add("model", "give either model.name or model.path, not both")
        return _INVALID
    if any(value is _INVALID for value in values.values()):
        return _INVALID
    return ModelSpec(**values)


@dataclass
class _SimulacraInfo:
    """What later sections need to know about the simulacra, even if some are invalid."""

    items: Any  # tuple[Simulacrum, ...] or _INVALID
    names: list[str]
    tags: dict[str, list[str]]
    known: bool  # False when the array itself is missing or malformed


def _parse_simulacra(data: Mapping[str, Any], issues: _Issues) -> _SimulacraInfo:
    """Parse the ``[[simulacra]]`` array."""
    need = "at least 2 simulacra are required"
    if "simulacra" not in data:
        issues.add("simulacra", f"missing simulacra: {need} ([[simulacra]] tables)")
        return _SimulacraInfo(_INVALID, [], {}, known=False)
    tables = _tables(data["simulacra"], "simulacra", issues, keys=_SIMULACRUM_KEYS)
    if tables is _INVALID:
        return _SimulacraInfo(_INVALID, [], {}, known=False)
    if len(tables) < 2:
        issues.add("simulacra", f"{need}, got {len(tables)}")
    names: list[str] = []
    tags: dict[str, list[str]] = {}
    items: list[Simulacrum] = []
    valid = len(tables) >= 2
    for index, table in enumerate(tables):
        path = f"simulacra[{index}]"
        if table is _INVALID:
            valid = False
            continue
        name = _get(table, "name", path, issues, partial(_string, name=True))
        description = _get(table, "description", path, issues, partial(_string, nonempty=True))
        tag_list = _get(table, "tags", path, issues, _tag_list, [])
        if name is not _INVALID:
            if name in names:
                other = _first_index(names, name)
                issues.add(
                    f"{path}.name",
                    f"duplicate simulacrum name {_q(name)} (also simulacra[{other}])",
                )
                name = _INVALID
            else:
                names.append(name)
        if _INVALID in (name, description, tag_list):
            valid = False
            continue
        for tag in tag_list:
            tags.setdefault(tag, []).append(name)
        items.append(Simulacrum(name, description, tuple(tag_list)))
    return _SimulacraInfo(tuple(items) if valid else _INVALID, names, tags, known=True)


def _tag_list(value: Any, path: str, issues: _Issues) -> Any:
    """Parse a list of distinct tag names."""
    tags = _array(value, path, issues, item=partial(_string, name=True))
    if tags is _INVALID:
        return _INVALID
    for index, tag in enumerate(tags):
        if tag in tags[:index]:
            issues.add(f"{path}[{index}]", f"duplicate tag {_q(tag)}")
            return _INVALID
    return tags


def _parse_dialogue(data: Mapping[str, Any], issues: _Issues) -> Any:
    """Parse the optional ``[dialogue]`` table."""
    table = _table(data.get("dialogue", {}), "dialogue", issues, keys=_DIALOGUE_KEYS)
    if table is _INVALID:
        return _INVALID
    default = DialogueSpec()

    def get(key: str, parse: Parser) -> Any:
        return _get(table, key, "dialogue", issues, parse, getattr(default, key))

    values = {
        "opening": get("opening", _string),
        "opening_speaker": get("opening_speaker", partial(_string, nonempty=True)),
        "turns": get("turns", partial(_int, minimum=1)),
        "scheduler": get("scheduler", partial(_choice, choices=scheduler_names())),
        "max_tokens": get("max_tokens", partial(_int, minimum=1)),
        "temperature": get("temperature", partial(_number, minimum=0.0)),
        "top_p": get("top_p", _unit_interval),
    }
    if any(value is _INVALID for value in values.values()):
        return _INVALID
    return DialogueSpec(**values)


def _parse_belief(data: Mapping[str, Any], issues: _Issues) -> Any:
    """Parse the optional ``[belief]`` table."""
    table = _table(data.get("belief", {}), "belief", issues, keys=_BELIEF_KEYS)
    if table is _INVALID:
        return _INVALID
    default = BeliefSpec()

    def get(key: str, parse: Parser) -> Any:
        return _get(table, key, "belief", issues, parse, getattr(default, key))

    values = {
        "beta": get("beta", partial(_number, minimum=0.0)),
        "normalize": get("normalize", partial(_choice, choices=NORMALIZATIONS)),
        "observe": get("observe", partial(_choice, choices=OBSERVATIONS)),
    }
    if any(value is _INVALID for value in values.values()):
        return _INVALID
    return BeliefSpec(**values)


def _weights(
    value: Any, path: str, issues: _Issues, *, kind: str, known: Sequence[str] | None
) -> Any:
    """Parse a table of non-negative weights by name (checked against ``known``)."""
    if not isinstance(value, Mapping):
        issues.add(path, f"expected a table of weights by {kind}, got {_describe(value)}")
        return _INVALID
    weights: dict[str, float] = {}
    valid = True
    for key, raw in value.items():
        where = _join(path, key)
        if known is not None and key not in known:
            issues.add(where, _unknown(kind, key, known))
            valid = False
            continue
        weight = _number(raw, where, issues, minimum=0.0, what="weight")
        if weight is _INVALID:
            valid = False
            continue
        weights[key] = weight
    if not valid:
        return _INVALID
    if sum(weights.values()) <= 0:
        empty = " (the table is empty)" if not weights else ""
        issues.add(path, f"weights must sum to > 0{empty}")
        return _INVALID
    return weights


def _resolve_prior(
    table: Mapping[str, Any], path: str, sim: _SimulacraInfo, issues: _Issues
) -> Any:
    """Resolve an agent's prior to weights by simulacrum name, in scenario order."""
    if "prior" in table and "prior_tags" in table:
        issues.add(f"{path}.prior_tags", "give either prior or prior_tags, not both")
        return _INVALID
    if "prior" in table:
        known = sim.names if sim.known else None
        weights = _weights(table["prior"], f"{path}.prior", issues, kind="simulacrum", known=known)
        if weights is _INVALID or not sim.known:
            return _INVALID
        return {name: weights[name] for name in sim.names if name in weights}
    if "prior_tags" in table:
        known = list(sim.tags) if sim.known else None
        weights = _weights(
            table["prior_tags"], f"{path}.prior_tags", issues, kind="tag", known=known
        )
        if weights is _INVALID or not sim.known:
            return _INVALID
        spread: dict[str, float] = {}
        for tag, weight in weights.items():
            members = sim.tags[tag]
            for name in members:
                spread[name] = spread.get(name, 0.0) + weight / len(members)
        return {name: spread[name] for name in sim.names if name in spread}
    if not sim.known:
        return _INVALID
    return dict.fromkeys(sim.names, 1.0)


@dataclass
class _AgentInfo:
    """What probes need to know about the agents, even if some are invalid."""

    items: Any  # tuple[AgentSpec, ...] or _INVALID
    names: list[str]  # expanded names
    groups: dict[str, list[str]]  # base name -> expanded names, for count > 1
    known: bool


def _expand(name: str, count: int) -> list[str]:
    """Expand an agent name: ``name`` for one, ``name_1`` .. ``name_n`` for several."""
    return [name] if count == 1 else [f"{name}_{k}" for k in range(1, count + 1)]


def _parse_agents(data: Mapping[str, Any], sim: _SimulacraInfo, issues: _Issues) -> _AgentInfo:
    """Parse the ``[[agents]]`` array, expanded by count."""
    need = "at least one agent is required (an [[agents]] table)"
    if "agents" not in data:
        issues.add("agents", f"missing agents: {need}")
        return _AgentInfo(_INVALID, [], {}, known=False)
    tables = _tables(data["agents"], "agents", issues, keys=_AGENT_KEYS)
    if tables is _INVALID:
        return _AgentInfo(_INVALID, [], {}, known=False)
    if not tables:
        issues.add("agents", need)
    valid = bool(tables)
    items: list[AgentSpec] = []
    names: list[str] = []
    owner: dict[str, tuple[int, str, int]] = {}  # expanded -> (index, base, count)
    groups: dict[str, list[str]] = {}
    for index, table in enumerate(tables):
        path = f"agents[{index}]"
        if table is _INVALID:
            valid = False
            continue
        name = _get(table, "name", path, issues, partial(_string, name=True))
        count = _get(table, "count", path, issues, partial(_int, minimum=1), 1)
        persona = _get(
            table, "persona", path, issues, partial(_choice, choices=PERSONA_MODES), "sample"
        )
        assigned = _get(table, "assigned", path, issues, partial(_string, nonempty=True), None)
        prior = _resolve_prior(table, path, sim, issues)
        if persona is not _INVALID and assigned is not _INVALID:
            assigned = _check_assigned(table, path, persona, assigned, prior, sim, issues)
        expanded = _expanded_names(index, name, count, owner, issues)
        if expanded is not _INVALID:
            names.extend(expanded)
            if count > 1:
                groups[name] = expanded
        if _INVALID in (name, count, persona, assigned, prior, expanded):
            valid = False
            continue
        items.extend(AgentSpec(agent, persona, assigned, dict(prior)) for agent in expanded)
    return _AgentInfo(tuple(items) if valid else _INVALID, names, groups, known=True)


def _check_assigned(
    table: Mapping[str, Any],
    path: str,
    persona: str,
    assigned: str | None,
    prior: Any,
    sim: _SimulacraInfo,
    issues: _Issues,
) -> Any:
    """Check ``assigned`` against ``persona`` and the support; return it or _INVALID."""
    where = f"{path}.assigned"
    related = (f"{path}.persona",)
    if persona != "fixed":
        if assigned is not None:
            message = (
                f"'assigned' is only allowed with persona = 'fixed' (persona is {_q(persona)})"
            )
            issues.add(where, message, related)
            return _INVALID
        return None
    if assigned is None:
        issues.add(
            where, "persona = 'fixed' requires 'assigned' (the simulacrum the agent plays)", related
        )
        return _INVALID
    if sim.known and assigned not in sim.names:
        issues.add(where, _unknown("simulacrum", assigned, sim.names))
        return _INVALID
    if prior is not _INVALID and assigned not in prior:
        support = ", ".join(map(_q, prior))
        issues.add(
            where,
            f"assigned simulacrum {_q(assigned)} is not in the agent's support ({support})",
            (f"{path}.prior", f"{path}.prior_tags"),
        )
        return _INVALID
    return assigned


def _expanded_names(
    index: int, name: Any, count: Any, owner: dict[str, tuple[int, str, int]], issues: _Issues
) -> Any:
    """Expand ``agents[index]`` by count and check the names are new; record them in ``owner``."""
    if name is _INVALID or count is _INVALID:
        return _INVALID
    path = f"agents[{index}]"
    expanded = _expand(name, count)
    for agent in expanded:
        if agent in owner:
            other, base, other_count = owner[agent]
            if base == name:
                detail = f"also agents[{other}]"
            elif other_count > 1:
                detail = f"agents[{other}] with count = {other_count} also makes {_q(agent)}"
            else:
                detail = f"also agents[{other}]"
            where = f"{path}.name"
            issues.add(where, f"duplicate agent name {_q(agent)} ({detail})", (f"{path}.count",))
            return _INVALID
    for agent in expanded:
        owner[agent] = (index, name, count)
    return expanded


def _parse_probes(
    data: Mapping[str, Any], agents: _AgentInfo, turns: int | None, issues: _Issues
) -> Any:
    """Parse the optional ``[[probes]]`` array."""
    if "probes" not in data:
        return ()
    tables = _tables(data["probes"], "probes", issues, keys=_PROBE_KEYS)
    if tables is _INVALID:
        return _INVALID
    probes: list[ProbeSpec] = []
    names: list[str] = []
    valid = True
    for index, table in enumerate(tables):
        path = f"probes[{index}]"
        if table is _INVALID:
            valid = False
            continue
        name = _get(table, "name", path, issues, partial(_string, name=True))
        if name is not _INVALID:
            if name in names:
                other = _first_index(names, name)
                issues.add(
                    f"{path}.name", f"duplicate probe name {_q(name)} (also probes[{other}])"
                )
                name = _INVALID
            else:
                names.append(name)
        question = _get(table, "question", path, issues, partial(_string, nonempty=True))
        options = _get(table, "options", path, issues, _options)
        probe_turns = _get(table, "turns", path, issues, partial(_probe_turns, last=turns))
        default_agents = tuple(agents.names) if agents.known else _INVALID
        probed = _get(
            table, "agents", path, issues, partial(_probe_agents, agents=agents), default_agents
        )
        persona = _get(
            table, "persona", path, issues, partial(_choice, choices=PROBE_PERSONAS), "map"
        )
        values = (name, question, options, probe_turns, probed, persona)
        if _INVALID in values:
            valid = False
            continue
        probes.append(ProbeSpec(name, question, tuple(options), probe_turns, probed, persona))
    return tuple(probes) if valid else _INVALID


def _options(value: Any, path: str, issues: _Issues) -> Any:
    """Parse at least two distinct, non-empty answer options."""
    options = _array(value, path, issues, item=partial(_string, nonempty=True))
    if options is _INVALID:
        return _INVALID
    if len(options) < 2:
        issues.add(path, f"need at least 2 options, got {len(options)}")
        return _INVALID
    for index, option in enumerate(options):
        if option in options[:index]:
            issues.add(f"{path}[{index}]", f"duplicate option {_q(option)}")
            return _INVALID
    return options


def _probe_turns(
    value: Any, path: str, issues: _Issues, *, last: int | None, first: int = 0
) -> Any:
    """Parse distinct turns in [first, dialogue.turns], returned sorted."""
    turns = _array(value, path, issues, item=partial(_int))
    if turns is _INVALID:
        return _INVALID
    if not turns:
        issues.add(path, "must list at least one turn")
        return _INVALID
    valid = True
    for index, turn in enumerate(turns):
        where = f"{path}[{index}]"
        if last is not None and not first <= turn <= last:
            message = f"turn {turn} is outside [{first}, {last}] (dialogue.turns = {last})"
            issues.add(where, message, ("dialogue.turns",))
            valid = False
        elif turn in turns[:index]:
            issues.add(where, f"duplicate turn {turn}")
            valid = False
    return tuple(sorted(turns)) if valid else _INVALID


def _probe_agents(
    value: Any, path: str, issues: _Issues, *, agents: _AgentInfo, verb: str = "probe"
) -> Any:
    """Resolve probed agent names (base names of counted agents expand), deduplicated."""
    given = _array(value, path, issues, item=partial(_string, nonempty=True))
    if given is _INVALID:
        return _INVALID
    if not given:
        issues.add(path, f"must list at least one agent (leave it out to {verb} all agents)")
        return _INVALID
    if not agents.known:
        return _INVALID
    resolved: list[str] = []
    valid = True
    for index, name in enumerate(given):
        if name in agents.groups:
            resolved.extend(agents.groups[name])
        elif name in agents.names:
            resolved.append(name)
        else:
            candidates = [*agents.names, *agents.groups]
            issues.add(f"{path}[{index}]", _unknown("agent", name, candidates), ("agents",))
            valid = False
    return tuple(dict.fromkeys(resolved)) if valid else _INVALID


def _parse_regeneration(
    data: Mapping[str, Any], agents: _AgentInfo, turns: int | None, issues: _Issues
) -> Any:
    """Parse the optional ``[regeneration]`` table (None when absent)."""
    if "regeneration" not in data:
        return None
    path = "regeneration"
    table = _table(data[path], path, issues, keys=_REGENERATION_KEYS)
    if table is _INVALID:
        return _INVALID
    regen_turns = _get(table, "turns", path, issues, partial(_probe_turns, last=turns, first=1))
    samples = _get(table, "samples", path, issues, partial(_int, minimum=2))
    default_agents = tuple(agents.names) if agents.known else _INVALID
    chosen = _get(
        table,
        "agents",
        path,
        issues,
        partial(_probe_agents, agents=agents, verb="regenerate"),
        default_agents,
    )
    if _INVALID in (regen_turns, samples, chosen):
        return _INVALID
    return RegenerationSpec(regen_turns, samples, tuple(chosen))


# --------------------------------------------------------------------------- assembly


def _build(data: Any, source: str, overrides: Overrides) -> Scenario:
    """Apply overrides to raw data and validate it, raising every issue at once."""
    issues = _Issues(source)
    pairs = _override_pairs(overrides, issues)
    if not isinstance(data, Mapping):
        issues.add("", f"expected a table at the top level, got {_describe(data)}")
        raise issues.error({})
    data, origins = _apply(data, pairs, issues)
    scenario = _parse(data, source, issues)
    if issues or scenario is _INVALID:
        raise issues.error(origins)
    return scenario


def _parse(data: Mapping[str, Any], source: str, issues: _Issues) -> Any:
    """Validate every section of a raw scenario, recording all issues."""
    _table(data, "", issues, keys=_TOP_KEYS)
    seed = _get(data, "seed", "", issues, partial(_int, minimum=0), 0)
    model = _parse_model(data, issues)
    simulacra = _parse_simulacra(data, issues)
    agents = _parse_agents(data, simulacra, issues)
    dialogue = _parse_dialogue(data, issues)
    belief = _parse_belief(data, issues)
    last_turn = dialogue.turns if dialogue is not _INVALID else None
    probes = _parse_probes(data, agents, last_turn, issues)
    regeneration = _parse_regeneration(data, agents, last_turn, issues)
    if dialogue is not _INVALID and dialogue.opening_speaker in agents.names:
        issues.add(
            "dialogue.opening_speaker",
            f"opening speaker {_q(dialogue.opening_speaker)} is also the name of an agent",
            ("agents",),
        )
    parts = (seed, model, simulacra.items, agents.items, dialogue, belief, probes, regeneration)
    if _INVALID in parts or issues:
        return _INVALID
    return Scenario(
        seed=seed,
        model=model,
        simulacra=simulacra.items,
        agents=agents.items,
        dialogue=dialogue,
        belief=belief,
        probes=probes,
        regeneration=regeneration,
        source=source,
    )
