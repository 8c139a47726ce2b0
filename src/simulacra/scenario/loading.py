"""The whole scenario: the :class:`Scenario` dataclass, and reading and validating one.

:func:`load_scenario` reads a TOML file, applies command-line overrides
(:mod:`simulacra.scenario.overrides`) and validates every section
(:mod:`simulacra.scenario.sections`) into frozen dataclasses
(:mod:`simulacra.scenario.schema`); every problem found is collected and
reported at once in a single :class:`~simulacra.errors.ScenarioError`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.scenario.overrides import Overrides, apply_pairs, override_pairs
from simulacra.scenario.parsing import (
    INVALID,
    Issues,
    check_table,
    describe,
    get_field,
    parse_int,
    quote,
)
from simulacra.scenario.schema import (
    TOP_KEYS,
    AgentSpec,
    BeliefSpec,
    DialogueSpec,
    ModelSpec,
    ProbeSpec,
    RegenerationSpec,
)
from simulacra.scenario.sections import (
    parse_agents,
    parse_belief,
    parse_dialogue,
    parse_model,
    parse_probes,
    parse_regeneration,
    parse_simulacra,
)
from simulacra.simulation.simulacrum import Simulacrum

__all__ = ["Scenario", "build_scenario", "load_scenario", "parse_scenario", "read_scenario_file"]


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
        return build_scenario(self.to_dict(), self.source, overrides)


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
    data = read_scenario_file(source)
    return build_scenario(data, source, overrides)


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
    return build_scenario(data, source, overrides)


def read_scenario_file(path: str | os.PathLike[str], source: str | None = None) -> dict[str, Any]:
    """Read and decode a TOML file, turning every failure into a ScenarioError.

    Args:
        path: The file.
        source: The name used in error messages; by default ``path`` as given.

    Returns:
        The raw (unvalidated) scenario.

    Raises:
        ScenarioError: The file cannot be read or is not valid TOML.

    """
    source = os.fspath(path) if source is None else source
    try:
        raw = Path(path).read_bytes()
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


def build_scenario(data: Any, source: str, overrides: Overrides = None) -> Scenario:
    """Apply overrides to raw data and validate it, raising every issue at once.

    Args:
        data: The raw scenario (as read from TOML).
        source: Where it came from, used in error messages.
        overrides: Dotted keys to values, or ``"key=value"`` strings.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: With every problem found.

    """
    issues = Issues(source)
    pairs = override_pairs(overrides, issues)
    if not isinstance(data, Mapping):
        issues.add("", f"expected a table at the top level, got {describe(data)}")
        raise issues.error({})
    data, origins = apply_pairs(data, pairs, issues)
    data = _one_model_source(data, origins)
    scenario = _parse(data, source, issues)
    if issues or scenario is INVALID:
        raise issues.error(origins)
    return _resolve_model_path(scenario, from_command_line="model.path" in origins)


def _one_model_source(data: dict[str, Any], origins: Mapping[str, str]) -> dict[str, Any]:
    """An override of ``model.path`` replaces the file's ``model.name``, and vice versa."""
    model = data.get("model")
    if not isinstance(model, dict):
        return data
    for given, replaced in (("model.path", "name"), ("model.name", "path")):
        if given in origins and f"model.{replaced}" not in origins:
            model.pop(replaced, None)
    return data


def _resolve_model_path(scenario: Scenario, *, from_command_line: bool) -> Scenario:
    """Make a relative ``model.path`` absolute, from where it was written.

    A path in a scenario file is relative to the file's directory; one given on
    the command line (``--set``) to the working directory. Without a file (a
    scenario built from a dict) the path is left as it is.
    """
    path = scenario.model.path
    if path is None or os.path.isabs(os.path.expanduser(path)):
        return scenario
    if from_command_line:
        origin = os.getcwd()
    elif os.path.isfile(scenario.source):
        origin = os.path.dirname(os.path.abspath(scenario.source))
    else:
        return scenario
    resolved = os.path.abspath(os.path.join(origin, os.path.expanduser(path)))
    return replace(scenario, model=replace(scenario.model, path=resolved))


def _parse(data: Mapping[str, Any], source: str, issues: Issues) -> Any:
    """Validate every section of a raw scenario, recording all issues."""
    check_table(data, "", issues, keys=TOP_KEYS)
    seed = get_field(data, "seed", "", issues, partial(parse_int, minimum=0), 0)
    model = parse_model(data, issues)
    simulacra = parse_simulacra(data, issues)
    agents = parse_agents(data, simulacra, issues)
    dialogue = parse_dialogue(data, issues)
    belief = parse_belief(data, issues)
    last_turn = dialogue.turns if dialogue is not INVALID else None
    probes = parse_probes(data, agents, last_turn, issues)
    regeneration = parse_regeneration(data, agents, last_turn, issues)
    if dialogue is not INVALID and dialogue.opening_speaker in agents.names:
        issues.add(
            "dialogue.opening_speaker",
            f"opening speaker {quote(dialogue.opening_speaker)} is also the name of an agent",
            ("agents",),
        )
    parts = (seed, model, simulacra.items, agents.items, dialogue, belief, probes, regeneration)
    if INVALID in parts or issues:
        return INVALID
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
