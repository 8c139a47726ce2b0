"""Probes: questions put to agents at chosen turns, without entering the dialogue.

A probe is a scenario's question (:class:`~simulacra.scenario.ProbeSpec`) turned
into an instrument of :mod:`simulacra.instruments`: a forced ``choice`` between
options, a ``likert`` rating on a labelled scale, or a ``numeric`` estimate. The
agent answers as a respondent: its persona prompt and the dialogue so far,
followed by the interviewer's question.

The persona answering is the agent's MAP simulacrum, one drawn from its posterior
(from the model's random generator, in probe then agent order), a fixed agent's
assigned simulacrum (``"assigned"``), or, for choice and Likert probes, all of its
simulacra with posterior mass, their answer distributions mixed by posterior
weight (``"mixture"``).

Every probe due after a turn, for every agent and persona, is answered in ONE
call to :func:`simulacra.instruments.ask`, so shared prefixes (a persona prompt
and the history) are decoded once. Sampled parts of an answer (the sampled
option or point, a numeric reply) are seeded from the run's seed and the turn,
never from the model's random generator. Probes run on the dialogue's engine,
though, and what they leave in its KV cache changes the last bits of later
logits, so a sampled dialogue with probes need not be the same text as without
them (the regeneration test avoids this with a scratch engine).

The ``probes`` table has one row per turn, agent, probe and option (choice: the
options; Likert: the points ``"1"`` .. ``"N"``) and one row per numeric answer
(``option`` None, ``probability`` NaN); see :data:`PROBE_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulacra.instruments import (
    Answer,
    Choice,
    Likert,
    Numeric,
    Respondent,
    ask,
    item_rng,
)
from simulacra.instruments.likert import expected_point

if TYPE_CHECKING:
    from simulacra.scenario import ProbeSpec
    from simulacra.simulation.agent import PersonaAgent
    from simulacra.simulation.dialogue import Dialogue

__all__ = [
    "MIXTURE",
    "PROBE_COLUMNS",
    "ask_probes",
    "probe_instrument",
    "probe_seed",
]

MIXTURE = "mixture"
_MIN_MASS = 1e-9

#: Columns of the ``probes`` table (after ``run_id``).
PROBE_COLUMNS: tuple[str, ...] = (
    "turn",
    "agent",
    "probe",
    "option",
    "probability",
    "persona_mode",
    "simulacrum",
    "kind",
    "expected",
    "value",
    "text",
    "parsed",
)

ProbeInstrument = Choice | Likert | Numeric


def probe_instrument(probe: ProbeSpec) -> ProbeInstrument:
    """The instrument that asks ``probe``.

    Args:
        probe: a validated probe.

    Returns:
        A :class:`Choice`, :class:`Likert` or :class:`Numeric` named after the probe.
    """
    if probe.kind == "likert":
        assert probe.scale is not None
        scale = probe.scale
        return Likert(probe.name, probe.question, scale.points, scale.low, scale.high)
    if probe.kind == "numeric":
        assert probe.numeric is not None
        settings = probe.numeric
        return Numeric(
            probe.name,
            probe.question,
            unit=settings.unit,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
        )
    return Choice(probe.name, probe.question, tuple(probe.options))


def probe_seed(seed: int, turn: int) -> int:
    """The seed of the sampled parts of the answers given after ``turn`` of a run."""
    return int(np.random.SeedSequence([int(seed), int(turn)]).generate_state(1)[0])


@dataclass(frozen=True)
class _Asked:
    """One probe put to one agent: who answers, and with which weights."""

    probe: ProbeSpec
    agent: PersonaAgent
    personas: tuple[str, ...]
    weights: np.ndarray | None  # posterior weights for "mixture", else None


def _respondent_key(agent: str, simulacrum: str) -> str:
    return f"{agent}:{simulacrum}"


def ask_probes(model: Dialogue, probes: Sequence[ProbeSpec]) -> list[dict[str, object]]:
    """Ask every probe due after the model's current turn, in one batched call.

    Args:
        model: the running dialogue (its turn, agents, history and engine).
        probes: the scenario's probes; those whose turns include ``model.turn`` are asked.

    Returns:
        The rows of the ``probes`` table (:data:`PROBE_COLUMNS`), in probe, agent,
        option order.
    """
    turn = model.turn
    by_name = {agent.name: agent for agent in model.persona_agents}
    asked: list[_Asked] = []
    for probe in probes:
        if turn not in probe.turns:
            continue
        for name in probe.agents:
            asked.append(_plan(probe, by_name[name]))
    if not asked:
        return []
    history = tuple(model.prompt_history())
    respondents: dict[tuple[str, str], Respondent] = {}
    items = []
    for entry in asked:
        instrument = probe_instrument(entry.probe)
        for persona in entry.personas:
            key = (entry.agent.name, persona)
            if key not in respondents:
                respondents[key] = Respondent(
                    _respondent_key(*key),
                    entry.agent.system_prompt(persona),
                    history,
                    entry.agent.name,
                )
            items.append((respondents[key], instrument))
    seed = probe_seed(model.seed, turn)
    answers = ask(model.engine, items, seed=seed)
    rows: list[dict[str, object]] = []
    offset = 0
    for entry in asked:
        own = answers[offset : offset + len(entry.personas)]
        offset += len(entry.personas)
        rows.extend(_rows(entry, own, turn, seed))
    return rows


def _plan(probe: ProbeSpec, agent: PersonaAgent) -> _Asked:
    """Choose who answers ``probe`` for ``agent`` (drawing from the model's generator)."""
    superposition = agent.superposition
    if probe.persona == MIXTURE:
        weights = superposition.probs
        used = [k for k, w in enumerate(weights) if w > _MIN_MASS]
        return _Asked(probe, agent, tuple(superposition.names[k] for k in used), weights[used])
    if probe.persona == "map":
        return _Asked(probe, agent, (agent.map_simulacrum(),), None)
    if probe.persona == "assigned":  # the scenario checked that the agent is fixed
        assert agent.assigned is not None
        return _Asked(probe, agent, (agent.assigned,), None)
    return _Asked(probe, agent, (superposition.sample(agent.model.rng),), None)


def _rows(
    entry: _Asked, answers: Sequence[Answer], turn: int, seed: int
) -> list[dict[str, object]]:
    """The table rows of one probe put to one agent."""
    probe = entry.probe
    base = {
        "turn": turn,
        "agent": entry.agent.name,
        "probe": probe.name,
        "persona_mode": probe.persona,
    }
    if probe.kind == "numeric":
        (answer,) = answers
        return [
            {
                **base,
                "option": None,
                "probability": float("nan"),
                "simulacrum": entry.personas[0],
                "kind": probe.kind,
                "expected": float("nan"),
                "value": float("nan") if answer.value is None else float(answer.value),
                "text": answer.text,
                "parsed": bool(answer.parsed),
            }
        ]
    if entry.weights is None:
        (answer,) = answers
        simulacrum = entry.personas[0]
        options, probabilities = answer.options, np.asarray(answer.probabilities)
        expected, picked = answer.expected, int(answer.value or 0)
        if probe.kind == "likert":
            picked -= 1  # the sampled point is 1-based
    else:
        simulacrum = MIXTURE
        options = answers[0].options
        per_persona = np.array([a.probabilities for a in answers])
        probabilities = entry.weights @ per_persona
        probabilities = probabilities / probabilities.sum()
        expected = expected_point(probabilities) if probe.kind == "likert" else None
        rng = item_rng(seed, _respondent_key(entry.agent.name, MIXTURE), probe.name)
        # choice: drawn over the options in sorted order, as the instrument draws, so
        # that the draw does not depend on the order the options were given in
        ranked = (
            sorted(range(len(options)), key=options.__getitem__)
            if probe.kind == "choice"
            else list(range(len(options)))
        )
        picked = ranked[int(rng.choice(len(ranked), p=probabilities[ranked]))]
    value = float(picked + 1) if probe.kind == "likert" else float(picked)
    return [
        {
            **base,
            "option": option,
            "probability": float(p),
            "simulacrum": simulacrum,
            "kind": probe.kind,
            "expected": float("nan") if expected is None else float(expected),
            "value": value,
            "text": options[picked],
            "parsed": None,
        }
        for option, p in zip(options, probabilities, strict=True)
    ]
