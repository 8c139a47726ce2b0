"""Scoring: from the ``answers`` table to per-effect d, criteria and variance, ML1's way.

For each effect, :func:`score_frame` lays the answers out as a score frame (one
row per participant and answer run, the condition, one column per item), applies
the effect's declared scoring steps and names the compared column ``score``. The
answer each cell holds depends on the mode (see
:mod:`simulacra.batteries.replication.interview`): a sampled option (one-hot) or
the option probabilities; a sampled or the expected Likert point; one parsed
number or the mean of the parsed samples.

:func:`summarize` gives, per model and effect, the d of run 0 (the population's
answers) with its CIs and the four criteria, the count of unparsable numeric
answers, and the variance decomposition of the re-asked participants; and, per
model, the across-effect summary. Effects with an ``only`` filter are analysed on
the matching participants when personas were used (a bare model has no country).

Beside each main row (``moderator`` and ``level`` empty) come the effect's subgroup
rows, one per moderator level and one per interaction
(:mod:`simulacra.batteries.replication.subgroups`). Every NaN of a main row is
explained in ``reason`` (:mod:`simulacra.batteries.replication.reasons`). The
across-effect summary counts only main rows with ``in_overall``: effects that are
not exploratory and whose target is the battery's source (a target that names
another ``source`` than the battery's is left out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from simulacra.analysis.moderators import MODERATOR_COLUMNS
from simulacra.analysis.replication import (
    CRITERIA,
    apply_steps,
    effect_criteria,
    effect_statistics,
    overall_summary,
    variance_decomposition,
)
from simulacra.batteries.replication.effects import REPORTED_TAGS, Effect
from simulacra.batteries.replication.reasons import main_row_reason
from simulacra.batteries.replication.subgroups import (
    is_exploratory,
    moderator_rows,
    target_of,
)

__all__ = ["SUMMARY_COLUMNS", "in_overall", "score_frame", "summarize"]

SUMMARY_COLUMNS = (
    "model",
    "mode",
    "persona",
    "effect",
    "moderator",
    "level",
    "title",
    "d",
    "ci_low",
    "ci_high",
    "ci99_low",
    "ci99_high",
    "p",
    "target_d",
    "target_ci_low",
    "target_ci_high",
    "original_d",
    "original_n",
    "d33",
    *CRITERIA,
    "small_telescopes_p",
    "n",
    "n_treatment",
    "n_control",
    "mean_treatment",
    "mean_control",
    "sd_treatment",
    "sd_control",
    "excluded",
    "unparsed",
    "numeric_answers",
    "published_d",
    *REPORTED_TAGS,
    "run_persona_ratio",
    "var_run",
    "var_persona",
    "share_condition",
    "share_persona",
    "share_run",
    "reasked",
    "exploratory",
    "in_overall",
    "reason",
)
"""Columns of ``summary.csv`` (with moderator rows, :data:`SUBGROUP_COLUMNS` follow)."""

SUBGROUP_COLUMNS = tuple(c for c in MODERATOR_COLUMNS if c not in SUMMARY_COLUMNS)
"""The columns only subgroup rows fill, added when an effect has moderators."""


_KEY = ["participant", "run"]


def _item_cells(rows: pd.DataFrame, kind: str, mode: str) -> pd.Series:
    """One item's answers as score-frame cells by (participant, run); see the module docstring."""
    if kind == "numeric":
        parsed = rows[rows["parsed"].fillna(False).astype(bool)]
        if mode == "expected":
            return parsed.groupby(_KEY)["value"].mean().astype(float)
        return parsed[parsed["sample"] == 0].set_index(_KEY)["value"].astype(float)
    first = rows[rows["sample"] == 0].drop_duplicates(_KEY).set_index(_KEY)
    if kind == "likert":
        return first["expected" if mode == "expected" else "value"].astype(float)
    if mode == "expected":
        cells = [
            dict(zip(options, probabilities, strict=True))
            for options, probabilities in zip(first["options"], first["probabilities"], strict=True)
        ]
    else:
        cells = [{text: 1.0} for text in first["text"]]
    return pd.Series(cells, index=first.index, dtype=object)


