"""The battery runner: any battery directory, one command, resumable, tidy tables out.

:func:`run_battery` loads and validates a battery, asks it for its units of work,
and runs those not already stored in the output directory, in process, on local
worker processes or on Dask (the sweep's executors). Each finished unit is stored
at once, atomically, under ``OUT/units/<unit_id>/``; a killed run therefore resumes
where it stopped and redoes nothing. When every unit is stored the runner writes
``OUT/<table>.parquet`` (the units' rows in plan order, with ``unit_id`` and
``model`` columns) and, last, ``OUT/manifest.json``.

Numerics do not depend on how a run is executed: every engine uses the same thread
count whatever ``workers`` or the executor, and every unit starts on a cleared
cache. Resuming with settings that change the numbers (options, thread count, the
battery's files) is refused, naming the setting that differs.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import shutil
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import pandas as pd

from simulacra.batteries.base import KINDS, Battery, RunOptions, Unit
from simulacra.errors import ScenarioError, ScenarioIssue, SimulacraError
from simulacra.instruments import asking
from simulacra.llm.cache import get_engine
from simulacra.llm.engine import default_threads
from simulacra.simulation.results import (
    MANIFEST,
    atomic_directory,
    package_versions,
    write_json_atomic,
)
from simulacra.sweep.executors import execute
from simulacra.sweep.progress import Progress, eta_by_kind
from simulacra.sweep.store import locked, write_parquet_atomic

__all__ = [
    "BATTERY_FILE",
    "BatteryResult",
    "battery_kind_of_result",
    "kind_module",
    "load_battery_result",
    "run_battery",
    "validate_battery",
]

BATTERY_FILE = "battery.toml"
UNITS_DIR = "units"
UNIT_FILE = "unit.json"
CONFIG_FILE = "config.json"
_UNIT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


# --------------------------------------------------------------------------- loading


def _battery_kind(directory: Path) -> str:
    """Read ``kind`` from ``DIR/battery.toml``, with errors in the scenario standard."""
    source = str(directory / BATTERY_FILE)
    if not directory.is_dir():
        raise ScenarioError(ScenarioIssue(str(directory), "", "no such battery directory"))
    path = directory / BATTERY_FILE
    if not path.is_file():
        raise ScenarioError(
            ScenarioIssue(str(directory), "", f"a battery directory needs a {BATTERY_FILE}")
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(ScenarioIssue(source, "", f"not valid TOML: {exc}")) from None
    kind = data.get("kind")
    if kind not in KINDS:
        expected = ", ".join(repr(k) for k in sorted(KINDS))
        got = "missing" if kind is None else f"got {kind!r}"
        raise ScenarioError(ScenarioIssue(source, "kind", f"expected one of {expected}; {got}"))
    return str(kind)


def kind_module(kind: str) -> ModuleType:
    """The module implementing a battery kind (``load`` and ``write_report``)."""
    try:
        return importlib.import_module(KINDS[kind])
    except KeyError:
        raise SimulacraError(
            f"unknown battery kind {kind!r}: expected one of {sorted(KINDS)}"
        ) from None


def validate_battery(directory: str | os.PathLike[str]) -> Battery:
    """Load and validate a battery directory.

    Args:
        directory: the battery directory (holding ``battery.toml``).

    Returns:
        The loaded battery.

    Raises:
        ScenarioError: every problem found, each naming the file and the field.
    """
    directory = Path(directory)
    return kind_module(_battery_kind(directory)).load(directory)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BatteryResult:
    """The tables and manifest of a finished battery run.

    Attributes:
        directory: the output directory.
        manifest: ``manifest.json``: kind, battery files, options, models, versions, timings.
        tables: every table by name, one row per observation, with ``unit_id`` and ``model``.
    """

    directory: Path
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]

    @property
    def kind(self) -> str:
        """The battery's kind."""
        return str(self.manifest["battery_kind"])

    def __getitem__(self, name: str) -> pd.DataFrame:
        """A table by name."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r}; the run has {sorted(self.tables)}") from None


def battery_kind_of_result(directory: str | os.PathLike[str]) -> str | None:
    """The battery kind of the run in ``directory``, or None if it holds no battery run.

    Raises:
        SimulacraError: the directory holds an unfinished battery run (it says how to
            resume it).
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        if (directory / CONFIG_FILE).is_file():
            raise SimulacraError(
                f"{directory} holds an unfinished battery run: resume it with "
                f"`simulacra battery run BATTERY_DIR --out {directory}` and the same options"
            )
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    kind = manifest.get("battery_kind")
    return str(kind) if kind is not None else None


