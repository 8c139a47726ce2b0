"""Run results: the tidy tables of one run, its manifest, and its directory on disk.

A run directory holds ``manifest.json`` (scenario, seed, model sha256, versions,
timings, token counts), ``transcript.parquet``, ``beliefs.parquet``,
``agents.parquet`` and, when the scenario has probes, ``probes.parquet`` and, with
a regeneration test, ``regeneration.parquet`` and, with ``[projections]``,
``projections.parquet``. It is
written into a temporary sibling directory and renamed into place, so an
interrupted write never leaves a half-written run behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulacra.errors import SimulacraError
from simulacra.simulation.superposition import normalized_entropy

__all__ = [
    "MANIFEST",
    "TABLES",
    "RunResult",
    "atomic_directory",
    "load_run",
    "package_versions",
    "write_json_atomic",
]

MANIFEST = "manifest.json"
TABLES = ("transcript", "beliefs", "agents", "probes", "regeneration", "projections")
_OPTIONAL_TABLES = ("probes", "regeneration", "projections")
_PACKAGES = ("simulacra", "llama_cpp_python", "mesa", "numpy", "pandas", "pyarrow", "matplotlib")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class RunResult:
    """The outcome of one run.

    Attributes:
        run_id: the run's identifier (also a column of every table).
        manifest: the run's provenance: scenario, seed, model, versions, timings.
        transcript: one row per message.
        beliefs: one row per agent × simulacrum × turn (turn 0 is the prior).
        agents: one row per agent: persona mode and assigned persona.
        probes: one row per probe answer option (empty without probes).
        regeneration: one row per regeneration of the regeneration test (empty
            without one; see :mod:`simulacra.analysis.regeneration`).
        projections: one row per utterance, vector and block: the utterance's mean
            activation projected on the vector (empty without ``[projections]``;
            see :mod:`simulacra.simulation.projections`).
    """

    run_id: str
    manifest: dict[str, Any]
    transcript: pd.DataFrame
    beliefs: pd.DataFrame
    agents: pd.DataFrame
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    regeneration: pd.DataFrame = field(default_factory=pd.DataFrame)
    projections: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def seed(self) -> int:
        """The seed the run used."""
        return int(self.manifest["seed"])

    def tables(self) -> dict[str, pd.DataFrame]:
        """The run's tables by name."""
        return {name: getattr(self, name) for name in TABLES}

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the run directory atomically.

        Args:
            directory: where to write it.
            overwrite: replace an existing directory.

        Returns:
            The directory.

        Raises:
            SimulacraError: the directory exists and ``overwrite`` is False.
        """
        target = Path(directory)
        with atomic_directory(target, overwrite=overwrite) as tmp:
            for name, table in self.tables().items():
                if name in _OPTIONAL_TABLES and table.empty:
                    continue
                table.to_parquet(tmp / f"{name}.parquet", index=False)
            (tmp / MANIFEST).write_text(json.dumps(self.manifest, indent=2, sort_keys=True))
        return target

    def summary(self) -> pd.DataFrame:
        """Per agent: MAP simulacrum and normalised entropy at the first and last turn.

        The MAP simulacra are the agent's own (``map_start`` and ``map_end`` of the
        agents table: ties broken by the run's random generator); runs without
        them fall back to the first most probable row.
        """
        own = {}
        if {"map_start", "map_end"} <= set(self.agents.columns):
            own = {
                row.agent: {"first": row.map_start, "last": row.map_end}
                for row in self.agents.itertuples()
            }
        rows = []
        for agent, table in self.beliefs.groupby("agent", sort=False):
            row: dict[str, Any] = {"agent": agent}
            for label, turn in (("first", table["turn"].min()), ("last", table["turn"].max())):
                at = table[table["turn"] == turn]
                probs = at["posterior"].to_numpy(dtype=float)
                fallback = at["simulacrum"].iloc[int(probs.argmax())]
                row[f"map_{label}"] = own.get(agent, {}).get(label, fallback)
                with np.errstate(divide="ignore"):
                    row[f"entropy_{label}"] = normalized_entropy(np.log(probs))
            rows.append(row)
        return pd.DataFrame(rows)


class atomic_directory:  # noqa: N801 - used as a context manager, like tempfile's
    """A context manager yielding a temporary directory renamed to ``target`` on success.

    On an exception the temporary directory is removed and ``target`` is untouched.
    """

    def __init__(self, target: Path, *, overwrite: bool = False) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self._tmp: Path | None = None

    def __enter__(self) -> Path:
        if self.target.exists() and not self.overwrite:
            raise SimulacraError(f"{self.target} already exists; choose another --out or remove it")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent))
        return self._tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._tmp is not None
        if exc_type is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.rename(self.target, old)
        os.rename(self._tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_run(directory: str | os.PathLike[str]) -> RunResult:
    """Read a run directory written by :meth:`RunResult.save`.

    Raises:
        SimulacraError: the directory is missing or is not a complete run.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise SimulacraError(f"{directory} is not a run directory: it has no {MANIFEST}")
    manifest = json.loads(manifest_path.read_text())
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = directory / f"{name}.parquet"
        if path.exists():
            tables[name] = pd.read_parquet(path)
        elif name in _OPTIONAL_TABLES:
            tables[name] = pd.DataFrame()
        else:
            raise SimulacraError(f"{directory} is incomplete: {path.name} is missing")
    return RunResult(run_id=manifest["run_id"], manifest=manifest, **tables)
