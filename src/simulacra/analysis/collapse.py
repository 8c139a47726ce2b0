"""Collapse of the superposition: metrics of how fast beliefs commit to one persona.

Pure functions from the tidy ``beliefs`` table (``run_id, turn, agent, simulacrum,
loglik, posterior``; sweeps add one column per grid parameter and ``replicate``)
and, optionally, the ``agents`` table (``run_id, agent, persona_mode, assigned``)
to tidy DataFrames:

- :func:`belief_metrics`: per run, agent and turn, the entropy of the posterior
  ``H_t`` (nats), the normalised entropy ``H_t / log K``, the effective number
  ``exp(H_t)``, the information gained since the prior ``KL(pi_t || pi_0)`` and in
  the last step ``KL(pi_t || pi_{t-1})``, the MAP simulacrum and its mass, and the
  mass on the assigned persona.
- :func:`half_life`: per run and agent, the first turn at which the entropy has
  halved, ``t_1/2 = min{t >= 1 : H_t <= H_0 / 2}`` (right-censored when it never
  does), and the turn from which the MAP simulacrum never changes again.
- :func:`bootstrap_ci`, :func:`collapse_curves`, :func:`summarize_half_life`:
  group summaries with percentile-bootstrap confidence intervals.

The quantities follow Shanahan, McDonell & Reynolds ("Role play with large
language models", Nature 2023); ``docs/reading-the-report.md`` defines them for
readers of a report.

Every column of ``beliefs`` other than the six above is a *grouping column* (grid
parameters, ``replicate``, ...). Grouping columns must be constant within each
``(run_id, agent)``; they are carried through to every output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "BELIEF_COLUMNS",
    "HALF_LIFE_COLUMNS",
    "METRIC_COLUMNS",
    "belief_metrics",
    "bootstrap_ci",
    "collapse_curves",
    "half_life",
    "summarize_half_life",
]

#: Columns of the ``beliefs`` table (architecture.md); any other column groups.
BELIEF_COLUMNS: tuple[str, ...] = ("run_id", "turn", "agent", "simulacrum", "loglik", "posterior")

#: Per-turn columns :func:`belief_metrics` adds after the grouping columns and ``turn``.
METRIC_COLUMNS: tuple[str, ...] = (
    "n_simulacra",
    "entropy",
    "normalized_entropy",
    "effective_number",
    "kl_from_prior",
    "info_gain",
    "map_simulacrum",
    "map_mass",
    "assigned_mass",
)

#: Per-(run, agent) columns :func:`half_life` adds after the grouping columns.
HALF_LIFE_COLUMNS: tuple[str, ...] = (
    "h0",
    "half_life",
    "censored",
    "last_turn",
    "commitment_turn",
    "final_map",
)

_AGENT_INFO: tuple[str, ...] = ("persona_mode", "assigned")
_BOOT_CHUNK = 4_000_000  # resampled values held in memory at once


# ------------------------------------------------------------------ helpers


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} table lacks column(s) {missing}; has {list(df.columns)}")


def _group_ids(df: pd.DataFrame, keys: Sequence[str], unit: Sequence[str]) -> np.ndarray:
    """Integer id per row for ``keys``, checking that ``keys`` add nothing to ``unit``.

    Raises:
        ValueError: if a grouping column varies within one ``unit`` group.

    """
    ids = df.groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
    if len(keys) > len(unit):
        n_unit = df.groupby(list(unit), sort=False, dropna=False).ngroups
        if ids.max(initial=-1) + 1 != n_unit:
            extra = [k for k in keys if k not in unit]
            raise ValueError(
                f"grouping columns {extra} vary within a {tuple(unit)} group; "
                "drop or aggregate them first"
            )
    return ids


def _kl_terms(p: np.ndarray, logp: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row terms ``p (log p - log q)`` of a KL divergence; NaN where ``q`` is NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(p > 0, logp - np.log(q), 0.0)
        terms = p * diff
    terms[(p > 0) & (q == 0)] = np.inf
    terms[np.isnan(q)] = np.nan
    return terms


def _resolve_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _quantiles(x: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolation quantiles that stay correct when ``x`` holds infinities."""
    with np.errstate(invalid="ignore"):
        out = np.quantile(x, qs)
    bad = np.isnan(out)
    if bad.any():  # inf - inf inside the interpolation; both neighbours are that inf
        out[bad] = np.quantile(x, np.asarray(qs)[bad], method="lower")
    return out


