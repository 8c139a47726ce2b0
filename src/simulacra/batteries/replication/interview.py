"""Interview: a population's participants answer every study, in batched engine calls.

Each participant does every study in its own order and in its drawn condition. A
study is a fresh conversation after the persona prompt: the stimulus, then the
condition's lead-in questions (each answered by the model and kept in the
dialogue), then the measure's items, each asked on its own after that context.
Studies done earlier are *not* part of a later study's context: ML1 reported no
order effects, and a shared growing history would make every participant's
prompts thousands of tokens long and the studies sequential. The order is still
drawn and recorded (``position``) so that order effects can be looked at.

Participants are asked one at a time (``group``): all of a participant's lead-ins
of one depth go to :func:`simulacra.instruments.ask` in one call, then all its
items in one call, so its persona prompt is decoded once and shared by every
study, item and option order in the KV cache, and the calls stay within the
engine's sequence pool (larger groups overflow it and recompute evicted
prefixes). With personas the cache is cleared before each participant: nothing
is shared across personas, and a participant's answers then depend only on the
participant, the seed and the model, not on the population size or the chunking
into units. The bare model (``persona=False``) keeps the cache across
participants, whose prompts are the same in each condition.

Answering modes:

- ``sampled``: one seeded answer per participant and item, the way a person gives
  one answer (the sampled option, point or number);
- ``expected``: the probability-weighted answer: choice items keep their option
  probabilities, Likert items their expected point, numeric items the mean of
  ``samples`` seeded samples (sample 0 is the sampled-mode answer).

Lead-in answers are always sampled (a dialogue holds one text). Run ``r > 0``
re-asks participants with a new sampling seed (:func:`answer_seed`); a choice or
scale whose prompt is unchanged keeps the distribution it was scored with and is only
drawn again (:func:`~simulacra.instruments.redraw`). An effect with
an ``[intervention]`` is asked in its own engine call under its capping or steering
(:mod:`~simulacra.batteries.replication.intervention`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulacra.batteries.replication.effects import Effect
from simulacra.batteries.replication.intervention import Prepared, applied
from simulacra.batteries.replication.population import Participant
from simulacra.instruments import (
    INTERVIEWER,
    Answer,
    Choice,
    Instrument,
    Likert,
    Numeric,
    Respondent,
    ask,
    redraw,
)
from simulacra.instruments.asking import instrument_text
from simulacra.llm.chat import Message

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine

__all__ = ["ANSWER_COLUMNS", "MODES", "answer_seed", "interview", "sample_key"]

MODES = ("sampled", "expected")
"""The answering modes."""

ANSWER_COLUMNS = (
    "participant",
    "run",
    "effect",
    "condition",
    "position",
    "item",
    "role",
    "kind",
    "sample",
    "text",
    "value",
    "expected",
    "parsed",
    "options",
    "probabilities",
    "mode",
    "persona",
)
"""Columns of the ``answers`` table (the runner adds ``unit_id`` and ``model``)."""


def answer_seed(seed: int, run: int) -> int:
    """The sampling seed of answer run ``run`` (run 0 uses ``seed`` itself)."""
    if run == 0:
        return seed
    digest = hashlib.sha256(json.dumps([int(seed), int(run)]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sample_key(key: str, sample: int) -> str:
    """The respondent key of a participant's ``sample``-th numeric sample."""
    return key if sample == 0 else f"{key}~s{sample}"


