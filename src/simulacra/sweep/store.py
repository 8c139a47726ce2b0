"""The on-disk sweep directory: layout, locking, atomic tables, resume.

The sweep directory holds:

- ``sweep.json``: the definition (scenario after ``--set``, overrides, grid,
  replicates, seed) and package versions;
- ``runs/<run_id>/``: ordinary run directories, each written atomically;
- ``runs.parquet``: one row per run: ``run_id``, one column per grid key,
  ``replicate``, ``seed``, ``status`` ("done" / "failed"), ``error``, ``wall_s``,
  ``tokens``, and the settings that change a run's numbers: ``n_threads``,
  ``n_ctx``, ``n_gpu_layers``, ``model_sha256``;
- ``transcript.parquet``, ``beliefs.parquet``, ``agents.parquet``,
  ``probes.parquet`` and ``regeneration.parquet``: the runs' tables combined,
  with the grid parameters and ``replicate`` as columns, rebuilt from the run
  directories at the end.

A run counts as done when its directory is complete (:func:`complete_manifest`),
so a killed sweep loses at most the runs in flight. :func:`write_parquet_atomic`
and :func:`locked` are shared with the battery runner.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from simulacra.errors import SweepError
from simulacra.simulation.results import MANIFEST, TABLES, load_run
from simulacra.sweep.grid import RunSpec, plan_runs, sort_key, value_text

__all__ = [
    "COMBINED_TABLES",
    "FORMAT",
    "LOCK_FILE",
    "NUMERICS_COLUMNS",
    "RUNS_DIR",
    "RUNS_TABLE",
    "RUN_COLUMNS",
    "SWEEP_FILE",
    "RunFailure",
    "SweepResult",
    "clean_leftovers",
    "column_kind",
    "combined_tables",
    "complete_manifest",
    "grid_column",
    "load_sweep",
    "locked",
    "read_definition",
    "runs_table",
    "specs_of",
    "write_parquet_atomic",
]

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
RUNS_TABLE = "runs"
COMBINED_TABLES = TABLES
"""The run tables combined across a sweep (each written as ``<name>.parquet``)."""
RUN_COLUMNS = ("status", "error", "wall_s", "tokens")
"""Columns of ``runs.parquet`` after ``run_id``, the grid keys, ``replicate``, ``seed``."""
FORMAT = 1
NUMERICS_COLUMNS: dict[str, tuple[str, str]] = {
    "n_threads": ("n_threads", "Int64"),
    "n_ctx": ("n_ctx", "Int64"),
    "n_gpu_layers": ("n_gpu_layers", "Int64"),
    "model_sha256": ("sha256", "object"),
}
"""Columns of ``runs.parquet`` recording what changes a run's numbers (from its manifest)."""
LOCK_FILE = ".sweep.lock"


@dataclass(frozen=True)
class RunFailure:
    """A run that failed, for the runs table.

    Attributes:
        error: ``Type: message (at file:line)``.
        wall_s: Seconds it ran before failing (NaN if unknown).

    """

    error: str
    wall_s: float = math.nan


def _umask() -> int:
    """The process's file-mode creation mask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_parquet_atomic(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a table through a temporary file and an atomic rename.

    A reader sees the old file or the new one, never a part; a kill leaves at
    most a hidden temporary file (removed by :func:`clean_leftovers`).

    Args:
        frame: The table (written without its index).
        path: The ``.parquet`` file; its directory must exist.

    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(directory: str | os.PathLike[str], *, what: str = "sweep") -> Iterator[None]:
    """Hold an exclusive lock on an output directory (released even on kill -9).

    The lock is the file ``.sweep.lock`` in ``directory``, which must exist.

    Args:
        directory: The directory (a sweep's or a battery run's ``--out``).
        what: What runs there, for the error message.

    Raises:
        SweepError: Another process holds the lock.

    """
    directory = Path(directory)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(directory / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise SweepError(f"another {what} is running in {directory}") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clean_leftovers(directory: Path) -> None:
    """Remove temporary files and directories left by an interrupted sweep."""
    for parent in (directory, directory / RUNS_DIR):
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            if not entry.name.startswith(".") or entry.name == LOCK_FILE:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def complete_manifest(run_dir: Path, spec: RunSpec) -> dict[str, Any] | None:
    """The manifest of a complete run directory for ``spec``, else None."""
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("run_id") != spec.run_id or manifest.get("seed") != spec.seed:
        return None
    if not all((run_dir / f"{name}.parquet").is_file() for name in ("transcript", "beliefs")):
        return None
    return manifest


def column_kind(values: Sequence[Any]) -> str:
    """The column type of a grid key's values: bool, int, float, str, list or text."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "str"
    if all(isinstance(v, list) for v in values):
        return "list"
    return "text"


