"""Synthetic ``answers`` and ``participants`` tables for replication-report tests (no model)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd


def answer_row(participant, effect, condition, item, kind, run=0, sample=0, **fields) -> dict:
    """One row of the ``answers`` table, every column present."""
    row = {
        "participant": participant,
        "run": run,
        "effect": effect,
        "condition": condition,
        "position": 0,
        "item": item,
        "role": "measure",
        "kind": kind,
        "sample": sample,
        "text": None,
        "value": None,
        "expected": None,
        "parsed": None,
        "options": [],
        "probabilities": [],
        "mode": "sampled",
        "persona": True,
    }
    return row | fields


def random_answers(effects: Sequence, n: int = 24, reasked: int = 6, seed: int = 0) -> pd.DataFrame:
    """Random answers of ``n`` participants to every effect, the first ``reasked`` twice.

    Conditions alternate over the effect's first two conditions; one numeric answer in
    seven is unparsed.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for effect in effects:
        for k in range(n):
            condition = effect.condition_names[k % 2]
            for run in (0, 1) if k < reasked else (0,):
                for item in effect.items:
                    rows.append(
                        answer_row(
                            f"p{k:04d}",
                            effect.name,
                            condition,
                            item.name,
                            item.kind,
                            run=run,
                            **_random_cell(item, condition, k, rng),
                        )
                    )
    return pd.DataFrame(rows)


def _random_cell(item, condition: str, k: int, rng: np.random.Generator) -> dict:
    instrument = item.instruments[condition]
    if item.kind == "choice":
        options = list(instrument.options)
        pick = options[int(rng.integers(len(options)))]
        return {
            "text": pick,
            "options": options,
            "probabilities": [1 / len(options)] * len(options),
        }
    if item.kind == "likert":
        point = float(rng.integers(1, instrument.points + 1))
        return {"value": point, "expected": point}
    number = float(rng.integers(1, 30_000))
    return {"value": number, "parsed": bool(k % 7), "text": str(number)}


def coded_answers(
    effect,
    people: pd.DataFrame,
    score: Callable[[str, str, np.random.Generator], int],
    seed: int = 0,
) -> pd.DataFrame:
    """Answers of ``people`` to one single-choice-item effect, the option picked by ``score``.

    Args:
        effect: an effect whose one item is a two-option choice coded by its scoring step.
        people: ``participant``, ``condition`` and the attributes.
        score: ``(condition, politics label, rng) -> 1 or 0``; 1 picks the option coded 1.
        seed: the generator's seed.
    """
    rng = np.random.default_rng(seed)
    (item,) = effect.items
    (step,) = [s for s in effect.steps if getattr(s, "item", None) == item.name]
    rows = []
    for person in people.itertuples(index=False):
        options = list(item.instruments[person.condition].options)
        one = set(step.one[person.condition])
        correct = next(o for o in options if o in one)
        wrong = next(o for o in options if o not in one)
        pick = correct if score(person.condition, person.politics, rng) else wrong
        rows.append(
            answer_row(
                person.participant,
                effect.name,
                person.condition,
                item.name,
                "choice",
                text=pick,
                options=options,
                probabilities=[0.5, 0.5],
            )
        )
    return pd.DataFrame(rows)
