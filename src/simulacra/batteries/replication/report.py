"""The replication report: ``summary.csv``, ``overall.csv``, the population and the figures.

:func:`write_report` rebuilds the battery from the file contents the run's manifest
recorded (so the report scores what was run, even if the battery directory has
changed or gone since), scores every effect and writes, atomically:

- ``summary.csv``: one main row per model and effect (d, 95% and 99% CIs, the targets,
  the four criteria, n, unparsed numeric answers, the variance decomposition,
  ``exploratory``, ``in_overall`` and the ``reason`` of every NaN), followed by the
  effect's subgroup rows when it declares moderators (``moderator``, ``level``); an
  ``intervention`` column when an effect caps or steers (:func:`with_interventions`);
- ``overall.csv``: one row per model over the effects counted across effects (r with
  the targets and originals, sign agreement, specificity, effects replicated per
  criterion; ``left_out`` names the others);
- ``composition.csv``: the population's attributes, counts and shares;
- ``congruence.csv``, ``congruence_cells.csv`` and ``anchors.csv`` when effects follow a
  congruence design (:mod:`~simulacra.batteries.replication.congruence_tables`);
- ``effects_vs_ml1.png`` (simulated against the battery source's ds, whatever the
  source; the name is kept for existing readers) and ``variance_ratio.png`` (not
  drawn when no effect has a ratio: nobody re-asked; ``summary.csv`` says why).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd

from simulacra.batteries.replication.battery import BATTERY_FILE, ReplicationBattery, build
from simulacra.batteries.replication.congruence_tables import congruence_tables
from simulacra.batteries.replication.population import composition
from simulacra.batteries.replication.scoring import summarize
from simulacra.errors import SimulacraError
from simulacra.plots.replication import plot_effects_vs_target, plot_variance_ratio

if TYPE_CHECKING:
    from simulacra.batteries.runner import BatteryResult

__all__ = ["battery_of", "battery_source", "write_report"]

DPI = 150


def battery_of(result: BatteryResult) -> ReplicationBattery:
    """The battery a result was run from, rebuilt from its manifest's record.

    Raises:
        SimulacraError: the manifest holds no replication battery record.
    """
    record = result.manifest.get("battery", {})
    if record.get("kind") != "replication" or "files" not in record:
        raise SimulacraError(f"{result.directory}: the manifest holds no replication battery")
    return build(Path(result.manifest.get("battery_dir", ".")), record["files"])


def battery_source(battery: ReplicationBattery) -> str | None:
    """The battery's declared ``source`` (e.g. ``"Many Labs 1"``), or None."""
    source = getattr(battery, "source", None)
    if source is None:
        source = dict(battery.files.get(BATTERY_FILE, {})).get("source")
    return str(source) if source else None


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary sibling file and rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def with_interventions(summary: pd.DataFrame, battery: ReplicationBattery) -> pd.DataFrame:
    """``summary`` with an ``intervention`` column after ``effect`` when an effect has one.

    The cell says what was in force while the effect's respondents answered (e.g.
    ``cap partisan@8,10,12 band neutral``), on the main row and every subgroup row;
    empty for the other effects. Without any intervention the table is unchanged.
    """
    texts = {e.name: e.intervention.text() for e in battery.effects if e.intervention}
    if not texts or summary.empty:
        return summary
    summary = summary.copy()
    column = summary["effect"].map(texts).fillna("")
    summary.insert(summary.columns.get_loc("effect") + 1, "intervention", column)
    return summary


def write_report(result: BatteryResult, figdir: str | os.PathLike[str]) -> list[Path]:
    """Score a replication run and write its tables and figures into ``figdir``.

    Args:
        result: the finished run (:func:`simulacra.batteries.runner.load_battery_result`).
        figdir: the folder for the report (created if needed; files are replaced).

    Returns:
        The paths written, figures first.
    """
    battery = battery_of(result)
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    participants = result.tables.get("participants")
    source = battery_source(battery)
    summary, overall, scores = summarize(
        result["answers"], battery.effects, participants, source=source
    )
    summary = with_interventions(summary, battery)
    tables = [("summary.csv", summary), ("overall.csv", overall)]
    congruence = congruence_tables(summary, scores, battery.effects, participants)
    if congruence is not None:
        names = ("congruence.csv", "congruence_cells.csv", "anchors.csv")
        tables += list(zip(names, congruence, strict=True))
    written = []
    for name, fig in (
        ("effects_vs_ml1.png", plot_effects_vs_target(summary, source)),
        ("variance_ratio.png", plot_variance_ratio(summary)),
    ):
        if fig is None:  # no figure is drawn empty; summary.csv's reason says why
            stale = figdir / name
            stale.unlink(missing_ok=True)
            continue
        written.append(_atomic(figdir / name, lambda p, f=fig: f.savefig(p, dpi=DPI, format="png")))
        plt.close(fig)
    for name, table in tables:
        written.append(_atomic(figdir / name, lambda p, t=table: t.to_csv(p, index=False)))
    if participants is not None:
        people = participants.drop_duplicates("participant")
        table = composition(people, battery.population)
        written.append(
            _atomic(figdir / "composition.csv", lambda p, t=table: t.to_csv(p, index=False))
        )
    return written


def read_summary(figdir: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a written ``summary.csv`` back."""
    return pd.read_csv(Path(figdir) / "summary.csv")
