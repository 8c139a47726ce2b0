"""Subgroup rows of a replication ``summary.csv``: the effect per moderator level, the interaction.

For an effect that declares moderators (``[[moderators]]`` in its file,
``effect.moderators``), :func:`moderator_rows` runs
:func:`simulacra.analysis.moderators.moderator_analysis` on run 0's scores (one row
per participant, the participants' attributes joined) and lays out its rows beside
the main effect: one per level and one per compared level with ``level =
"interaction"`` (plus an omnibus row with more than two levels). The statistics and
the columns are those of :mod:`simulacra.analysis.moderators` (``docs/moderators.md``);
a bare model (``--no-persona``) has no attributes, and its rows say so.

:func:`effect_moderators`, :func:`is_exploratory` and :func:`target_of` read an
effect's optional fields whether or not its loader knows them.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from simulacra.analysis.moderators import INTERACTION, Moderator, moderator_analysis

__all__ = [
    "MODERATOR_SEED",
    "effect_moderators",
    "is_exploratory",
    "moderator_rows",
    "target_of",
]

MODERATOR_SEED = 0
"""The bootstrap seed of every moderator analysis (same answers, same intervals)."""
N_BOOT = 2000
"""Bootstrap replicates of the difference of ds."""


def effect_moderators(effect: Any) -> tuple[Moderator, ...]:
    """The effect's moderators (none when its loader has no such field)."""
    return tuple(getattr(effect, "moderators", None) or ())


def is_exploratory(effect: Any) -> bool:
    """Whether the effect is exploratory: its ``exploratory`` field, else its tag."""
    flag = getattr(effect, "exploratory", None)
    if flag is not None:
        return bool(flag)
    return bool(effect.has_tag("exploratory"))


def target_of(effect: Any) -> Any | None:
    """The effect's target, or None (an exploratory effect may have none)."""
    return getattr(effect, "target", None)


def moderator_rows(
    frame: pd.DataFrame,
    effect: Any,
    people: pd.DataFrame | None,
    *,
    n_boot: int = N_BOOT,
) -> list[dict[str, Any]]:
    """The subgroup rows of one effect (empty without moderators).

    Args:
        frame: the effect's score frame (:func:`~.scoring.score_frame`; every run).
        effect: the effect (its treatment, control and moderators).
        people: the ``participants`` table of the answering model, or None (no
            attributes: a bare model).
        n_boot: bootstrap replicates.

    Returns:
        Rows with :data:`~simulacra.analysis.moderators.MODERATOR_COLUMNS` and ``n``,
        in moderator order.
    """
    moderators = effect_moderators(effect)
    if not moderators:
        return []
    main = frame[frame["run"] == 0]
    if people is not None:
        attributes = people.drop_duplicates("participant")
        keep = ["participant", *(m.attribute for m in moderators if m.attribute in attributes)]
        main = main.merge(attributes[list(dict.fromkeys(keep))], on="participant", how="left")
    rows: list[dict[str, Any]] = []
    for moderator in moderators:
        result = moderator_analysis(
            main,
            moderator,
            treatment=effect.treatment,
            control=effect.control,
            n_boot=n_boot,
            seed=MODERATOR_SEED,
        )
        block = result.rows()
        for row in block:
            n_t, n_c = float(row["n_treatment"]), float(row["n_control"])
            row["n"] = int(n_t + n_c) if math.isfinite(n_t + n_c) else math.nan
        levels_n = sum(int(r["n"]) for r in block if r["level"] != INTERACTION and r["n"] == r["n"])
        for row in block:
            if row["level"] == INTERACTION:
                row["n"] = levels_n  # every participant with a level
        rows += block
    return rows
