"""Congruence tables of a run: ``congruence.csv``, ``congruence_cells.csv``, ``anchors.csv``.

An effect follows a congruence design (:mod:`simulacra.analysis.congruence`) when its
conditions are the design's conditions and one of its moderators has the design's
sides among its levels: the covariance task of ``scenarios/motivated_reasoning``
(:data:`~simulacra.analysis.congruence.KAHAN_DESIGN`, effects
``covariance_detection`` and ``covariance_debiased``) and the evaluation of evidence
(:data:`~simulacra.analysis.congruence.EVIDENCE_DESIGN`). A participant's side is
that moderator's level of its attribute; run 0's scores are analysed. Effects of
one design form one *task*; each effect is one *lever* condition (:func:`lever_of`):
``debiased`` for an effect whose name contains ``debias`` (the debiasing
instruction), its intervention's label for one with an ``[intervention]``
(``capped``, ``steered``), ``plain`` otherwise. A task with two effects of one lever
is analysed effect by effect.

Per model and task, :func:`congruence_tables` gives the table of
:func:`~simulacra.analysis.congruence.congruence_analysis` (``congruence.csv``), the
mean score of every condition x side cell (``congruence_cells.csv``, from
:func:`~simulacra.analysis.congruence.accuracy_table`: every condition and every
level appears, with its n) and the comparison with the published anchors
(``anchors.csv``). A bare model has no side: its task gets one row whose reason says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from simulacra.analysis.congruence import (
    CONGRUENCE_COLUMNS,
    EVIDENCE_DESIGN,
    KAHAN_DESIGN,
    CongruenceDesign,
    accuracy_table,
    anchor_comparison,
    congruence_analysis,
)
from simulacra.analysis.moderators import Moderator
from simulacra.batteries.replication.subgroups import effect_moderators

__all__ = ["DESIGNS", "CongruenceTask", "congruence_tables", "congruence_tasks", "lever_of"]

DESIGNS: Mapping[str, CongruenceDesign] = {
    "covariance_detection": KAHAN_DESIGN,
    "evidence_evaluation": EVIDENCE_DESIGN,
}
"""The congruence designs a battery's effects may follow, by task name."""
DEBIAS_MARK = "debias"
"""An effect whose name contains this holds the answers after the debiasing instruction."""
SEED = 0
"""The congruence bootstrap's seed."""
N_BOOT = 2000
"""Bootstrap replicates."""
KEYS = ("model", "mode", "persona", "task", "effects")
"""The columns every congruence table starts with."""


@dataclass(frozen=True)
class CongruenceTask:
    """Effects analysed together: one design, plain and (optionally) debiased answers.

    Attributes:
        name: the task (a key of :data:`DESIGNS`, or an effect name when split).
        design: the conditions' frames and results, the sides' congenial results.
        effects: ``(effect name, lever, moderator)``: the lever condition
            (:func:`lever_of`); the moderator gives the side.
    """

    name: str
    design: CongruenceDesign
    effects: tuple[tuple[str, str, Moderator], ...]


def _side_moderator(effect: Any, design: CongruenceDesign) -> Moderator | None:
    for moderator in effect_moderators(effect):
        if set(design.sides) <= set(moderator.levels):
            return moderator
    return None


def lever_of(effect: Any) -> str:
    """An effect's lever condition: ``debiased``, its intervention's label, or ``plain``."""
    if DEBIAS_MARK in effect.name:
        return "debiased"
    intervention = getattr(effect, "intervention", None)
    return intervention.label if intervention is not None else "plain"


def congruence_tasks(effects: Sequence[Any]) -> list[CongruenceTask]:
    """The congruence tasks among a battery's effects (see the module docstring)."""
    tasks = []
    for name, design in DESIGNS.items():
        found = []
        for effect in effects:
            moderator = _side_moderator(effect, design)
            if moderator is not None and set(effect.condition_names) == set(design.conditions):
                found.append((effect.name, lever_of(effect), moderator))
        if not found:
            continue
        levers = [lever for _, lever, _ in found]
        if len(set(levers)) == len(levers):
            tasks.append(CongruenceTask(name, design, tuple(found)))
        else:
            tasks += [CongruenceTask(e[0], design, (e,)) for e in found]
    return tasks


