"""Reports: the figures and summary table of any result directory, written as files.

``simulacra report DIR --out FIGDIR [--run RUN_ID]`` calls :func:`report_directory`,
the one place that tells result kinds apart (:func:`result_kind`) and hands each to
its writer: a battery directory to its kind's ``write_report``
(:mod:`simulacra.batteries.goal_guarding.report`,
:mod:`simulacra.batteries.replication.report`), a run or sweep directory to
:func:`write_report` here.

:func:`write_report` reads a run directory (``manifest.json``) or a sweep directory
(``sweep.json``), computes the collapse metrics of :mod:`simulacra.analysis.collapse`
and writes:

- ``entropy_curves.png``: mean normalised entropy per turn with 95% bootstrap
  bands, one line per grid point (a sweep) or per agent (a run); a sweep with
  several agents gets one file per agent, ``entropy_curves_<agent>.png``;
- ``posterior_heatmap.png``: the posterior of every agent of one run, the first
  run unless ``run_id`` (``--run``) names another; the run is in the title;
- ``half_life_distribution.png``: the entropy half-life of every run and agent,
  per grid point (and agent, when there are several);
- ``probe_<name>.png`` and ``probes.csv``, when the runs have choice probes: the
  probability of each answer over the probed turns, per agent, with 95%
  bootstrap bands across runs (:mod:`simulacra.analysis.probes`);
- ``commitment_vs_entropy.png`` and ``regeneration.csv``, when the runs have a
  regeneration test (:mod:`simulacra.analysis.regeneration`): behavioural
  commitment against the belief entropy at the same point;
- ``paired_differences.csv``, for a sweep run with ``--paired``: per grid key,
  the mean paired difference of the final normalised entropy between each value
  and the key's first value, replicate by replicate
  (:mod:`simulacra.analysis.paired`);
- ``summary.csv``: per grid point and agent, the number of runs (``n_runs``,
  ``few_runs`` when below 3), the median half-life with its bootstrap interval
  (censored runs count as +inf), the share censored, the mean final normalised
  entropy with its interval, each probe's answer probability at each probed turn
  with its interval and, with a regeneration test, the mean commitment and
  belief entropy at the regenerated turns.

Bands and intervals are percentile bootstraps over runs; groups with fewer than
three runs get no band and are marked. ``docs/reading-the-report.md`` defines
every quantity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
from simulacra.analysis.paired import paired_differences
from simulacra.analysis.probes import probe_curves, shown_options
from simulacra.analysis.regeneration import summarize_regeneration
from simulacra.errors import SimulacraError
from simulacra.plots.collapse import (
    MIN_RUNS_FOR_BAND,
    plot_commitment_vs_entropy,
    plot_entropy_curves,
    plot_half_life_distribution,
    plot_posterior_heatmap,
    plot_probe_curves,
)
from simulacra.simulation.results import MANIFEST, load_run

__all__ = [
    "ReportData",
    "heatmap_run",
    "load_report_data",
    "report_directory",
    "result_kind",
    "summary_table",
    "write_report",
]

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
        probes: the probes table (empty without probes).
        paired: whether the sweep was run with paired seeds (``--paired``).
        projections: the projections table (empty without ``[projections]``).
    """

    kind: str
    beliefs: pd.DataFrame
    agents: pd.DataFrame
    regeneration: pd.DataFrame
    grid_keys: list[str]
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    paired: bool = False
    projections: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def run_ids(self) -> list[str]:
        """The runs, in table order."""
        return [str(r) for r in pd.unique(self.beliefs["run_id"])]

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
        probes = getattr(result, "probes", None)
        data = ReportData(
            "sweep",
            _hashable(result.beliefs, keys),
            result.agents,
            _hashable(regeneration, keys),
            keys,
            _hashable(probes if isinstance(probes, pd.DataFrame) else pd.DataFrame(), keys),
            bool(getattr(result, "definition", {}).get("paired", False)),
            _hashable(getattr(result, "projections", pd.DataFrame()), keys),
        )
    elif (directory / MANIFEST).is_file():
        run = load_run(directory)
        data = ReportData("run", run.beliefs, run.agents, run.regeneration, [], run.probes)
        data.projections = run.projections
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