# ------------------------------------------------------------------ per turn


def belief_metrics(beliefs: pd.DataFrame, agents: pd.DataFrame | None = None) -> pd.DataFrame:
    """Collapse metrics of every agent's posterior at every turn.

    The support of an agent is the set of rows it has at a turn (the beliefs table
    stores one row per simulacrum in the agent's support), so ``K`` is that row
    count. Posteriors are renormalised within each (run, agent, turn) to absorb
    storage rounding. The prior is the posterior at the agent's first recorded
    turn (turn 0).

    Args:
        beliefs: the tidy beliefs table; extra columns (grid parameters,
            ``replicate``) are kept as grouping columns.
        agents: optional agents table; when given, ``persona_mode`` and
            ``assigned`` are joined on ``(run_id, agent)`` and ``assigned_mass``
            is filled in.

    Returns:
        One row per ``(run_id, <grouping columns>, agent, turn)`` with the
        grouping columns, ``turn``, [``persona_mode``, ``assigned`` when
        ``agents`` is given] and :data:`METRIC_COLUMNS`:

        - ``n_simulacra``: ``K``;
        - ``entropy``: ``H_t`` in nats (``0 log 0 = 0``);
        - ``normalized_entropy``: ``H_t / log K`` (0 when ``K == 1``);
        - ``effective_number``: ``exp(H_t)``;
        - ``kl_from_prior``: ``KL(pi_t || pi_0)``;
        - ``info_gain``: ``KL(pi_t || pi_{t-1})``, NaN at the first turn;
        - ``map_simulacrum``, ``map_mass``: the most probable simulacrum (ties go
          to the first row) and its probability;
        - ``assigned_mass``: posterior on the assigned persona, NaN when the agent
          has none (or no ``agents`` table is given).

        Rows are ordered by first appearance of ``(run_id, agent)``, then turn.

    Raises:
        ValueError: on missing columns, NaN or negative posteriors, a group whose
            posterior sums to zero, a simulacrum repeated within a turn, or a
            grouping column that varies within a ``(run_id, agent)``.

    """
    _require(beliefs, ("run_id", "turn", "agent", "simulacrum", "posterior"), "beliefs")
    extras = [c for c in beliefs.columns if c not in BELIEF_COLUMNS]
    keys = ["run_id", *extras, "agent"]

    if len(beliefs) == 0:
        cols = [*keys, "turn", *(_AGENT_INFO if agents is not None else ()), *METRIC_COLUMNS]
        return pd.DataFrame(columns=cols)

    ra = _group_ids(beliefs, keys, ("run_id", "agent"))
    turn = beliefs["turn"].to_numpy()
    order = np.lexsort((turn, ra))  # stable: keeps simulacrum order within a turn
    df = beliefs.iloc[order].reset_index(drop=True)
    ra, turn = ra[order], turn[order]
    p = df["posterior"].to_numpy(dtype=float)
    if np.isnan(p).any() or (p < 0).any():
        raise ValueError("posterior must be non-negative and not NaN")

    # (run, agent, turn) groups are contiguous runs of rows
    new = np.ones(len(df), dtype=bool)
    new[1:] = (ra[1:] != ra[:-1]) | (turn[1:] != turn[:-1])
    starts = np.flatnonzero(new)
    gid = np.cumsum(new) - 1
    n_groups = len(starts)

    total = np.bincount(gid, weights=p, minlength=n_groups)
    if (total <= 0).any():
        raise ValueError("a (run_id, agent, turn) posterior sums to zero")
    p = p / total[gid]
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    plogp = np.where(p > 0, p * np.where(p > 0, logp, 0.0), 0.0)
    k = np.bincount(gid, minlength=n_groups)
    h = -np.bincount(gid, weights=plogp, minlength=n_groups)
    h = np.maximum(h, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_norm = np.where(k > 1, np.minimum(h / np.log(np.maximum(k, 2)), 1.0), 0.0)

    # per-simulacrum identity within (run, agent): the prior and the previous turn
    sim_code, _ = pd.factorize(df["simulacrum"], use_na_sentinel=False)
    n_sim = int(sim_code.max()) + 1
    if np.unique(gid.astype(np.int64) * n_sim + sim_code).size != len(df):
        raise ValueError("a simulacrum appears more than once for an agent at a turn")
    key = ra.astype(np.int64) * n_sim + sim_code
    ra_start = np.r_[True, ra[1:] != ra[:-1]]
    start_row = np.maximum.accumulate(np.where(ra_start, np.arange(len(df)), 0))
    at_first = turn == turn[start_row]
    pos = pd.Index(key[at_first]).get_indexer(key)
    q0 = np.where(pos >= 0, p[at_first][np.maximum(pos, 0)], 0.0)  # absent from prior: 0
    q_prev = np.array(pd.Series(p).groupby(key, sort=False).shift(1), dtype=float)
    q_prev[at_first] = np.nan

    kl0 = np.bincount(gid, weights=_kl_terms(p, logp, q0), minlength=n_groups)
    gain = np.bincount(gid, weights=_kl_terms(p, logp, q_prev), minlength=n_groups)
    kl0, gain = np.maximum(kl0, 0.0), np.where(np.isnan(gain), np.nan, np.maximum(gain, 0.0))

    # MAP: first row holding the group maximum
    gmax = np.maximum.reduceat(p, starts)
    is_max = np.flatnonzero(p == gmax[gid])
    _, first_max = np.unique(gid[is_max], return_index=True)
    map_rows = is_max[first_max]

    out = df.iloc[starts][[*keys, "turn"]].reset_index(drop=True)
    if agents is not None:
        _require(agents, ("run_id", "agent", *_AGENT_INFO), "agents")
        add = [c for c in _AGENT_INFO if c not in out.columns]
        info = agents[["run_id", "agent", *add]].drop_duplicates(["run_id", "agent"])
        out = out.merge(info, on=["run_id", "agent"], how="left", sort=False)
        assigned = out["assigned"].to_numpy(dtype=object)[gid]
        has = pd.notna(out["assigned"]).to_numpy()
        hit = (df["simulacrum"].to_numpy(dtype=object) == assigned) & has[gid]
        mass = np.bincount(gid, weights=np.where(hit, p, 0.0), minlength=n_groups)
        assigned_mass = np.where(has, mass, np.nan)
    else:
        assigned_mass = np.full(n_groups, np.nan)

    out["n_simulacra"] = k
    out["entropy"] = h
    out["normalized_entropy"] = h_norm
    out["effective_number"] = np.exp(h)
    out["kl_from_prior"] = kl0
    out["info_gain"] = gain
    out["map_simulacrum"] = df["simulacrum"].to_numpy()[map_rows]
    out["map_mass"] = gmax
    out["assigned_mass"] = assigned_mass
    return out


# ------------------------------------------------------------------ per run


def _unit_keys(table: pd.DataFrame, own: Sequence[str]) -> list[str]:
    """Return the grouping columns of a table: all but ``turn`` and ``own``."""
    return [c for c in table.columns if c != "turn" and c not in own]


def half_life(metrics: pd.DataFrame) -> pd.DataFrame:
    """Half-life of the entropy and commitment turn of every (run, agent).

    Args:
        metrics: output of :func:`belief_metrics` (needs ``run_id, agent, turn,
            entropy, map_simulacrum``); all columns other than ``turn`` and
            :data:`METRIC_COLUMNS` are kept as grouping columns.

    Returns:
        One row per ``(run_id, <grouping columns>, agent)`` with the grouping
        columns and :data:`HALF_LIFE_COLUMNS`:

        - ``h0``: entropy at the first recorded turn (the prior, turn 0);
        - ``half_life``: first later turn ``t`` with ``H_t <= h0 / 2``; NaN if it
          never happens, and NaN when ``h0 == 0`` (nothing to collapse);
        - ``censored``: True when ``h0 > 0`` and the entropy never halved by
          ``last_turn`` (right-censored observation);
        - ``last_turn``: the last recorded turn;
        - ``commitment_turn``: first turn from which the MAP simulacrum never
          changes again up to ``last_turn`` (the first turn counts, so an agent
          that never changes its MAP has commitment turn 0);
        - ``final_map``: the MAP simulacrum at ``last_turn``.

    Raises:
        ValueError: on missing columns or a grouping column that varies within a
            ``(run_id, agent)``.

    """
    _require(metrics, ("run_id", "agent", "turn", "entropy", "map_simulacrum"), "metrics")
    keys = _unit_keys(metrics, METRIC_COLUMNS)
    if len(metrics) == 0:
        return pd.DataFrame(columns=[*keys, *HALF_LIFE_COLUMNS])

    ra = _group_ids(metrics, keys, ("run_id", "agent"))
    turn = metrics["turn"].to_numpy()
    order = np.lexsort((turn, ra))
    ra, turn = ra[order], turn[order]
    ent = metrics["entropy"].to_numpy(dtype=float)[order]
    maps = metrics["map_simulacrum"].to_numpy(dtype=object)[order]

    new = np.r_[True, ra[1:] != ra[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(ra)] - 1
    gid = np.cumsum(new) - 1

    h0 = ent[starts]
    halved = (ent <= (h0 / 2.0)[gid]) & ~new & (h0[gid] > 0)
    hit_rows = np.flatnonzero(halved)
    hit_gid, first_hit = np.unique(gid[hit_rows], return_index=True)
    half = np.full(len(starts), np.nan)
    half[hit_gid] = turn[hit_rows[first_hit]]

    changed = new.copy()
    changed[1:] |= maps[1:] != maps[:-1]
    changed_rows = np.flatnonzero(changed)
    last_change = changed_rows[np.searchsorted(changed_rows, ends, side="right") - 1]

    out = metrics.iloc[order[starts]][keys].reset_index(drop=True)
    out["h0"] = h0
    out["half_life"] = half
    out["censored"] = np.isnan(half) & (h0 > 0)
    out["last_turn"] = turn[ends]
    out["commitment_turn"] = turn[last_change]
    out["final_map"] = maps[ends]
    return out


# ------------------------------------------------------------------ summaries


def _boot_stats(
    x: np.ndarray, stat: Callable[..., Any], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_boot`` values of ``stat`` on resamples of ``x``, vectorised when possible."""
    n = len(x)
    out = np.empty(n_boot)
    chunk = max(1, _BOOT_CHUNK // n)
    for lo in range(0, n_boot, chunk):
        m = min(chunk, n_boot - lo)
        samples = x[rng.integers(0, n, size=(m, n))]
        try:
            vals = np.asarray(stat(samples, axis=1), dtype=float)
            if vals.shape != (m,):
                raise TypeError
        except TypeError:
            vals = np.array([stat(s) for s in samples], dtype=float)
        out[lo : lo + m] = vals
    return out


def bootstrap_ci(
    values: ArrayLike,
    stat: Callable[..., Any] = np.mean,
    n_boot: int = 2000,
    ci: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval of a statistic.

    NaNs are dropped first. ``stat`` is called as ``stat(samples, axis=1)`` on a
    block of resamples when it accepts ``axis`` (numpy reductions do), otherwise
    once per resample.

    Args:
        values: the observations (any shape; flattened).
        stat: the statistic, e.g. ``np.mean`` or ``np.median``.
        n_boot: number of bootstrap resamples (``>= 1``).
        ci: coverage of the interval, in ``(0, 1)``.
        rng: a generator, a seed, or None for fresh entropy.

    Returns:
        ``(estimate, low, high)``: ``stat`` on the data and the ``(1 - ci) / 2``
        and ``(1 + ci) / 2`` quantiles of the bootstrap distribution. With one
        observation all three equal it; with none, all three are NaN.

    Raises:
        ValueError: if ``n_boot < 1`` or ``ci`` is outside ``(0, 1)``.

    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    estimate = float(stat(x))
    if x.size == 1:
        return (estimate, estimate, estimate)
    boots = _boot_stats(x, stat, n_boot, _resolve_rng(rng))
    boots = boots[~np.isnan(boots)]
    if boots.size == 0:
        return (estimate, np.nan, np.nan)
    low, high = _quantiles(boots, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
    return (estimate, float(low), float(high))


def _check_by(table: pd.DataFrame, by: Sequence[str] | str) -> list[str]:
    by = [by] if isinstance(by, str) else list(by)
    _require(table, by, "input")
    return by


def collapse_curves(
    metrics: pd.DataFrame,
    by: Sequence[str] | str = (),
    metric: str = "normalized_entropy",
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
    unit: Literal["agent", "run"] = "agent",
) -> pd.DataFrame:
    """Mean collapse curve per group with bootstrap confidence bands.

    Args:
        metrics: output of :func:`belief_metrics` (or any table with ``turn``,
            ``metric`` and the ``by`` columns).
        by: grouping columns, e.g. ``("belief.beta",)`` or ``("persona_mode",)``.
        metric: the column to average.
        n_boot: bootstrap resamples per group and turn.
        ci: coverage of the band.
        seed: seed of the bootstrap (results are reproducible).
        unit: what is resampled. ``"agent"`` (default) treats every (run, agent)
            row as one observation; ``"run"`` first averages the agents of each
            run, so that agents of the same run are not counted as independent.

    Returns:
        One row per group and turn: the ``by`` columns, ``turn``, ``mean``,
        ``low``, ``high`` and ``n`` (the number of non-NaN observations).

    """
    by = _check_by(metrics, by)
    _require(metrics, ("turn", metric), "metrics")
    cols = [*by, "turn"]
    data = metrics
    if unit == "run":
        _require(metrics, ("run_id",), "metrics")
        data = metrics.groupby([*cols, "run_id"], sort=False, dropna=False, as_index=False)[
            metric
        ].mean()
    elif unit != "agent":
        raise ValueError(f"unit must be 'agent' or 'run', got {unit!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for key, grp in data.groupby(cols, sort=True, dropna=False):
        vals = grp[metric].to_numpy(dtype=float)
        est, low, high = bootstrap_ci(vals, np.mean, n_boot, ci, rng)
        rows.append((*key, est, low, high, int(np.count_nonzero(~np.isnan(vals)))))
    return pd.DataFrame(rows, columns=[*cols, "mean", "low", "high", "n"])


def summarize_half_life(
    half_lives: pd.DataFrame,
    by: Sequence[str] | str = (),
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Median half-life per group with a bootstrap confidence interval.

    A censored run (the entropy never halved) counts as ``+inf`` for the median,
    i.e. as slower than every run that did halve: the median is unbiased by
    censoring as long as fewer than half the runs are censored, and is ``inf``
    otherwise (likewise for the interval's bounds). Runs whose prior entropy is
    zero (``half_life`` NaN, not censored) are left out.

    Args:
        half_lives: output of :func:`half_life`.
        by: grouping columns.
        n_boot: bootstrap resamples per group.
        ci: coverage of the interval.
        seed: seed of the bootstrap.

    Returns:
        One row per group: the ``by`` columns, ``median``, ``low``, ``high``,
        ``share_censored`` and ``n`` (runs × agents counted).

    """
    by = _check_by(half_lives, by)
    _require(half_lives, ("half_life", "censored"), "half_lives")
    censored = half_lives["censored"].to_numpy(dtype=bool)
    values = np.where(censored, np.inf, half_lives["half_life"].to_numpy(dtype=float))
    data = half_lives[by].assign(_value=values, _censored=censored)
    data = data[~np.isnan(values)]
    rng = np.random.default_rng(seed)
    out_cols = [*by, "median", "low", "high", "share_censored", "n"]
    groups = data.groupby(by, sort=True, dropna=False) if by else [((), data)]
    rows = []
    for key, grp in groups:
        key = key if isinstance(key, tuple) else (key,)
        vals = grp["_value"].to_numpy()
        est, low, high = bootstrap_ci(vals, np.median, n_boot, ci, rng)
        share = float(grp["_censored"].mean()) if len(grp) else np.nan
        rows.append((*key, est, low, high, share, len(grp)))
    return pd.DataFrame(rows, columns=out_cols)