def interview(
    engine: Engine,
    participants: Sequence[Participant],
    effects: Sequence[Effect],
    *,
    seed: int,
    mode: str,
    persona: bool,
    runs: int,
    reask: int,
    samples: int,
    name: str,
    group: int = 1,
    interventions: Mapping[str, Prepared] | None = None,
) -> pd.DataFrame:
    """Ask ``participants`` every study; return the ``answers`` table.

    Args:
        engine: the engine answering.
        participants: the participants (a chunk of the population).
        effects: the studies.
        seed: the battery's answer seed.
        mode: ``sampled`` or ``expected``.
        persona: put each participant's persona as the system text (False: ``""``).
        runs: answer runs of the re-asked participants (run 0 is everyone's answer).
        reask: participants with an index below this are re-asked in runs 1..runs-1.
        samples: numeric samples per item in expected mode.
        name: the participant's name in the dialogue.
        group: participants per batch of engine calls.
        interventions: effect name -> its intervention resolved on this model: that
            effect's lead-ins and items are asked under it (one engine call per
            setting; answers are seeded per item, so the others do not change).

    Returns:
        One row per answer (lead-ins included), columns :data:`ANSWER_COLUMNS`.
    """
    by_name = {effect.name: effect for effect in effects}
    levers = dict(interventions or {})
    rows: list[dict[str, Any]] = []
    for start in range(0, len(participants), group):
        if persona:
            engine.reset()  # nothing is shared across personas: answers stay independent
        scored: Scored = {}  # run 0's choices and scales, kept for the re-asks
        for run in range(max(1, runs)):
            members = [
                p for p in participants[start : start + group] if run == 0 or p.index < reask
            ]
            if not members:
                break
            _ask_group(
                engine,
                members,
                by_name,
                run,
                answer_seed(seed, run),
                mode,
                persona,
                samples,
                name,
                rows,
                levers,
                scored,
            )
    return pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))


Scored = dict[tuple[str, Respondent, Instrument], Answer]
"""Choice and Likert answers of one chunk's runs, by (effect, respondent, instrument)."""


def _ask(
    engine: Engine,
    items: Sequence[tuple[Respondent, Instrument]],
    effects: Sequence[str],
    levers: Mapping[str, Prepared],
    seed: int,
    scored: Scored,
) -> list[Answer]:
    """Ask ``items`` (item i of effect ``effects[i]``), each under its effect's intervention.

    A choice or scale put again to the same prompt (a re-asked participant's item
    whose context did not change) keeps the distribution it was scored with and is
    only drawn again under ``seed`` (:func:`redraw`): the model gives one prompt one
    distribution, and a run differs from another only by its draws. Scored again,
    it would cost its decoding and differ by the cache's layout alone (up to 0.04 in
    probability, measured), which the variance decomposition would count as run
    variance. New choice and Likert answers are added to ``scored``.
    """
    keys = [(effect, *item) for item, effect in zip(items, effects, strict=True)]
    answers: list[Answer | None] = [None] * len(items)
    fresh = []
    for i, key in enumerate(keys):
        known = scored.get(key)
        _, respondent, instrument = key
        if known is not None and isinstance(instrument, Choice | Likert):  # only those kept
            answers[i] = redraw(known, respondent, instrument, seed)
        else:
            fresh.append(i)
    if fresh:
        asked = _ask_fresh(
            engine, [items[i] for i in fresh], [effects[i] for i in fresh], levers, seed
        )
        for i, answer in zip(fresh, asked, strict=True):
            answers[i] = answer
            if isinstance(items[i][1], Choice | Likert):
                scored[keys[i]] = answer
    return [answer for answer in answers if answer is not None]


def _ask_fresh(
    engine: Engine,
    items: Sequence[tuple[Respondent, Instrument]],
    effects: Sequence[str],
    levers: Mapping[str, Prepared],
    seed: int,
) -> list[Answer]:
    """Ask ``items`` on the engine, each under its effect's intervention."""
    if not any(effect in levers for effect in effects):
        return ask(engine, items, seed=seed)
    answers: list[Answer | None] = [None] * len(items)
    for setting in dict.fromkeys(levers.get(effect) for effect in effects):
        chosen = [i for i, effect in enumerate(effects) if levers.get(effect) is setting]
        with applied(engine, setting):
            asked = ask(engine, [items[i] for i in chosen], seed=seed)
            for i, answer in zip(chosen, asked, strict=True):
                answers[i] = answer
    return [answer for answer in answers if answer is not None]


