"""Paired differences between grid points of a sweep run with paired seeds.

In a sweep with ``--paired``, replicate ``r`` uses the same random streams at every
grid point: the same persona draws, scheduler choices and sampling seeds, until the
swept setting makes the runs diverge. The run-to-run noise that two grid points
share then cancels in their difference, replicate by replicate, so a comparison
needs far fewer replicates than one between independent runs.

:func:`paired_differences` takes a per-run table (one value per run and, say,
agent: a final entropy, a half-life, a probe answer), matches the runs of each
grid point to the baseline's by replicate, and summarises the differences
``d_r = value(level, r) - value(baseline, r)`` with a percentile-bootstrap
interval over replicates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from simulacra.analysis.collapse import bootstrap_ci

__all__ = ["PAIRED_COLUMNS", "paired_differences"]

#: Columns :func:`paired_differences` adds after the ``by`` columns and ``key``.
PAIRED_COLUMNS: tuple[str, ...] = ("baseline", "difference", "low", "high", "n_pairs")


def paired_differences(
    table: pd.DataFrame,
    value: str,
    key: str,
    baseline: object,
    *,
    pair: Sequence[str] = ("replicate",),
    by: Sequence[str] = (),
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean paired difference of ``value`` between each level of ``key`` and ``baseline``.

    Args:
        table: one row per run (and per whatever ``pair`` adds, e.g. the agent).
        value: the column compared, e.g. ``"normalized_entropy"``.
        key: the grid column whose levels are compared, e.g. ``"belief.beta"``.
        baseline: the level every other level is compared with.
        pair: the columns matching a run to its partner at the baseline; the
            replicate, plus ``"agent"`` when the table has one row per agent.
        by: further columns within which pairs are formed (other grid keys).
        n_boot: bootstrap resamples of the pairs.
        ci: coverage of the interval.
        seed: seed of the bootstrap.

    Returns:
        One row per ``by`` group and level other than the baseline: the ``by``
        columns, ``key``, ``baseline``, ``difference`` (the mean of ``d_r``),
        ``low``, ``high`` and ``n_pairs`` (pairs with both values present). Rows
        follow the order of the levels in ``table``.

    Raises:
        ValueError: on a missing column, a baseline absent from ``table``, or two
            rows for the same pair (a grid key missing from ``by``).

    """
    pair, by = list(pair), list(by)
    needed = [value, key, *pair, *by]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; has {list(table.columns)}")
    if not (table[key] == baseline).any():
        levels = list(pd.unique(table[key]))
        raise ValueError(f"baseline {key} = {baseline!r} is not in the table; levels: {levels}")
    duplicated = table.duplicated([*by, key, *pair], keep=False)
    if duplicated.any():
        example = table.loc[duplicated, [*by, key, *pair]].iloc[0].to_dict()
        raise ValueError(
            f"several rows for the same pair {example}; add the other grid keys to by= "
            "or the agent to pair="
        )
    base = table[table[key] == baseline][[*by, *pair, value]].rename(columns={value: "_base"})
    others = table[table[key] != baseline]
    merged = others.merge(base, on=[*by, *pair], how="inner", sort=False)
    merged["_diff"] = merged[value].astype(float) - merged["_base"].astype(float)
    rng = np.random.default_rng(seed)
    rows = []
    for group_key, group in merged.groupby([*by, key], sort=False, dropna=False):
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        diffs = group["_diff"].to_numpy(dtype=float)
        mean, low, high = bootstrap_ci(diffs, np.mean, n_boot, ci, rng)
        n_pairs = int(np.count_nonzero(~np.isnan(diffs)))
        rows.append((*group_key, baseline, mean, low, high, n_pairs))
    return pd.DataFrame(rows, columns=[*by, key, *PAIRED_COLUMNS])