def _task_data(
    task: CongruenceTask, scores: Mapping[str, pd.DataFrame], model: str, people: pd.DataFrame
) -> pd.DataFrame:
    """Run 0's answers of the task's effects with ``side`` and ``debiased`` (the lever)."""
    parts = []
    for effect, debiased, moderator in task.effects:
        frame = scores.get(f"{model}/{effect}")
        if frame is None or frame.empty:
            continue
        main = frame[frame["run"] == 0][["participant", "condition", "score"]]
        labels = people.drop_duplicates("participant").set_index("participant")
        if moderator.attribute in labels:
            side = main["participant"].map(labels[moderator.attribute]).map(moderator.level_of)
        else:
            side = pd.Series(None, index=main.index, dtype=object)
        parts.append(main.assign(side=side.astype(object), debiased=debiased))
    if not parts:
        return pd.DataFrame(columns=["participant", "condition", "score", "side", "debiased"])
    return pd.concat(parts, ignore_index=True)


def _no_side(keys: dict[str, Any], reason: str) -> pd.DataFrame:
    row = dict.fromkeys(CONGRUENCE_COLUMNS, math.nan) | {
        "quantity": "congruence",
        "debiased": "plain",
        "frame": "identity",
        "side": "all",
        "scale": "",
        "test": "",
        "interpretable": None,
        "reason": reason,
    }
    return pd.DataFrame([keys | row])


def congruence_tables(
    summary: pd.DataFrame,
    scores: Mapping[str, pd.DataFrame],
    effects: Sequence[Any],
    participants: pd.DataFrame | None,
    *,
    n_boot: int = N_BOOT,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    """``congruence.csv``, ``congruence_cells.csv`` and ``anchors.csv`` of a run.

    Args:
        summary: the run's ``summary.csv`` (for each model's mode and persona use).
        scores: the score frames by ``"model/effect"`` (:func:`~.scoring.summarize`).
        effects: the battery's effects.
        participants: the ``participants`` table (None: no attributes).
        n_boot: bootstrap replicates.

    Returns:
        The three tables, or None when no effect follows a congruence design.
    """
    tasks = congruence_tasks(effects)
    if not tasks:
        return None
    tables: list[pd.DataFrame] = []
    cells: list[pd.DataFrame] = []
    anchors: list[pd.DataFrame] = []
    models = summary.drop_duplicates("model")[["model", "mode", "persona"]]
    for model, mode, persona in models.itertuples(index=False):
        people = participants if participants is not None else pd.DataFrame()
        if "model" in people:
            people = people[people["model"] == model]
        if not bool(persona):
            people = pd.DataFrame()
        for task in tasks:
            keys = {
                "model": model,
                "mode": mode,
                "persona": bool(persona),
                "task": task.name,
                "effects": ", ".join(e for e, _, _ in task.effects),
            }
            if "participant" not in people:
                reason = (
                    "no side: the answers carry no persona attributes (a bare model, --no-persona)"
                )
                tables.append(_no_side(keys, reason))
                continue
            data = _task_data(task, scores, model, people)
            sided = data[data["side"].isin(task.design.sides)]
            if sided.empty:
                tables.append(_no_side(keys, "no participant of either side answered"))
                continue
            table = congruence_analysis(sided, task.design, n_boot=n_boot, seed=SEED)
            tables.append(pd.concat([pd.DataFrame([keys] * len(table)), table], axis=1))
            cell = accuracy_table(sided, task.design)
            cells.append(pd.concat([pd.DataFrame([keys] * len(cell)), cell], axis=1))
            anchor = anchor_comparison(table)
            anchors.append(pd.concat([pd.DataFrame([keys] * len(anchor)), anchor], axis=1))
    return (
        pd.concat(tables, ignore_index=True),
        pd.concat(cells, ignore_index=True) if cells else pd.DataFrame(columns=list(KEYS)),
        pd.concat(anchors, ignore_index=True) if anchors else pd.DataFrame(columns=list(KEYS)),
    )