def load_battery_result(directory: str | os.PathLike[str]) -> BatteryResult:
    """Read the output directory of a finished :func:`run_battery`.

    Raises:
        SimulacraError: the directory holds no finished battery run.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        hint = (
            " (it holds an unfinished run: run `simulacra battery run` again to finish it)"
            if (directory / CONFIG_FILE).is_file()
            else ""
        )
        raise SimulacraError(f"{directory} is not a finished battery run: no {MANIFEST}{hint}")
    manifest = json.loads(path.read_text())
    if "battery_kind" not in manifest:
        raise SimulacraError(f"{directory} is a run or sweep directory, not a battery run")
    tables = {name: pd.read_parquet(directory / f"{name}.parquet") for name in manifest["tables"]}
    return BatteryResult(directory, manifest, tables)


# --------------------------------------------------------------------------- units


@dataclass(frozen=True)
class _UnitTask:
    """What a worker needs for one unit."""

    directory: str
    unit: Unit
    n_threads: int
    out: str = ""


@dataclass(frozen=True)
class _UnitOutcome:
    """What a worker sends back for one unit."""

    tables: dict[str, pd.DataFrame]
    wall_s: float
    model_sha256: str
    tokens_decoded: int


_BATTERIES: dict[str, Battery] = {}


def _run_unit(task: _UnitTask) -> _UnitOutcome:
    """Run one unit on this process's engine for its model (top level: picklable)."""
    started = time.perf_counter()
    battery = _BATTERIES.get(task.directory)
    if battery is None:
        battery = _BATTERIES[task.directory] = validate_battery(task.directory)
    engine = get_engine(task.unit.model, n_ctx=battery.n_ctx, n_threads=task.n_threads)
    engine.reset()
    decoded = engine.stats.tokens_decoded
    with engine.recomputing_quietly():  # a battery turns the cache over by design
        # a kind whose run_unit takes ``out`` keeps per-run files there (e.g. vectors/)
        takes_out = task.out and "out" in inspect.signature(battery.run_unit).parameters
        extra = {"out": Path(task.out)} if takes_out else {}
        tables = battery.run_unit(task.unit, engine, **extra)
    out = {}
    for name, table in tables.items():
        table = table.copy()
        table.insert(0, "model", task.unit.model)
        table.insert(0, "unit_id", task.unit.unit_id)
        out[name] = table
    return _UnitOutcome(
        out,
        time.perf_counter() - started,
        engine.sha256,
        int(engine.stats.tokens_decoded - decoded),
    )


def _unit_dir(out: Path, unit: Unit) -> Path:
    return out / UNITS_DIR / unit.unit_id


def _store_unit(out: Path, unit: Unit, outcome: _UnitOutcome) -> None:
    """Write one unit's tables and record atomically (all or nothing)."""
    with atomic_directory(_unit_dir(out, unit), overwrite=True) as tmp:
        for name, table in outcome.tables.items():
            table.to_parquet(tmp / f"{name}.parquet", index=False)
        record = {
            "unit_id": unit.unit_id,
            "model": unit.model,
            "params": dict(unit.params),
            "tables": sorted(outcome.tables),
            "wall_s": outcome.wall_s,
            "model_sha256": outcome.model_sha256,
            "tokens_decoded": outcome.tokens_decoded,
        }
        (tmp / UNIT_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))


def _stored(out: Path, unit: Unit) -> dict[str, Any] | None:
    """The record of a stored unit, or None when it has not finished."""
    path = _unit_dir(out, unit) / UNIT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _check_units(units: Sequence[Unit], source: str) -> None:
    seen: set[str] = set()
    for unit in units:
        if not unit.unit_id or set(unit.unit_id) - _UNIT_ID_CHARS or unit.unit_id in seen:
            raise SimulacraError(
                f"{source}: the battery planned a unit id {unit.unit_id!r} that is empty, "
                "repeated or not of [A-Za-z0-9_.-]"
            )
        seen.add(unit.unit_id)


# --------------------------------------------------------------------------- configuration


def _files_sha256(directory: Path) -> dict[str, str]:
    """sha256 of every file of the battery directory, by relative path."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.parts):
            out[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _config(battery: Battery, options: RunOptions, n_threads: int) -> dict[str, Any]:
    """Everything that changes a battery run's numbers, as plain JSON."""
    return {
        "battery_kind": battery.kind,
        "battery_files": _files_sha256(battery.directory),
        "options": options.as_dict(),
        "n_threads": n_threads,
        "n_ctx": battery.n_ctx,
        # How ask groups many respondents lays out the cache (see instruments.ask).
        "ask_group_cells": asking.GROUP_CELLS,
        "ask_group_layout": asking.GROUP_LAYOUT,
        # A kind's own revision of how it computes its numbers, if it has one (absent
        # and None compare equal, so a kind that never had one stays resumable).
        "battery_revision": getattr(battery, "revision", None),
    }


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configurations."""
    keys = sorted(set(old) | set(new))
    diffs = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key} ({a!r} then, {b!r} now)")
    return diffs


def _begin(out: Path, config: Mapping[str, Any]) -> None:
    """Record the run's configuration, or check that a resumed run matches it."""
    path = out / CONFIG_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        diffs = _differences(old, config)
        if diffs:
            raise SimulacraError(
                f"{out} holds a battery run with other settings; resuming would mix results. "
                f"Differs: {'; '.join(diffs)}. Use another --out, or the same settings."
            )
        return
    write_json_atomic(path, config)