def score_frame(
    answers: pd.DataFrame,
    effect: Effect,
    mode: str,
    participants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score one effect's answers the way ML1 did.

    Args:
        answers: ``answers`` rows of one model (any effects; lead-ins are ignored).
        effect: the effect.
        mode: ``sampled`` or ``expected``.
        participants: the ``participants`` table, for the effect's ``only`` filter
            (None: no filter).

    Returns:
        One row per participant and run: ``participant, run, condition``, the item
        columns after the scoring steps, and ``score``; sorted.
    """
    rows = answers[(answers["effect"] == effect.name) & (answers["role"] == "measure")]
    if participants is not None and effect.only:
        keep = participants
        for attribute, labels in effect.only.items():
            keep = keep[keep[attribute].isin(labels)]
        rows = rows[rows["participant"].isin(set(keep["participant"]))]
    kinds = {item.name: item.kind for item in effect.items}
    frame = rows.groupby(_KEY, sort=True)["condition"].first().reset_index()
    index = pd.MultiIndex.from_frame(frame[_KEY])
    for item, kind in kinds.items():
        cells = _item_cells(rows[rows["item"] == item], kind, mode)
        frame[item] = cells.reindex(index).to_numpy()
    frame["run"] = frame["run"].astype(int)
    if frame.empty:
        frame["score"] = pd.Series(dtype=float)
        return frame
    frame = apply_steps(frame, effect.steps)
    frame["score"] = frame[effect.score].astype(float)
    return frame


def in_overall(effect: Effect, source: str | None) -> tuple[bool, str]:
    """Whether an effect counts in the across-effect summary, and why not.

    An exploratory effect, one without a target, and one whose target names a
    ``source`` other than the battery's are left out.

    Returns:
        ``(counted, why)``, ``why`` empty when counted.
    """
    target = target_of(effect)
    if is_exploratory(effect):
        return False, "exploratory effect"
    if target is None:
        return False, "no target"
    target_source = getattr(target, "source", None)
    if source and target_source and target_source != source:
        return False, f"its target is from {target_source}, not the battery's source {source}"
    return True, ""


def _criteria(stats: Any, target: Any) -> dict[str, Any]:
    """The target columns and the four criteria (empty without a target)."""
    if target is None:
        return {
            "target_d": math.nan,
            "target_ci_low": math.nan,
            "target_ci_high": math.nan,
            "original_d": math.nan,
            "original_n": math.nan,
            **dict.fromkeys(CRITERIA),
            "d33": math.nan,
            "small_telescopes_p": math.nan,
            "published_d": math.nan,
        }
    criteria = effect_criteria(
        stats,
        target_d=target.d,
        target_ci=target.ci,
        original_d=target.original_d,
        original_n=target.original_n,
    )
    return {
        "target_d": target.d,
        "target_ci_low": target.ci[0],
        "target_ci_high": target.ci[1],
        "original_d": math.nan if target.original_d is None else target.original_d,
        "original_n": math.nan if target.original_n is None else target.original_n,
        **criteria,
        "published_d": math.nan if target.published_d is None else target.published_d,
    }


def _effect_row(
    answers: pd.DataFrame,
    effect: Effect,
    mode: str,
    participants: pd.DataFrame | None,
    source: str | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    frame = score_frame(answers, effect, mode, participants)
    main = frame[frame["run"] == 0]
    treatment = main.loc[main["condition"] == effect.treatment, "score"]
    control = main.loc[main["condition"] == effect.control, "score"]
    stats = effect_statistics(treatment, control)
    target = target_of(effect)
    numeric = answers[
        (answers["effect"] == effect.name)
        & (answers["role"] == "measure")
        & (answers["kind"] == "numeric")
        & (answers["run"] == 0)
    ]
    in_contrast = main["condition"].isin([effect.treatment, effect.control])
    row = {
        "effect": effect.name,
        "moderator": "",
        "level": "",
        "title": effect.title,
        **{k: v for k, v in stats.as_dict().items() if k not in ("t", "df", "se")},
        **_criteria(stats, target),
        "n": stats.n_treatment + stats.n_control,
        "excluded": int((main.loc[in_contrast, "score"].isna()).sum()),
        "unparsed": int((~numeric["parsed"].astype(bool)).sum()) if len(numeric) else 0,
        "numeric_answers": len(numeric),
        **{tag: effect.has_tag(tag) for tag in REPORTED_TAGS},
    }
    reasked = frame.groupby("participant")["run"].nunique()
    reasked_ids = set(reasked[reasked > 1].index)
    variance = variance_decomposition(frame[frame["participant"].isin(reasked_ids)])
    row |= {
        "run_persona_ratio": variance["run_persona_ratio"],
        "var_run": variance["var_run"],
        "var_persona": variance["var_persona"],
        "share_condition": variance["share_condition"],
        "share_persona": variance["share_persona"],
        "share_run": variance["share_run"],
        "reasked": len(reasked_ids),
    }
    exploratory = is_exploratory(effect)
    counted, why = in_overall(effect, source)
    runs = int(answers["run"].max()) + 1 if len(answers) else 1
    reason = main_row_reason(
        row,
        has_target=target is not None,
        exploratory=exploratory,
        unparsed=row["unparsed"],
        runs=runs,
        scored=int(variance["n_participants"]),
    )
    if not counted:
        reason = "; ".join(r for r in (reason, f"not in overall.csv: {why}") if r)
    row |= {"exploratory": exploratory, "in_overall": counted, "reason": reason}
    return row, frame


def summarize(
    answers: pd.DataFrame,
    effects: Sequence[Effect],
    participants: pd.DataFrame | None = None,
    *,
    source: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per model and effect, d, CIs, criteria and variance; per model, the overall summary.

    Args:
        answers: the ``answers`` table (``model`` column optional).
        effects: the battery's effects.
        participants: the ``participants`` table (for ``only`` filters and moderators).
        source: the battery's source (e.g. ``"Many Labs 1"``); an effect whose target
            names another source is left out of the across-effect summary.

    Returns:
        ``(summary, overall, scores)``: per model and effect a main row
        (:data:`SUMMARY_COLUMNS`) followed by its subgroup rows
        (:data:`SUBGROUP_COLUMNS` too, when any effect has moderators); one overall
        row per model over the main rows ``in_overall``; the score frames by
        ``"model/effect"``.
    """
    answers = answers if "model" in answers else answers.assign(model="model")
    summary_rows, overall_rows = [], []
    scores: dict[str, pd.DataFrame] = {}
    for model, group in answers.groupby("model", sort=False):
        mode = str(group["mode"].iloc[0])
        persona = bool(group["persona"].iloc[0])
        people = None
        if persona and participants is not None:
            people = participants
            if "model" in participants:
                people = participants[participants["model"] == model]
        rows = []
        base = {"model": model, "mode": mode, "persona": persona}
        for effect in effects:
            row, frame = _effect_row(group, effect, mode, people, source)
            rows.append(base | row)
            summary_rows.append(base | row)
            about = {"effect": effect.name, "title": effect.title}
            flags = {"exploratory": row["exploratory"], "in_overall": False}
            summary_rows += [
                base | about | subgroup | flags
                for subgroup in moderator_rows(frame, effect, people)
            ]
            scores[f"{model}/{effect.name}"] = frame
        table = pd.DataFrame(rows)
        counted = table[table["in_overall"].astype(bool)]
        overall = overall_summary(
            counted.assign(negative_control=counted["negative_control"].astype(bool))
        )
        ratios = table["run_persona_ratio"].astype(float)
        finite = ratios[np.isfinite(ratios)]
        overall_rows.append(
            base
            | overall
            | {
                "median_run_persona_ratio": float(finite.median()) if len(finite) else math.nan,
                "unparsed": int(table["unparsed"].sum()),
                "numeric_answers": int(table["numeric_answers"].sum()),
                "left_out": ", ".join(table.loc[~table["in_overall"].astype(bool), "effect"]),
            }
        )
    summary = pd.DataFrame(summary_rows)
    columns = list(SUMMARY_COLUMNS)
    if (summary["level"] != "").any():
        columns += SUBGROUP_COLUMNS
    summary = summary[[c for c in columns if c in summary]]
    return summary, pd.DataFrame(overall_rows), scores