def _probe_columns(curves: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Probe curves as wide columns, one row per ``by`` group.

    Columns are ``probe.<name>.<option>.turn<t>.mean`` (and ``.low``, ``.high``),
    for the options :func:`~simulacra.analysis.probes.shown_options` keeps.
    """
    keep = []
    for probe in pd.unique(curves["probe"]):
        sub = curves[curves["probe"] == probe]
        keep.append(sub[sub["option"].isin(shown_options(list(pd.unique(sub["option"]))))])
    shown = pd.concat(keep, ignore_index=True)
    wide: pd.DataFrame | None = None
    for (probe, option, turn), sub in shown.groupby(["probe", "option", "turn"], sort=False):
        name = f"probe.{probe}.{option}.turn{turn}"
        part = sub[[*by, "mean", "low", "high"]].rename(
            columns={stat: f"{name}.{stat}" for stat in ("mean", "low", "high")}
        )
        wide = part if wide is None else wide.merge(part, on=by, how="outer", sort=False)
    assert wide is not None
    return wide


def summary_table(
    metrics: pd.DataFrame,
    half_lives: pd.DataFrame,
    by: list[str],
    regeneration: pd.DataFrame | None = None,
    seed: int = 0,
    probes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per group: runs, median half-life with CI, share censored, final entropy, probes.

    Args:
        metrics: output of :func:`~simulacra.analysis.collapse.belief_metrics`.
        half_lives: output of :func:`~simulacra.analysis.collapse.half_life`.
        by: grouping columns (grid keys and ``agent``).
        regeneration: optional output of
            :func:`~simulacra.analysis.regeneration.summarize_regeneration`.
        seed: bootstrap seed.
        probes: optional output of :func:`~simulacra.analysis.probes.probe_curves`
            grouped by ``by`` without ``agent``.

    Returns:
        One row per group: ``by``, ``n_runs`` (runs in the group), ``few_runs``
        (fewer than 3: intervals not to be trusted), ``half_life_median``,
        ``half_life_low``, ``half_life_high``, ``share_censored``, ``n``,
        ``final_entropy_mean``, ``final_entropy_low``, ``final_entropy_high``;
        with probes, ``probe.<name>.<option>.turn<t>.mean`` / ``.low`` / ``.high``
        (the first option only of a two-option probe); with a regeneration table,
        ``commitment_mean``, ``regen_belief_entropy_mean`` and ``regen_n``.
    """
    hl = summarize_half_life(half_lives, by=by, n_boot=N_BOOT, seed=seed).rename(
        columns={"median": "half_life_median", "low": "half_life_low", "high": "half_life_high"}
    )
    runs = metrics.groupby(by, sort=True, dropna=False)["run_id"].nunique().rename("n_runs")
    runs = runs.reset_index()
    runs["few_runs"] = runs["n_runs"] < MIN_RUNS_FOR_BAND
    last = metrics[metrics["turn"] == metrics.groupby(["run_id", "agent"])["turn"].transform("max")]
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in last.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, *bootstrap_ci(group["normalized_entropy"], np.mean, N_BOOT, rng=rng)))
    final = pd.DataFrame(
        rows, columns=[*by, "final_entropy_mean", "final_entropy_low", "final_entropy_high"]
    )
    out = runs.merge(hl, on=by, how="left", sort=False).merge(final, on=by, how="left", sort=False)
    if probes is not None and not probes.empty:
        out = out.merge(_probe_columns(probes, by), on=by, how="left", sort=False)
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


def _widen_for_legend(fig: Figure, n_lines: int) -> None:
    """Give a figure with a long legend right of its axes the room to keep them readable."""
    if n_lines > 3:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width + 2.5, height)


def _save(fig: Figure, path: Path, written: list[Path]) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    written.append(path)