def _clean_leftovers(out: Path) -> None:
    """Remove temporary directories and files an interrupted run left behind."""
    for parent in (out, out / UNITS_DIR):
        if parent.is_dir():
            for entry in parent.iterdir():
                if entry.name.startswith(".") and entry.name != ".lock":
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)


def _combine(out: Path, units: Sequence[Unit]) -> list[str]:
    """Write ``OUT/<table>.parquet`` from the stored units, in plan order."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for unit in units:
        directory = _unit_dir(out, unit)
        for name in json.loads((directory / UNIT_FILE).read_text())["tables"]:
            parts.setdefault(name, []).append(pd.read_parquet(directory / f"{name}.parquet"))
    for name, frames in parts.items():
        frames = [f for f in frames if not f.empty] or frames[:1]
        write_parquet_atomic(pd.concat(frames, ignore_index=True), out / f"{name}.parquet")
    return sorted(parts)


# --------------------------------------------------------------------------- running


def _outcomes(
    tasks: Sequence[_UnitTask], workers: int, executor: str, address: str | None
) -> Iterator[tuple[int, _UnitOutcome | None, str | None]]:
    yield from execute(
        _run_unit,
        tasks,
        workers=workers,
        executor=executor,
        address=address,
        preload=("simulacra.batteries.runner",),
    )


def run_battery(
    directory: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> BatteryResult:
    """Run a battery directory into ``out``, resuming a run already there.

    Args:
        directory: the battery directory.
        out: the output directory; created, or resumed when it holds this run.
        options: the command line's choices (design, models, seeds, ...).
        workers: worker processes (1: in this process).
        executor: ``"local"`` processes or ``"dask"``.
        address: a Dask scheduler address (default: a local cluster).
        progress: draw a progress line on ``stream`` (default stderr).
        stream: where progress goes.

    Returns:
        The finished run's tables and manifest.

    Raises:
        ScenarioError: the battery or an option is invalid (nothing is written).
        SimulacraError: ``out`` holds a run with other settings, or units failed
            (the finished ones stay stored; run again to resume).
    """
    if workers < 1:
        raise SimulacraError(f"workers must be >= 1, got {workers}")
    if executor not in ("local", "dask"):
        raise SimulacraError(f"executor must be 'local' or 'dask', got {executor!r}")
    options = options or RunOptions()
    battery = validate_battery(directory)
    units = battery.plan(options)
    _check_units(units, str(Path(directory) / BATTERY_FILE))
    n_threads = options.n_threads or default_threads()
    config = _config(battery, options, n_threads)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SimulacraError(f"{out} exists and is not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with locked(out, what="battery run"):
        _clean_leftovers(out)
        _begin(out, config)
        (out / MANIFEST).unlink(missing_ok=True)  # a resumed run is unfinished until the end
        stored = {unit.unit_id: _stored(out, unit) for unit in units}
        todo = [unit for unit in units if stored[unit.unit_id] is None]
        finished = [
            (unit.model, unit.kind, float(record["wall_s"]))
            for unit in units
            if (record := stored[unit.unit_id]) is not None
        ]
        left = {unit.unit_id: (unit.model, unit.kind) for unit in todo}
        bar = Progress(
            len(units),
            len(units) - len(todo),
            enabled=progress,
            stream=stream,
            label="battery",
            eta=lambda: eta_by_kind(finished, list(left.values()), workers),
        )
        bar.draw()
        tasks = [
            _UnitTask(str(battery.directory.resolve()), unit, n_threads, str(out.resolve()))
            for unit in todo
        ]
        failures = []
        try:
            for index, outcome, error in _outcomes(tasks, workers, executor, address):
                unit = todo[index]
                left.pop(unit.unit_id, None)
                if outcome is None:
                    failures.append(f"{unit.unit_id}: {error}")
                else:
                    _store_unit(out, unit, outcome)
                    finished.append((unit.model, unit.kind, outcome.wall_s))
                bar.update(failed=outcome is None)
        finally:
            bar.close()
        if failures:
            shown = "\n  ".join(failures[:5])
            raise SimulacraError(
                f"{len(failures)} of {len(units)} units failed (finished units are kept; run "
                f"again to resume):\n  {shown}"
            )
        records = [_stored(out, unit) for unit in units]
        names = _combine(out, units)
        models = {r["model"]: r["model_sha256"] for r in records if r is not None}
        manifest = {
            **config,
            "battery_dir": str(battery.directory),
            "battery": battery.describe(),
            "models": models,
            "units": len(units),
            "tables": names,
            "versions": package_versions(),
            "timings": {
                "wall_s": time.perf_counter() - started,
                "units_wall_s": sum(r["wall_s"] for r in records if r is not None),
            },
            "tokens_decoded": sum(r["tokens_decoded"] for r in records if r is not None),
            "python_executable": sys.executable,
        }
        write_json_atomic(out / MANIFEST, manifest)
    return load_battery_result(out)
