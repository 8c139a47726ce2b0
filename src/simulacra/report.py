"""Reports: the figures and summary table of a run or sweep directory, written as files.

:func:`write_report` (``simulacra report DIR --out FIGDIR``) reads a run directory
(``manifest.json``) or a sweep directory (``sweep.json``), computes the collapse
metrics of :mod:`simulacra.analysis.collapse` and writes:

- ``entropy_curves.png``: mean normalised entropy per turn with 95% bootstrap
  bands, one line per grid point (a sweep) or per agent (a run); a sweep with
  several agents gets one file per agent, ``entropy_curves_<agent>.png``;
- ``posterior_heatmap.png``: the posterior of the first run's first agent;
- ``half_life_distribution.png``: the entropy half-life of every run and agent,
  per grid point (and agent, when there are several);
- ``commitment_vs_entropy.png`` and ``regeneration.csv``, when the runs have a
  regeneration test (:mod:`simulacra.analysis.regeneration`): behavioural
  commitment against the belief entropy at the same point;
- ``summary.csv``: per grid point and agent, the median half-life with its
  bootstrap interval (censored runs count as +inf), the share censored, the
  mean final normalised entropy with its interval and, with a regeneration
  test, the mean commitment and belief entropy at the regenerated turns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simulacra.analysis.collapse import (
    belief_metrics,
    bootstrap_ci,
    collapse_curves,
    half_life,
    summarize_half_life,
)
from simulacra.analysis.regeneration import summarize_regeneration
from simulacra.errors import SimulacraError
from simulacra.plots import (
    plot_commitment_vs_entropy,
    plot_entropy_curves,
    plot_half_life_distribution,
    plot_posterior_heatmap,
)
from simulacra.results import MANIFEST, load_run

__all__ = ["ReportData", "load_report_data", "summary_table", "write_report"]

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
DPI = 150
N_BOOT = 2000


@dataclass
class ReportData:
    """The tables a report is drawn from.

    Attributes:
        kind: ``"run"`` or ``"sweep"``.
        beliefs: the beliefs table (with grid columns and ``replicate`` for a sweep).
        agents: the agents table.
        regeneration: the regeneration table (empty without a regeneration test).
        grid_keys: the swept keys (empty for a run).
    """

    kind: str
    beliefs: pd.DataFrame
    agents: pd.DataFrame
    regeneration: pd.DataFrame
    grid_keys: list[str]

    @property
    def agent_names(self) -> list[str]:
        """The agents, in order of first appearance."""
        return list(pd.unique(self.beliefs["agent"]))


def _hashable(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Grid columns holding lists become their text, so they can group."""
    table = table.copy()
    for key in keys:
        if key in table.columns and table[key].map(lambda v: isinstance(v, list)).any():
            table[key] = table[key].map(str)
    return table


def _sweep_regeneration(directory: Path, result: object, keys: list[str]) -> pd.DataFrame:
    """The sweep's regeneration table: combined if the sweep has one, else from its runs."""
    combined = getattr(result, "regeneration", None)
    if isinstance(combined, pd.DataFrame):
        return combined
    runs: pd.DataFrame = result.runs  # type: ignore[attr-defined]
    done = runs[runs["status"] == "done"] if "status" in runs.columns else runs
    info = done[["run_id", *keys, "replicate"]]
    parts = []
    for run_id in done["run_id"]:
        path = directory / RUNS_DIR / str(run_id) / "regeneration.parquet"
        if path.is_file():
            parts.append(pd.read_parquet(path))
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    merged = info.merge(table, on="run_id", how="inner", sort=False)
    return merged[["run_id", *keys, "replicate", *[c for c in table.columns if c != "run_id"]]]


def load_report_data(directory: str | os.PathLike[str]) -> ReportData:
    """Read the tables of a run or sweep directory.

    Raises:
        SimulacraError: the directory is neither, or holds no completed run.
    """
    directory = Path(directory)
    if (directory / SWEEP_FILE).is_file():
        from simulacra.sweep import load_sweep

        result = load_sweep(directory)
        keys = list(getattr(result, "grid_keys", [])) or [
            c
            for c in result.runs.columns
            if c not in ("run_id", "replicate", "seed", "status", "error", "wall_s", "tokens")
        ]
        regeneration = _sweep_regeneration(directory, result, keys)
        data = ReportData(
            "sweep",
            _hashable(result.beliefs, keys),
            result.agents,
            _hashable(regeneration, keys),
            keys,
        )
    elif (directory / MANIFEST).is_file():
        run = load_run(directory)
        data = ReportData("run", run.beliefs, run.agents, run.regeneration, [])
    else:
        raise SimulacraError(
            f"{directory} is neither a run directory ({MANIFEST}) "
            f"nor a sweep directory ({SWEEP_FILE})"
        )
    if data.beliefs.empty:
        raise SimulacraError(f"{directory} holds no completed run to report on")
    return data


