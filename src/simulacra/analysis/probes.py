"""Probe answers over a dialogue: option probabilities summarised across runs.

A forced-choice probe (:mod:`simulacra.simulation.probes`) asks an agent a question at chosen
turns and records the probability of each option (averaged over the orders in
which the options were listed). The ``probes`` table holds one row per run, turn,
agent, probe and option (``run_id, turn, agent, probe, option, probability, ...``;
sweeps add the grid columns and ``replicate``). Probes of other kinds (a ``kind``
column other than ``"choice"``: Likert or numeric questions) are left out here.

- :func:`choice_answers`: the rows of choice probes, in a fixed column order;
- :func:`shown_options`: the options worth plotting (one of two, all of more);
- :func:`probe_curves`: per group, probe, agent, option and turn, the mean
  probability over runs with a percentile-bootstrap confidence interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from simulacra.analysis.collapse import bootstrap_ci

__all__ = ["CHOICE_KIND", "PROBE_CURVE_COLUMNS", "choice_answers", "probe_curves", "shown_options"]

CHOICE_KIND = "choice"
"""The ``kind`` of a forced-choice probe; rows of other kinds are ignored."""

_NEEDED: tuple[str, ...] = ("run_id", "turn", "agent", "probe", "option", "probability")

#: Columns :func:`probe_curves` adds after the ``by`` columns.
PROBE_CURVE_COLUMNS: tuple[str, ...] = (
    "probe",
    "agent",
    "option",
    "turn",
    "mean",
    "low",
    "high",
    "n",
)


def choice_answers(probes: pd.DataFrame) -> pd.DataFrame:
    """The rows of choice probes.

    Args:
        probes: a ``probes`` table of a run or a sweep.

    Returns:
        Its rows whose ``kind`` is ``"choice"`` (every row when the table has no
        ``kind`` column), with a numeric ``probability``. Empty when the table is
        empty or lacks one of ``run_id, turn, agent, probe, option, probability``.

    """
    if probes.empty or any(column not in probes.columns for column in _NEEDED):
        return pd.DataFrame(columns=list(_NEEDED))
    rows = probes
    if "kind" in rows.columns:
        rows = rows[rows["kind"] == CHOICE_KIND]
    rows = rows[rows["option"].notna()].copy()
    rows["probability"] = pd.to_numeric(rows["probability"], errors="coerce")
    rows["turn"] = rows["turn"].astype(int)
    return rows.reset_index(drop=True)


def shown_options(options: Sequence[str]) -> list[str]:
    """The options of one probe worth showing: the first of two, else all.

    With two options the second's probability is one minus the first's, so
    showing both repeats the same information.
    """
    options = list(options)
    return options[:1] if len(options) == 2 else options


def _order(values: pd.Series) -> pd.Series:
    """Rank of each value by its first appearance."""
    first = {value: rank for rank, value in enumerate(pd.unique(values))}
    return values.map(first)


def probe_curves(
    probes: pd.DataFrame,
    by: Sequence[str] | str = (),
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean option probability per group, probe, agent, option and turn, with a CI.

    Every run is one observation (a run that has several rows for the same probe,
    agent, option and turn contributes their mean), and the interval is a
    percentile bootstrap of the mean over runs.

    Args:
        probes: a ``probes`` table; rows of non-choice probes are ignored.
        by: grouping columns, e.g. the grid keys of a sweep.
        n_boot: bootstrap resamples per row of the result.
        ci: coverage of the interval.
        seed: seed of the bootstrap (results are reproducible).

    Returns:
        One row per group, probe, agent, option and turn: the ``by`` columns and
        :data:`PROBE_CURVE_COLUMNS` (``n`` is the number of runs). Rows are sorted
        by group, then probe, agent and option in order of first appearance,
        then turn. Empty when there is no choice probe.

    Raises:
        ValueError: if a ``by`` column is missing.

    """
    by = [by] if isinstance(by, str) else list(by)
    rows = choice_answers(probes)
    if rows.empty:
        return pd.DataFrame(columns=[*by, *PROBE_CURVE_COLUMNS])
    missing = [c for c in by if c not in rows.columns]
    if missing:
        raise ValueError(f"probes table lacks column(s) {missing}; has {list(rows.columns)}")
    keys = [*by, "probe", "agent", "option", "turn"]
    per_run = rows.groupby([*keys, "run_id"], sort=False, dropna=False, as_index=False)[
        "probability"
    ].mean()
    rng = np.random.default_rng(seed)
    out = []
    for key, group in per_run.groupby(keys, sort=False, dropna=False):
        values = group["probability"].to_numpy(dtype=float)
        mean, low, high = bootstrap_ci(values, np.mean, n_boot, ci, rng)
        out.append((*key, mean, low, high, int(np.count_nonzero(~np.isnan(values)))))
    table = pd.DataFrame(out, columns=[*keys, "mean", "low", "high", "n"])
    ranks = {column: _order(rows[column]) for column in ("probe", "agent")}
    table["_probe"] = table["probe"].map(dict(zip(rows["probe"], ranks["probe"], strict=True)))
    table["_agent"] = table["agent"].map(dict(zip(rows["agent"], ranks["agent"], strict=True)))
    option_rank = {
        (probe, option): rank
        for probe, options in rows.groupby("probe", sort=False)["option"]
        for rank, option in enumerate(pd.unique(options))
    }
    table["_option"] = [
        option_rank[(p, o)] for p, o in zip(table["probe"], table["option"], strict=True)
    ]
    table = table.sort_values([*by, "_probe", "_agent", "_option", "turn"], kind="stable")
    return table.drop(columns=["_probe", "_agent", "_option"]).reset_index(drop=True)
