"""The whole scenario: the :class:`Scenario` dataclass, and reading and validating one.

:func:`load_scenario` reads a TOML file, applies command-line overrides
(:mod:`simulacra.scenario.overrides`), validates the file kind
(:class:`~simulacra.scenario.schema.ScenarioFile`) and resolves it: agents
expanded, priors written out, turns counted from the end made absolute. Every
problem is reported at once in one :class:`~simulacra.errors.ScenarioError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from simulacra.errors import ScenarioError, ScenarioIssue, warn
from simulacra.scenario.overrides import Overrides, apply_pairs
from simulacra.scenario.schema import (
    BeliefSpec,
    DialogueSpec,
    ModelSpec,
    NumericSpec,
    ProjectionsSpec,
    ScenarioFile,
    expand,
    probed_agents,
    resolve_prior,
    resolve_turn,
)
from simulacra.scenario.specs import AgentSpec, ProbeSpec, RegenerationSpec
from simulacra.schema import describe, located, read_toml
from simulacra.schema.issues import Located
from simulacra.simulation.simulacrum import Simulacrum

__all__ = ["Scenario", "load_scenario", "parse_scenario"]


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
        projections: The vectors the agents' activations are projected on, or None.
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
    projections: ProjectionsSpec | None = None
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
        and the regeneration test with explicit ``agents``; ``regeneration`` and
        ``projections`` are left out when there are none.
        ``parse_scenario(s.to_dict(), s.source) == s``.
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
        if self.projections is not None:
            data["projections"] = self.projections.to_dict()
        return data

    def with_overrides(self, overrides: Overrides) -> Scenario:
        """Return a new, re-validated scenario with ``overrides`` applied.

        Keys address the resolved form of :meth:`to_dict`: agents are already
        expanded, so ``agents[i]`` is the i-th expanded agent.

        Raises:
            ScenarioError: If an override or the resulting scenario is invalid.

        """
        return parse_scenario(self.to_dict(), self.source, overrides)


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
    return parse_scenario(read_toml(source), source, overrides)


def parse_scenario(data: Any, source: str = "<scenario>", overrides: Overrides = None) -> Scenario:
    """Apply overrides to raw data (as read from TOML), validate and resolve it.

    Relative paths in the file (``model.path``, steering and projection vectors) are
    read from the file's directory when ``source`` is a file; those given by an
    override, from the working directory.

    Args:
        data: The raw scenario (as read from TOML).
        source: Where it came from, used in error messages.
        overrides: Dotted keys to values, or ``"key=value"`` strings.

    Raises:
        ScenarioError: With every problem found.

    """
    if not isinstance(data, Mapping):
        message = f"expected a table at the top level, got {describe(data)}"
        raise ScenarioError(ScenarioIssue(source, "", message))
    problems: list[Located] = []
    data, origins = apply_pairs(data, overrides, problems)
    model = data.get("model")
    if isinstance(model, dict):  # an override of model.path replaces the file's name, and back
        for given, replaced in (("model.path", "name"), ("model.name", "path")):
            if given in origins and f"model.{replaced}" not in origins:
                model.pop(replaced, None)
    root = os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else None
    known: dict[str, Any] = {"root": root}  # the agents and their groups, once validated
    try:
        written = ScenarioFile.model_validate(data, context=known)
    except ValidationError as error:
        problems.extend(located(error, ScenarioFile, data))
    if problems:
        raise ScenarioError([_issue(source, problem, origins) for problem in problems])
    return _resolve(written, source, known)


def _issue(source: str, problem: Located, origins: Mapping[str, str]) -> ScenarioIssue:
    """The issue, noting the overrides (path -> text) behind it or behind a related path."""
    path, message, related = problem
    texts = [t for key, t in origins.items() if any(_nested(key, p) for p in (path, *related) if p)]
    if texts:
        message += " (with " + " ".join(f"--set {text}" for text in texts) + ")"
    return ScenarioIssue(source, path, message)


def _nested(a: str, b: str) -> bool:
    """Tell whether one dotted path equals or contains the other."""
    return a == b or any(x.startswith((y + ".", y + "[")) for x, y in ((a, b), (b, a)))


def _resolve(written: ScenarioFile, source: str, known: Mapping[str, Any]) -> Scenario:
    """The resolved scenario of a validated file (``known``: the facts of its validation)."""
    sims = written.simulacra
    agents: list[AgentSpec] = []
    uniform: list[str] = []
    for index, entry in enumerate(written.agents):
        prior = resolve_prior(entry.prior, entry.prior_tags, sims)
        tags = entry.prior_tags or {}
        if len(set(tags.values())) > 1 and len(set(prior.values())) == 1:
            uniform.append(_uniform_note(index, tags, sims))
        agents.extend(
            AgentSpec(name, entry.persona, entry.assigned, dict(prior), entry.steer)
            for name in expand(entry.name, entry.count)
        )
    if uniform:
        warn(
            f"{source}: {'; '.join(uniform)} gives every simulacrum the same prior weight: a "
            "tag's weight is split equally among the simulacra carrying it. To weight "
            "simulacra, give prior = {name = weight, ...}, or use tags with equally many simulacra"
        )
    last = written.dialogue.turns
    probes = []
    for probe in written.probes:
        resolved, order = _turns(probe.turns, last)
        numeric = probe.numeric or (NumericSpec() if probe.kind == "numeric" else None)
        probed = probed_agents(probe.agents, known)
        asked = (probe.name, probe.question, probe.options or (), resolved, probed, probe.persona)
        probes.append(ProbeSpec(*asked, probe.kind, probe.scale, numeric, order))
    regeneration = written.regeneration
    if regeneration is not None:
        resolved, order = _turns(regeneration.turns, last)
        probed = probed_agents(regeneration.agents, known)
        regeneration = RegenerationSpec(resolved, regeneration.samples, probed, order)
    simulacra = tuple(Simulacrum(sim.name, sim.description, sim.tags) for sim in sims)
    sections = (written.dialogue, written.belief, tuple(probes), regeneration, written.projections)
    return Scenario(written.seed, written.model, simulacra, tuple(agents), *sections, source)


def _turns(turns: tuple[int, ...], last: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Turns resolved against ``dialogue.turns`` and sorted, and as written in that order."""
    order = sorted(turns, key=lambda turn: resolve_turn(turn, last))
    return tuple(resolve_turn(turn, last) for turn in order), tuple(order)


def _uniform_note(index: int, tags: Mapping[str, float], sims: Any) -> str:
    """``agents[0].prior_tags = {a = 2, b = 1} (a has 2 simulacra, b 1)``."""
    weights = ", ".join(f"{tag} = {weight:g}" for tag, weight in tags.items())
    counts = [f"{tag} {sum(tag in sim.tags for sim in sims)}" for tag in tags]
    counts[0] = counts[0].replace(" ", " has ", 1) + " simulacra"
    return f"agents[{index}].prior_tags = {{{weights}}} ({', '.join(counts)})"