def _group_label(table: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One readable label per row from ``columns`` (``key = value, ...``)."""
    if not columns:
        return pd.Series("all runs", index=table.index)
    parts = [table[c].map(lambda v, c=c: f"{c} = {v}") for c in columns]
    label = parts[0]
    for part in parts[1:]:
        label = label + ", " + part
    return label


def summary_table(
    metrics: pd.DataFrame,
    half_lives: pd.DataFrame,
    by: list[str],
    regeneration: pd.DataFrame | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Per group: median half-life with CI, share censored, final entropy, commitment.

    Args:
        metrics: output of :func:`~simulacra.analysis.collapse.belief_metrics`.
        half_lives: output of :func:`~simulacra.analysis.collapse.half_life`.
        by: grouping columns (grid keys and ``agent``).
        regeneration: optional output of
            :func:`~simulacra.analysis.regeneration.summarize_regeneration`.
        seed: bootstrap seed.

    Returns:
        One row per group: ``by``, ``half_life_median``, ``half_life_low``,
        ``half_life_high``, ``share_censored``, ``n``, ``final_entropy_mean``,
        ``final_entropy_low``, ``final_entropy_high`` and, with a regeneration
        table, ``commitment_mean``, ``regen_belief_entropy_mean`` and
        ``regen_n``.
    """
    hl = summarize_half_life(half_lives, by=by, n_boot=N_BOOT, seed=seed).rename(
        columns={"median": "half_life_median", "low": "half_life_low", "high": "half_life_high"}
    )
    last = metrics[metrics["turn"] == metrics.groupby(["run_id", "agent"])["turn"].transform("max")]
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in last.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, *bootstrap_ci(group["normalized_entropy"], np.mean, N_BOOT, rng=rng)))
    final = pd.DataFrame(
        rows, columns=[*by, "final_entropy_mean", "final_entropy_low", "final_entropy_high"]
    )
    out = hl.merge(final, on=by, how="left", sort=False)
    if regeneration is not None and not regeneration.empty:
        regen = (
            regeneration.groupby(by, sort=True, dropna=False)
            .agg(
                commitment_mean=("commitment", "mean"),
                regen_belief_entropy_mean=("belief_entropy", "mean"),
                regen_n=("commitment", "size"),
            )
            .reset_index()
        )
        out = out.merge(regen, on=by, how="left", sort=False)
    return out


def _compact(table: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, str | None]:
    """Join several grouping columns into one, its values one per line, for tick labels."""
    if len(columns) < 2:
        return table, columns[0] if columns else None
    name = ", ".join(columns)
    values = table[columns].astype(str)
    return table.assign(**{name: values.agg("\n".join, axis=1)}), name


def _legend_outside(fig: Figure, n_lines: int) -> None:
    """Move a long legend to the right of the axes so it hides no curve."""
    if n_lines <= 3:
        return
    ax = fig.axes[0]
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    width, height = fig.get_size_inches()
    fig.set_size_inches(width + 4.0, height)


def _save(fig: Figure, path: Path, written: list[Path]) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    written.append(path)


def write_report(directory: str | os.PathLike[str], out: str | os.PathLike[str]) -> list[Path]:
    """Write the figures (PNG) and ``summary.csv`` of a run or sweep directory.

    Args:
        directory: a run directory or a sweep directory.
        out: the folder for the figures (created if needed; files are replaced).

    Returns:
        The paths written, figures first.

    Raises:
        SimulacraError: ``directory`` is neither a run nor a sweep directory, or
            holds no completed run.
    """
    data = load_report_data(directory)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    keys = data.grid_keys
    agents = data.agent_names
    several = len(agents) > 1

    metrics = belief_metrics(data.beliefs, data.agents)
    half_lives = half_life(metrics)

    # entropy curves: grid points as lines (one file per agent), or agents as lines
    if keys and several:
        for agent in agents:
            curves = collapse_curves(
                metrics[metrics["agent"] == agent], by=keys, n_boot=N_BOOT, unit="run"
            )
            fig = plot_entropy_curves(curves, group=keys)
            fig.axes[0].set_title(f"collapse of the superposition: {agent}")
            _legend_outside(fig, curves[keys].drop_duplicates().shape[0])
            _save(fig, out / f"entropy_curves_{agent}.png", written)
    else:
        group = keys or ["agent"]
        curves = collapse_curves(metrics, by=group, n_boot=N_BOOT)
        fig = plot_entropy_curves(curves, group=group)
        _legend_outside(fig, curves[group].drop_duplicates().shape[0])
        _save(fig, out / "entropy_curves.png", written)

    _save(plot_posterior_heatmap(data.beliefs), out / "posterior_heatmap.png", written)

    strips = [*keys, "agent"] if several else keys
    table, column = _compact(half_lives, strips)
    fig = plot_half_life_distribution(table, group=column)
    n_strips = table[column].nunique() if column else 1
    fig.set_size_inches(max(7.5, 1.5 * n_strips + 3.5), 4.5)
    _save(fig, out / "half_life_distribution.png", written)

    regen_summary = None
    if not data.regeneration.empty:
        regen_summary = summarize_regeneration(data.regeneration)
        table = regen_summary.rename(columns={"belief_entropy": "normalized_entropy"})
        table["group"] = _group_label(table, [*keys, "agent"] if several else keys)
        fig = plot_commitment_vs_entropy(table, reference=True)
        ax = fig.axes[0]
        ax.set_xlim(-0.03, 1.03)  # points at 0 or 1 stay whole
        ax.set_ylim(-0.03, 1.03)
        handles, labels = ax.get_legend_handles_labels()
        labels = [label.removeprefix("group = ") for label in labels]
        ax.legend(handles, labels, frameon=False, loc="lower left", fontsize="small")
        _save(fig, out / "commitment_vs_entropy.png", written)
        regen_path = out / "regeneration.csv"
        regen_summary.to_csv(regen_path, index=False)
        written.append(regen_path)

    summary = summary_table(metrics, half_lives, [*keys, "agent"], regen_summary)
    summary_path = out / "summary.csv"
    summary.to_csv(summary_path, index=False)
    written.append(summary_path)
    return written
