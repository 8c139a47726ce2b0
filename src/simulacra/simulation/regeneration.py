"""The regeneration test: redraw an agent's next utterance M times, leaving the dialogue as is.

From one dialogue state, :func:`regenerate` draws the agent's next utterance
``M`` times (each draw picks the persona the way the agent would, then samples
the text), scores every regeneration under each of the agent's simulacra and
labels it by the most likely one. The statistics of those labels (label
entropy, commitment) are pure functions in :mod:`simulacra.analysis.regeneration`.

By default the test runs on a *scratch engine*
(:func:`simulacra.llm.cache.scratch_engine`): a second engine on the same model
file, reset before every call. The dialogue's own engine and its KV cache are
never touched, so a run with the test has exactly the transcript and beliefs of
the same run without it (sharing the cache would not change what is computed,
but it perturbs the last bits of the logits, and a sampled dialogue diverges
from such perturbations within a turn).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulacra.analysis.regeneration import REGENERATION_COLUMNS
from simulacra.llm.cache import scratch_engine
from simulacra.llm.chat import render_dialogue
from simulacra.llm.engine import Engine
from simulacra.simulation.agent import EMPTY_UTTERANCE

if TYPE_CHECKING:
    from simulacra.simulation.agent import PersonaAgent
    from simulacra.simulation.dialogue import Dialogue

__all__ = [
    "REGENERATION_COLUMNS",
    "draw_simulacra",
    "regenerate",
    "scratch_engine",
]

_SEED_BOUND = 2**31 - 1


def draw_simulacra(agent: PersonaAgent, samples: int, rng: np.random.Generator) -> list[str]:
    """The personas ``agent`` would speak as on ``samples`` independent redraws.

    Follows the agent's ``persona_mode`` (fixed: always the assigned persona; map:
    the MAP simulacrum; sample: independent draws from the posterior), using
    ``rng`` rather than the model's generator so the dialogue is not disturbed.
    """
    if agent.persona_mode == "fixed":
        assert agent.assigned is not None
        return [agent.assigned] * samples
    if agent.persona_mode == "map":
        return [agent.superposition.map()] * samples
    return [agent.superposition.sample(rng) for _ in range(samples)]


def regenerate(
    model: Dialogue,
    agent: PersonaAgent,
    samples: int,
    seed: int | Sequence[int],
    *,
    turn: int | None = None,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Regenerate ``agent``'s next utterance ``samples`` times and label each one.

    The dialogue is not changed: nothing is appended to the history, no belief is
    updated, the model's random generator is not used (personas and sampling
    seeds come from ``seed``) and, by default, the model's engine is not used
    either (see :func:`scratch_engine`). All regenerations are sampled in one
    batched engine call with the scenario's dialogue settings; each is then
    scored under every simulacrum of the agent in one batched ``loglik`` call and
    labelled by the most likely one (``argmax_k l_k``; per-token normalisation
    would not change the argmax).

    Args:
        model: the running dialogue.
        agent: the agent whose next utterance is redrawn.
        samples: ``M``, the number of regenerations (>= 1).
        seed: seed (or seed sequence) of the persona draws and of the sampler.
        turn: the value of the ``turn`` column; by default ``model.turn + 1``,
            the utterance being redrawn.
        engine: the engine to run on; None for the model's scratch engine, reset
            first so the result depends only on the dialogue state and ``seed``.
            Passing ``model.engine`` is faster (its cached prefixes are reused)
            but perturbs the rest of a sampled dialogue.

    Returns:
        One row per regeneration with :data:`REGENERATION_COLUMNS`: ``simulacrum``
        is the persona it was generated from, ``label`` its most likely
        simulacrum, ``belief_entropy`` the agent's normalised posterior entropy
        at this point and ``n_simulacra`` the size of its support.

    Raises:
        ValueError: if ``samples < 1``.

    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if engine is None:
        engine = scratch_engine(model.engine)
        engine.reset()
    dialogue = model.scenario.dialogue
    rng = np.random.default_rng(seed)
    personas = draw_simulacra(agent, samples, rng)
    history = model.prompt_history()
    chat = engine.chat
    texts = engine.generate(
        [render_dialogue(chat, agent.system_prompt(p), history, agent.name) for p in personas],
        max_tokens=dialogue.max_tokens,
        temperature=dialogue.temperature,
        top_p=dialogue.top_p,
        stop=chat.stop,
        seed=int(rng.integers(_SEED_BOUND)),
    )
    support = agent.support
    scoring = [render_dialogue(chat, agent.system_prompt(k), history, agent.name) for k in support]
    belief = agent.superposition.normalized_entropy()
    rows = []
    for index, (persona, raw) in enumerate(zip(personas, texts, strict=True)):
        text = raw.strip() or EMPTY_UTTERANCE
        body = chat.body(text)
        logliks = engine.loglik(scoring, body)
        rows.append(
            {
                "turn": model.turn + 1 if turn is None else turn,
                "agent": agent.name,
                "sample": index,
                "simulacrum": persona,
                "text": text,
                "n_tokens": len(engine.tokenize(body)),
                "label": support[int(np.argmax(logliks))],
                "belief_entropy": belief,
                "n_simulacra": len(support),
            }
        )
    return pd.DataFrame(rows, columns=list(REGENERATION_COLUMNS))