def _ask_group(
    engine: Engine,
    members: Sequence[Participant],
    by_name: dict[str, Effect],
    run: int,
    run_seed: int,
    mode: str,
    persona: bool,
    samples: int,
    name: str,
    rows: list[dict[str, Any]],
    levers: Mapping[str, Prepared],
    scored: Scored,
) -> None:
    """One run of a group of participants: their lead-ins, then all their items."""
    histories = _lead_ins(
        engine, members, by_name, run, run_seed, mode, persona, name, rows, levers, scored
    )
    items: list[tuple[Respondent, Instrument]] = []
    where: list[tuple[Participant, Effect, int, int]] = []
    for participant in members:
        system = participant.persona if persona else ""
        for position, effect_name in enumerate(participant.order):
            effect = by_name[effect_name]
            condition = participant.conditions[effect_name]
            history = histories.get((participant.key, effect_name), ())
            for instrument in effect.measures(condition):
                count = samples if mode == "expected" and isinstance(instrument, Numeric) else 1
                for sample in range(count):
                    key = sample_key(participant.key, sample)
                    items.append((Respondent(key, system, history, name), instrument))
                    where.append((participant, effect, position, sample))
    answers = _ask(engine, items, [w[1].name for w in where], levers, run_seed, scored)
    for answer, (participant, effect, position, sample) in zip(answers, where, strict=True):
        rows.append(
            _row(answer, participant, effect, position, run, sample, "measure", mode, persona)
        )


def _lead_ins(
    engine: Engine,
    members: Sequence[Participant],
    by_name: dict[str, Effect],
    run: int,
    run_seed: int,
    mode: str,
    persona: bool,
    name: str,
    rows: list[dict[str, Any]],
    levers: Mapping[str, Prepared],
    scored: Scored,
) -> dict[tuple[str, str], tuple[Message, ...]]:
    """Ask the lead-ins depth by depth; return each (participant, effect)'s dialogue."""
    histories: dict[tuple[str, str], tuple[Message, ...]] = {}
    depth = 0
    while True:
        items: list[tuple[Respondent, Instrument]] = []
        where: list[tuple[Participant, Effect, int, Instrument]] = []
        for participant in members:
            system = participant.persona if persona else ""
            for position, effect_name in enumerate(participant.order):
                effect = by_name[effect_name]
                leads = effect.lead_ins(participant.conditions[effect_name])
                if depth < len(leads):
                    history = histories.get((participant.key, effect_name), ())
                    respondent = Respondent(participant.key, system, history, name)
                    items.append((respondent, leads[depth]))
                    where.append((participant, effect, position, leads[depth]))
        if not items:
            return histories
        asked = _ask(engine, items, [w[1].name for w in where], levers, run_seed, scored)
        for answer, (participant, effect, position, lead) in zip(asked, where, strict=True):
            key = (participant.key, effect.name)
            histories[key] = (
                *histories.get(key, ()),
                Message(INTERVIEWER, instrument_text(lead)),
                Message(name, answer.text or ""),
            )
            rows.append(
                _row(answer, participant, effect, position, run, 0, "lead_in", mode, persona)
            )
        depth += 1


def _row(
    answer: Answer,
    participant: Participant,
    effect: Effect,
    position: int,
    run: int,
    sample: int,
    role: str,
    mode: str,
    persona: bool,
) -> dict[str, Any]:
    return {
        "participant": participant.key,
        "run": run,
        "effect": effect.name,
        "condition": participant.conditions[effect.name],
        "position": position,
        "item": answer.instrument.split(".", 1)[1],
        "role": role,
        "kind": answer.kind,
        "sample": sample,
        "text": answer.text,
        "value": answer.value,
        "expected": answer.expected,
        "parsed": answer.parsed,
        "options": list(answer.options),
        "probabilities": list(answer.probabilities),
        "mode": mode,
        "persona": persona,
    }