def grid_column(values: Sequence[Any], kind: str) -> pd.Series:
    """A grid parameter column of a given kind (mixed values become their text)."""
    dtypes = {"bool": bool, "int": "int64", "float": "float64"}
    if kind in dtypes:
        return pd.Series(values, dtype=dtypes[kind])
    if kind == "text":
        values = [value_text(v) for v in values]
    return pd.Series(values, dtype=object)


def runs_table(
    specs: Sequence[RunSpec],
    kinds: Mapping[str, str],
    manifests: Mapping[str, dict[str, Any]],
    failures: Mapping[str, RunFailure],
) -> pd.DataFrame:
    """One row per run: id, parameters, replicate, seed, status, error, wall time, tokens."""
    status, error, wall, tokens = [], [], [], []
    for spec in specs:
        manifest = manifests.get(spec.run_id)
        failure = failures.get(spec.run_id)
        if manifest is not None:
            status.append("done")
            error.append(None)
            wall.append(float(manifest.get("timings", {}).get("wall_s", math.nan)))
            tokens.append(manifest.get("tokens", {}).get("tokens_decoded"))
        else:
            status.append("failed" if failure is not None else "missing")
            error.append(failure.error if failure is not None else None)
            wall.append(failure.wall_s if failure is not None else math.nan)
            tokens.append(None)
    frame = pd.DataFrame({"run_id": [spec.run_id for spec in specs]})
    for key, kind in kinds.items():
        frame[key] = grid_column([spec.params[key] for spec in specs], kind)
    frame["replicate"] = pd.Series([spec.replicate for spec in specs], dtype="int64")
    frame["seed"] = pd.Series([spec.seed for spec in specs], dtype="int64")
    frame["status"] = pd.Series(status, dtype=object)
    frame["error"] = pd.Series(error, dtype=object)
    frame["wall_s"] = pd.Series(wall, dtype="float64")
    frame["tokens"] = pd.Series(tokens, dtype="Int64")
    for column, (setting, dtype) in NUMERICS_COLUMNS.items():
        values = [
            manifests[spec.run_id].get("model", {}).get(setting)
            if spec.run_id in manifests
            else None
            for spec in specs
        ]
        frame[column] = pd.Series(values, dtype=dtype)
    return frame


def combined_tables(
    specs: Sequence[RunSpec], kinds: Mapping[str, str], runs_dir: Path, done: Iterable[str]
) -> dict[str, pd.DataFrame]:
    """The run tables of the completed runs, concatenated with parameter columns."""
    done = set(done)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in COMBINED_TABLES}
    owners: dict[str, list[RunSpec]] = {name: [] for name in COMBINED_TABLES}
    for spec in specs:
        if spec.run_id not in done:
            continue
        result = load_run(runs_dir / spec.run_id)
        for name in COMBINED_TABLES:
            table = getattr(result, name)
            if table.empty and "run_id" not in table.columns:
                continue
            parts[name].append(table)
            owners[name].append(spec)
    combined: dict[str, pd.DataFrame] = {}
    for name in COMBINED_TABLES:
        if parts[name]:
            frame = pd.concat(parts[name], ignore_index=True)
        else:
            frame = pd.DataFrame({"run_id": pd.Series([], dtype=object)})
        lengths = [len(table) for table in parts[name]]
        expanded = [spec for spec, n in zip(owners[name], lengths, strict=True) for _ in range(n)]
        for position, (key, kind) in enumerate(kinds.items(), start=1):
            frame.insert(position, key, grid_column([spec.params[key] for spec in expanded], kind))
        replicates = pd.Series([spec.replicate for spec in expanded], dtype="int64")
        frame.insert(len(kinds) + 1, "replicate", replicates)
        combined[name] = frame
    return combined


