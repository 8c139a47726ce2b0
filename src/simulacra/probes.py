"""Probes: forced-choice questions put to agents without entering the dialogue.

A probe renders the agent's prompt (persona + history) followed by a question from
an interviewer, and reads the engine's probability of each option. Small models
favour whichever option is listed first, so every probe is asked twice, with the
options listed in the given and in the reversed order, and the answers averaged.

The persona answering is the agent's MAP simulacrum, one drawn from its posterior,
or all of them, mixed by posterior weight (``"mixture"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from simulacra.llm.chat import Message, render_dialogue

if TYPE_CHECKING:
    from simulacra.agent import PersonaAgent
    from simulacra.scenario import ProbeSpec

__all__ = ["INTERVIEWER", "ask", "option_probabilities", "question_text"]

INTERVIEWER = "Interviewer"
MIXTURE = "mixture"
_MIN_MASS = 1e-9


def question_text(question: str, options: Sequence[str]) -> str:
    """The question with its options listed in the given order."""
    listed = " or ".join(f'"{option}"' for option in options)
    return f"{question} Answer with {listed}."


def option_probabilities(
    agent: PersonaAgent, simulacra: Sequence[str], question: str, options: Sequence[str]
) -> np.ndarray:
    """P(option) for ``agent`` speaking as each of ``simulacra``, averaged over both orders.

    All personas and both option orders are decoded in one batched engine call.

    Args:
        agent: the agent asked.
        simulacra: the personas its prompt is rendered from.
        question: the question.
        options: the answers, as the probe lists them.

    Returns:
        A (len(simulacra), len(options)) array of probabilities.
    """
    engine = agent.model.engine
    history = agent.model.prompt_history()
    bodies = [engine.chat.body(option) for option in options]
    forward = list(range(len(options)))
    orders = (forward, forward[::-1])
    questions = []
    for simulacrum in simulacra:
        system = agent.system_prompt(simulacrum)
        for order in orders:
            text = question_text(question, [options[i] for i in order])
            asked = [*history, Message(INTERVIEWER, text)]
            prompt = render_dialogue(engine.chat, system, asked, agent.name)
            questions.append((prompt, [bodies[i] for i in order]))
    answers = engine.choices(questions)
    out = np.zeros((len(simulacra), len(options)))
    for k in range(len(simulacra)):
        for j, order in enumerate(orders):
            out[k, order] += answers[2 * k + j] / 2
    return out


def ask(agent: PersonaAgent, probe: ProbeSpec, turn: int) -> list[dict[str, object]]:
    """Put ``probe`` to ``agent`` and return one tidy row per option.

    Args:
        agent: the agent asked.
        probe: the probe.
        turn: the dialogue turn after which it is asked.

    Returns:
        Rows with ``turn, agent, probe, option, probability, persona_mode, simulacrum``.
    """
    superposition = agent.superposition
    if probe.persona == MIXTURE:
        weights = superposition.probs
        used = [k for k, w in enumerate(weights) if w > _MIN_MASS]
        per_persona = option_probabilities(
            agent, [superposition.names[k] for k in used], probe.question, probe.options
        )
        answers = weights[used] @ per_persona
        answers /= answers.sum()
        persona = MIXTURE
    else:
        persona = (
            superposition.map() if probe.persona == "map" else superposition.sample(agent.model.rng)
        )
        answers = option_probabilities(agent, [persona], probe.question, probe.options)[0]
    return [
        {
            "turn": turn,
            "agent": agent.name,
            "probe": probe.name,
            "option": option,
            "probability": float(p),
            "persona_mode": probe.persona,
            "simulacrum": persona,
        }
        for option, p in zip(probe.options, answers, strict=True)
    ]