def paired_final_entropy(metrics: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Paired differences of the final normalised entropy, for a sweep with paired seeds.

    For every grid key with several values, each value is compared with the key's
    first value, replicate by replicate and agent by agent, within the values of
    the other keys (:func:`~simulacra.analysis.paired.paired_differences`).

    Returns:
        The rows of every key, with columns ``key`` (the compared grid key), the
        grid keys, ``agent``, ``baseline``, ``difference``, ``low``, ``high`` and
        ``n_pairs``; empty when no key has several values.
    """
    last = metrics[metrics["turn"] == metrics.groupby(["run_id", "agent"])["turn"].transform("max")]
    parts = []
    for key in keys:
        levels = list(pd.unique(last[key]))
        if len(levels) < 2:
            continue
        others = [k for k in keys if k != key]
        part = paired_differences(
            last,
            "normalized_entropy",
            key,
            levels[0],
            pair=["replicate"],
            by=[*others, "agent"],
            n_boot=N_BOOT,
        )
        parts.append(part.assign(key=key))
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    first = ["key", *keys, "agent"]
    return table[[*first, *[c for c in table.columns if c not in first]]]


def heatmap_run(data: ReportData, run_id: str | None = None) -> str:
    """The run whose posteriors the heatmap shows: ``run_id``, or the first run.

    Raises:
        SimulacraError: ``run_id`` is not a run of the report's tables.
    """
    runs = data.run_ids
    if run_id is None:
        return runs[0]
    if str(run_id) not in runs:
        shown = ", ".join(runs[:8]) + (f", ... ({len(runs)} runs)" if len(runs) > 8 else "")
        raise SimulacraError(f"--run {run_id}: no completed run with that id; the runs are {shown}")
    return str(run_id)


def _safe_name(text: str) -> str:
    """A file-name-safe version of a probe or agent name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def write_report(
    directory: str | os.PathLike[str] | ReportData,
    out: str | os.PathLike[str],
    *,
    run_id: str | None = None,
) -> list[Path]:
    """Write the figures (PNG), ``summary.csv`` and the tables behind them.

    Args:
        directory: a run directory or a sweep directory, or its
            :func:`load_report_data`.
        out: the folder for the figures (created if needed; files are replaced).
        run_id: the run whose agents the posterior heatmap shows; the first run
            (:func:`heatmap_run`) when None.

    Returns:
        The paths written, figures first.

    Raises:
        SimulacraError: ``directory`` is neither a run nor a sweep directory,
            holds no completed run, or has no run ``run_id``.
    """
    data = directory if isinstance(directory, ReportData) else load_report_data(directory)
    shown_run = heatmap_run(data, run_id)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tables: list[Path] = []
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
            _widen_for_legend(fig, curves[keys].drop_duplicates().shape[0])
            _save(fig, out / f"entropy_curves_{_safe_name(agent)}.png", written)
    else:
        group = keys or ["agent"]
        curves = collapse_curves(metrics, by=group, n_boot=N_BOOT)
        fig = plot_entropy_curves(curves, group=group)
        _widen_for_legend(fig, curves[group].drop_duplicates().shape[0])
        _save(fig, out / "entropy_curves.png", written)

    _save(
        plot_posterior_heatmap(data.beliefs, run_id=shown_run),
        out / "posterior_heatmap.png",
        written,
    )

    strips = [*keys, "agent"] if several else keys
    table, column = _compact(half_lives, strips)
    fig = plot_half_life_distribution(table, group=column)
    n_strips = table[column].nunique() if column else 1
    fig.set_size_inches(max(7.5, 1.5 * n_strips + 3.5), 4.5)
    _save(fig, out / "half_life_distribution.png", written)

    probes = probe_curves(data.probes, by=keys, n_boot=N_BOOT) if not data.probes.empty else None
    if probes is not None and not probes.empty:
        for probe in pd.unique(probes["probe"]):
            fig = plot_probe_curves(probes, probe=probe, group=keys or None)
            _save(fig, out / f"probe_{_safe_name(probe)}.png", written)
        probes_path = out / "probes.csv"
        probes.to_csv(probes_path, index=False)
        tables.append(probes_path)
    else:
        probes = None

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
        tables.append(regen_path)

    if not data.projections.empty:
        from simulacra.plots.projections import plot_projections

        _save(plot_projections(data.projections, keys), out / "projections.png", written)

    if data.paired and keys and "replicate" in metrics.columns:
        paired = paired_final_entropy(metrics, keys)
        if not paired.empty:
            paired_path = out / "paired_differences.csv"
            paired.to_csv(paired_path, index=False)
            tables.append(paired_path)

    summary = summary_table(metrics, half_lives, [*keys, "agent"], regen_summary, probes=probes)
    summary_path = out / "summary.csv"
    summary.to_csv(summary_path, index=False)
    return [*written, *tables, summary_path]


def result_kind(directory: str | os.PathLike[str]) -> str:
    """What kind of result ``directory`` holds: ``"run"``, ``"sweep"`` or a battery kind.

    Raises:
        SimulacraError: the directory holds none of them.
    """
    from simulacra.batteries.runner import battery_kind_of_result

    path = Path(directory)
    kind = battery_kind_of_result(path)
    if kind is not None:
        return kind
    if (path / SWEEP_FILE).is_file():
        return "sweep"
    if (path / MANIFEST).is_file():
        return "run"
    raise SimulacraError(
        f"{path} is neither a run directory (manifest.json), a sweep directory "
        f"({SWEEP_FILE}) nor a battery output directory"
    )


def report_directory(
    directory: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    run_id: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write the report of any result directory, by its kind (:func:`result_kind`).

    Args:
        directory: a run, sweep or battery output directory.
        out: the folder for the figures and tables (created).
        run_id: for a sweep, the run whose posteriors the heatmap shows.

    Returns:
        The paths written, and notes for the terminal: ``verdict: ...`` lines saying
        what the result found (:mod:`simulacra.analysis.verdicts`), then any others.
    """
    kind = result_kind(directory)
    notes: list[str] = []
    if kind in ("run", "sweep"):
        data = load_report_data(directory)
        shown = heatmap_run(data, run_id)
        written = write_report(data, out, run_id=shown)
        notes += _verdicts(kind, Path(out), {})
        if len(data.run_ids) > 1:
            notes.append(
                f"posterior_heatmap.png shows run {shown}"
                + ("" if run_id else " (the first); choose another with --run RUN_ID")
            )
        return written, notes
    from simulacra.batteries.runner import kind_module, load_battery_result

    result = load_battery_result(directory)
    figdir = Path(out)
    figdir.mkdir(parents=True, exist_ok=True)
    written = kind_module(result.kind).write_report(result, figdir)
    facts = {"manifest": result.manifest, "participants": result.tables.get("participants")}
    return written, notes + _verdicts(result.kind, figdir, facts)


def _verdicts(kind: str, figdir: Path, facts: dict[str, object]) -> list[str]:
    """The ``verdict: ...`` lines of a written report, from its summary tables."""
    from simulacra.analysis import verdicts

    summary_path = figdir / "summary.csv"
    if not summary_path.is_file():
        return []
    summary = pd.read_csv(summary_path)
    if kind in ("run", "sweep"):
        lines = verdicts.collapse_verdicts(summary, kind)
    elif kind == "goal_guarding":
        path = figdir / "beliefs_summary.csv"
        beliefs = pd.read_csv(path) if path.is_file() else None
        lines = verdicts.goal_guarding_verdicts(summary, beliefs)
        from simulacra.batteries.goal_guarding.report import figure_gaps

        gaps = figure_gaps(summary, beliefs)
        lines += [f"{name} not drawn: {why}" for name, why in gaps.items()]
    elif kind == "replication":
        manifest = facts.get("manifest") or {}
        variance = (manifest.get("battery") or {}).get("variance")  # type: ignore[union-attr]
        people = facts.get("participants")
        m = (
            int(people["participant"].nunique())
            if isinstance(people, pd.DataFrame) and "participant" in people
            else None
        )
        lines = verdicts.replication_verdicts(summary, variance, m)
    else:
        return []
    return [f"verdict ({kind}): {line}" for line in lines]