@dataclass
class SweepResult:
    """A sweep's tables (see the module docstring for their columns).

    Attributes:
        definition: The contents of ``sweep.json``.
        runs: One row per run, with its status.
        transcript: The transcripts of the completed runs.
        beliefs: Their beliefs.
        agents: Their agents.
        probes: Their probe answers (no rows without probes).
        regeneration: Their regeneration tests (no rows without one).
        projections: Their utterances' projections on persona vectors (no rows
            without ``[projections]``).

    """

    definition: dict[str, Any]
    runs: pd.DataFrame
    transcript: pd.DataFrame
    beliefs: pd.DataFrame
    agents: pd.DataFrame
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    regeneration: pd.DataFrame = field(default_factory=pd.DataFrame)
    projections: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def from_tables(
        cls, definition: dict[str, Any], tables: Mapping[str, pd.DataFrame]
    ) -> SweepResult:
        """Build from tables by name (``runs`` and the combined run tables)."""
        known = {f.name for f in fields(cls)} - {"definition"}
        return cls(definition=definition, **{k: v for k, v in tables.items() if k in known})

    @property
    def grid_keys(self) -> list[str]:
        """The swept keys, which are also columns of every table."""
        return list(self.definition["grid"])

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name: ``runs`` and the combined run tables."""
        names = [f.name for f in fields(self) if f.name != "definition"]
        return {name: getattr(self, name) for name in names}


def read_definition(directory: Path) -> dict[str, Any]:
    """The contents of ``sweep.json``, or SweepError."""
    path = directory / SWEEP_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"{directory} is not a sweep directory: it has no {SWEEP_FILE}") from None
    except (OSError, ValueError) as exc:
        raise SweepError(f"cannot read {path}: {exc}") from exc


def specs_of(definition: Mapping[str, Any]) -> tuple[list[RunSpec], dict[str, str]]:
    """The runs of a stored definition, in table order, and the grid keys' column kinds."""
    grid = definition["grid"]
    specs = plan_runs(
        grid, definition["replicates"], definition["seed"], paired=definition.get("paired", False)
    )
    kinds = {key: column_kind(values) for key, values in grid.items()}
    return sorted(specs, key=lambda spec: sort_key(spec, list(grid))), kinds


def load_sweep(directory: str | os.PathLike[str]) -> SweepResult:
    """Read a sweep directory's tables.

    When the combined tables are missing (a sweep still running, or killed), they
    are rebuilt from the run directories in memory; runs without a complete
    directory then have status ``"missing"``.

    Args:
        directory: The sweep's ``--out`` directory.

    Returns:
        The tables.

    Raises:
        SweepError: ``directory`` is not a sweep directory.

    """
    directory = Path(directory)
    definition = read_definition(directory)
    paths = {name: directory / f"{name}.parquet" for name in (RUNS_TABLE, *COMBINED_TABLES)}
    if all(path.is_file() for path in paths.values()):
        tables = {name: pd.read_parquet(path) for name, path in paths.items()}
        return SweepResult.from_tables(definition, tables)
    specs, kinds = specs_of(definition)
    runs_dir = directory / RUNS_DIR
    manifests = {
        spec.run_id: manifest
        for spec in specs
        if (manifest := complete_manifest(runs_dir / spec.run_id, spec)) is not None
    }
    runs = runs_table(specs, kinds, manifests, {})
    combined = combined_tables(specs, kinds, runs_dir, manifests)
    return SweepResult.from_tables(definition, {RUNS_TABLE: runs, **combined})
