"""Parameter sweeps: a scenario over a grid of overrides × replicates, resumable.

A sweep runs the full cartesian product of its grid (dotted scenario keys, each
with a list of values, as for ``--set``) times ``replicates`` runs per grid
point.  Every run has a stable id and seed derived from its parameters and
replicate index only (:func:`make_run_id`, :func:`derive_seed`), so adding a
grid value or a replicate leaves the ids and seeds of existing runs unchanged.

The sweep directory holds:

- ``sweep.json``: the definition (scenario after ``--set``, overrides, grid,
  replicates, seed) and package versions;
- ``runs/<run_id>/``: ordinary run directories, each written atomically;
- ``runs.parquet``: one row per run: ``run_id``, one column per grid key,
  ``replicate``, ``seed``, ``status`` ("done" / "failed"), ``error``, ``wall_s``,
  ``tokens``;
- ``transcript.parquet``, ``beliefs.parquet``, ``agents.parquet`` and
  ``probes.parquet``: the runs' tables combined, with the grid parameters and
  ``replicate`` as columns, rebuilt from the run directories at the end.

Running the same sweep again skips the runs whose directory is complete and
redoes the others (missing, interrupted or failed), so a killed sweep loses at
most the runs in flight.  A different definition in the same directory is
refused unless it only adds grid values or replicates.  Runs execute in this
process (one worker), in local worker processes, or on a Dask cluster; each
worker loads a model once (:func:`simulacra.runner.get_engine`) and reuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd

from simulacra import runner
from simulacra.errors import ScenarioError, ScenarioIssue, SweepError
from simulacra.llm.engine import default_threads
from simulacra.results import (
    MANIFEST,
    TABLES,
    RunResult,
    load_run,
    package_versions,
    write_json_atomic,
)
from simulacra.scenario import (
    Scenario,
    _read_toml,
    apply_overrides,
    parse_override,
    parse_override_value,
    parse_scenario,
)

__all__ = [
    "RUNS_DIR",
    "SWEEP_FILE",
    "RunSpec",
    "SweepResult",
    "derive_seed",
    "expand_grid",
    "load_sweep",
    "make_run_id",
    "parse_grid",
    "plan_runs",
    "sweep",
]

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
RUNS_TABLE = "runs"
COMBINED_TABLES = TABLES
"""The run tables combined across a sweep (each written as ``<name>.parquet``)."""
RUN_COLUMNS = ("status", "error", "wall_s", "tokens")
"""Columns of ``runs.parquet`` after ``run_id``, the grid keys, ``replicate``, ``seed``."""
FORMAT = 1
_LOCK_FILE = ".sweep.lock"
_READABLE_MAX = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")

Grid = Mapping[str, Sequence[Any]]
"""A grid: dotted scenario key -> the values it takes."""
Executor = Literal["local", "dask"]


# --------------------------------------------------------------------------- grids


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """Parse command-line ``--grid key=v1,v2,...`` options.

    Values are split on commas outside brackets, braces and quotes, and each is
    parsed like a ``--set`` value (TOML, falling back to a plain string), so
    ``probes[0].turns=[0,2],[0,4]`` gives two lists.

    Args:
        items: The ``--grid`` strings.

    Returns:
        Key -> values, in the order given.

    Raises:
        ScenarioError: A malformed item, an empty value, or a key given twice.

    """
    grid: dict[str, list[Any]] = {}
    issues: list[ScenarioIssue] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            message = f"malformed grid {item!r}: expected key=v1,v2,..., e.g. belief.beta=0.5,1"
            issues.append(ScenarioIssue("--grid", "", message))
            continue
        if key in grid:
            issues.append(ScenarioIssue("--grid", key, "given twice; list all values in one"))
            continue
        texts = _split_values(raw)
        if any(not text for text in texts):
            message = f"empty value in {raw.strip()!r}: expected v1,v2,... with no empty item"
            issues.append(ScenarioIssue("--grid", key, message))
            continue
        grid[key] = [parse_override_value(text) for text in texts]
    if issues:
        raise ScenarioError(issues)
    return grid


def _split_values(text: str) -> list[str]:
    """Split ``text`` on commas that are outside brackets, braces and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def expand_grid(grid: Grid) -> list[dict[str, Any]]:
    """The cartesian product of a grid, in key order then value order.

    Args:
        grid: Key -> values.

    Returns:
        One dict of key -> value per grid point; ``[{}]`` for an empty grid.

    """
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def _canonical(value: Any) -> str:
    """A value as canonical JSON (``1`` and ``1.0`` differ, key order does not)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _run_key(params: Mapping[str, Any], replicate: int) -> bytes:
    """The bytes that identify a run: its parameters (sorted) and replicate index."""
    return _canonical({"params": dict(params), "replicate": int(replicate)}).encode()


def _slug(text: str) -> str:
    """Make ``text`` safe for a file name: runs of other characters become ``_``."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


def _value_text(value: Any) -> str:
    """A short rendering of a grid value for run ids."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    return _canonical(value)


def make_run_id(params: Mapping[str, Any], replicate: int) -> str:
    """A stable, readable, file-name-safe id for a run.

    The id reads ``<key>=<value>_..._rep<r>-<hash8>``: the last segment of each
    key (sorted by full key) with its value, the replicate, and the first 8 hex
    digits of the sha256 of the parameters and replicate, which makes it unique.

    Args:
        params: The run's grid parameters (dotted key -> value).
        replicate: The replicate index (0-based).

    Returns:
        E.g. ``beta=0.5_rep0-1a2b3c4d``.

    """
    digest = hashlib.sha256(_run_key(params, replicate)).hexdigest()[:8]
    parts = [
        f"{_slug(key.rsplit('.', 1)[-1])}={_slug(_value_text(params[key]))}"
        for key in sorted(params)
    ]
    readable = "_".join([*parts, f"rep{int(replicate)}"])
    if len(readable) > _READABLE_MAX:
        readable = readable[:_READABLE_MAX].rstrip("_=.")
    return f"{readable}-{digest}"


def derive_seed(sweep_seed: int, params: Mapping[str, Any], replicate: int) -> int:
    """The seed of one run, from the sweep seed and the run's parameters and replicate.

    A :class:`numpy.random.SeedSequence` keyed by the sweep seed and a hash of
    the parameters and replicate: independent of the other grid values, of the
    number of replicates and of the run order.

    Args:
        sweep_seed: The sweep seed (>= 0).
        params: The run's grid parameters.
        replicate: The replicate index.

    Returns:
        A seed in ``[0, 2**32)``.

    """
    words = np.frombuffer(hashlib.sha256(_run_key(params, replicate)).digest(), dtype="<u4")
    sequence = np.random.SeedSequence(int(sweep_seed), spawn_key=tuple(int(w) for w in words))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
        run_id: Stable id (:func:`make_run_id`), also the run directory's name.
        params: Grid key -> value.
        replicate: Replicate index, from 0.
        seed: The run's seed (:func:`derive_seed`).

    """

    run_id: str
    params: dict[str, Any] = field(hash=False)
    replicate: int
    seed: int


def plan_runs(grid: Grid, replicates: int, seed: int) -> list[RunSpec]:
    """Every run of a sweep: grid points in order, each with its replicates.

    Args:
        grid: Key -> values.
        replicates: Runs per grid point (>= 1).
        seed: The sweep seed.

    Returns:
        The runs, in grid order then replicate order.

    Raises:
        SweepError: Two runs would share an id.

    """
    specs = [
        RunSpec(make_run_id(point, rep), point, rep, derive_seed(seed, point, rep))
        for point in expand_grid(grid)
        for rep in range(replicates)
    ]
    counts = Counter(spec.run_id for spec in specs)
    duplicates = [run_id for run_id, n in counts.items() if n > 1]
    if duplicates:
        raise SweepError(f"run ids collide: {', '.join(duplicates)} (repeated grid values?)")
    return specs


def _sort_key(spec: RunSpec, keys: Sequence[str]) -> tuple[Any, ...]:
    """Deterministic order of runs: by grid values (numbers numerically), replicate, id."""

    def value_key(value: Any) -> tuple[Any, ...]:
        if isinstance(value, bool):
            return (1, int(value), "")
        if isinstance(value, int | float):
            return (0, float(value), _canonical(value))
        if isinstance(value, str):
            return (2, 0.0, value)
        return (3, 0.0, _canonical(value))

    return (*(value_key(spec.params[key]) for key in keys), spec.replicate, spec.run_id)


# --------------------------------------------------------------------------- definition


def _plain(value: Any, where: str) -> Any:
    """A grid value as plain JSON-able data (numpy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ScenarioError(ScenarioIssue("--grid", where, f"value {value} is not finite"))
        return value
    if isinstance(value, list | tuple):
        return [_plain(item, where) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where) for k, v in value.items()}
    message = f"value {value!r} is not a TOML value (a number, string, boolean, array or table)"
    raise ScenarioError(ScenarioIssue("--grid", where, message))


def _normalize_grid(grid: Grid | None, set_keys: Iterable[str]) -> dict[str, list[Any]]:
    """Check a grid's shape and return it as plain data, or raise every problem at once."""
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        raise SweepError(f"grid must map keys to lists of values, got {type(grid).__name__}")
    set_keys = set(set_keys)
    issues: list[ScenarioIssue] = []
    result: dict[str, list[Any]] = {}
    for key, values in grid.items():
        key = str(key).strip()
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            issues.append(ScenarioIssue("--grid", key, "expected a list of values"))
            continue
        if not values:
            issues.append(ScenarioIssue("--grid", key, "needs at least one value"))
            continue
        if key == "seed":
            message = "the seed cannot be swept; use replicates (and the sweep seed) instead"
            issues.append(ScenarioIssue("--grid", key, message))
            continue
        if key in set_keys:
            issues.append(ScenarioIssue("--grid", key, "is also given with --set; keep one"))
            continue
        try:
            plain = [_plain(value, key) for value in values]
        except ScenarioError as err:
            issues.extend(err.issues)
            continue
        texts = [_canonical(value) for value in plain]
        repeated = [text for text, n in Counter(texts).items() if n > 1]
        if repeated:
            issues.append(ScenarioIssue("--grid", key, f"repeated value(s) {', '.join(repeated)}"))
            continue
        result[key] = plain
    if issues:
        raise ScenarioError(issues)
    return result


def _set_overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """``--set`` overrides as a dict of key -> value (later keys win)."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return {str(key): value for key, value in overrides.items()}
    if isinstance(overrides, str):
        overrides = [overrides]
    return dict(parse_override(text) for text in overrides)


def _jsonable(data: Any) -> Any:
    """Round-trip through JSON, so that stored and fresh definitions compare equal."""
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def _validate_points(
    base: Mapping[str, Any], source: str, set_map: Mapping[str, Any], grid: Grid
) -> list[Scenario]:
    """Validate the scenario of every grid point, raising every distinct issue at once.

    Issues that the scenario has without any grid value are reported once, as
    ``simulacra run`` would; the others name the grid value(s) behind them.
    """
    try:
        parse_scenario(base, source, set_map)
        base_issues: set[ScenarioIssue] = set()
    except ScenarioError as err:
        base_issues = set(err.issues)
    scenarios: list[Scenario] = []
    issues: dict[ScenarioIssue, None] = {}
    for point in expand_grid(grid):
        try:
            scenarios.append(parse_scenario(base, source, {**set_map, **point}))
        except ScenarioError as err:
            for issue in err.issues:
                if issue in base_issues:
                    issues[issue] = None
                    continue
                message = issue.message
                for key in point:
                    message = message.replace(f"--set {key}=", f"--grid {key}=")
                if "--grid " not in message and point:
                    at = ", ".join(f"{k}={_canonical(v)}" for k, v in point.items())
                    message += f" (at grid point {at})"
                issues[ScenarioIssue(issue.source, issue.path, message)] = None
    if issues:
        raise ScenarioError(list(issues))
    return scenarios


def _merge_definitions(old: Mapping[str, Any], new: Mapping[str, Any], where: Path) -> dict:
    """The stored definition extended by ``new``, which may only add values or replicates.

    Raises:
        SweepError: Anything else differs; the message says what and how to proceed.

    """
    hint = f"; use another --out, or remove {where} to start over"
    if old.get("format") != FORMAT:
        raise SweepError(f"{where} was written by another version of simulacra (format {hint})")
    if old["overrides"] != new["overrides"]:
        raise SweepError(
            f"the --set overrides differ from those of the sweep in {where} "
            f"(was {_canonical(old['overrides'])}, now {_canonical(new['overrides'])}){hint}"
        )
    if old["scenario"] != new["scenario"]:
        sections = sorted(
            key
            for key in set(old["scenario"]) | set(new["scenario"])
            if old["scenario"].get(key) != new["scenario"].get(key)
        )
        raise SweepError(
            f"the scenario differs from the one the sweep in {where} was started with "
            f"(changed: {', '.join(sections)}){hint}"
        )
    if old["seed"] != new["seed"]:
        raise SweepError(f"the sweep seed differs (was {old['seed']}, now {new['seed']}){hint}")
    if set(old["grid"]) != set(new["grid"]):
        raise SweepError(
            f"the grid keys differ (were {', '.join(old['grid']) or 'none'}, now "
            f"{', '.join(new['grid']) or 'none'}){hint}"
        )
    grid: dict[str, list[Any]] = {}
    for key, values in old["grid"].items():
        fresh = {_canonical(v): v for v in new["grid"][key]}
        missing = [_canonical(v) for v in values if _canonical(v) not in fresh]
        if missing:
            raise SweepError(
                f"grid values of {key} were removed ({', '.join(missing)}); a resumed sweep "
                f"may only add grid values or replicates{hint}"
            )
        known = {_canonical(v) for v in values}
        grid[key] = [*values, *(v for text, v in fresh.items() if text not in known)]
    if new["replicates"] < old["replicates"]:
        raise SweepError(
            f"fewer replicates ({new['replicates']}) than the sweep in {where} already has "
            f"({old['replicates']}); a resumed sweep may only add grid values or replicates{hint}"
        )
    return {**old, "grid": grid, "replicates": new["replicates"]}


# --------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class _Task:
    """What a worker needs for one run."""

    spec: RunSpec
    scenario: Scenario
    n_threads: int | None


@dataclass
class _Outcome:
    """What a worker sends back: the result, or the error."""

    run_id: str
    wall_s: float
    result: RunResult | None = None
    error: str | None = None


_RUN_LOCK = threading.Lock()


def _execute(task: _Task) -> _Outcome:
    """Run one task with this process's cached engine; never raises for a failed run."""
    started = time.perf_counter()
    with _RUN_LOCK:  # an engine serves one run at a time (Dask workers may have threads)
        try:
            engine = runner.get_engine(task.scenario.model, n_threads=task.n_threads)
            result = runner.run(
                task.scenario, seed=task.spec.seed, engine=engine, run_id=task.spec.run_id
            )
        except Exception as exc:
            return _Outcome(task.spec.run_id, time.perf_counter() - started, error=_error(exc))
    return _Outcome(task.spec.run_id, time.perf_counter() - started, result=result)


def _error(exc: BaseException) -> str:
    """An exception as ``Type: message`` with the innermost frame, for the runs table."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno})"
    return text


def _threads(scenario: Scenario, budget: int) -> int:
    """Threads for one worker: its share of the cores, capped by ``model.n_threads``."""
    if scenario.model.n_threads is not None:
        return max(1, min(scenario.model.n_threads, budget))
    return max(1, budget)


def _run_in_process(tasks: Sequence[_Task]) -> Iterator[_Outcome]:
    """Run tasks one after another in this process."""
    for task in tasks:
        yield _execute(task)


def _run_local(tasks: Sequence[_Task], workers: int) -> Iterator[_Outcome]:
    """Run tasks on local worker processes (forkserver where available, else spawn)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["simulacra.sweep"])
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context)
    try:
        futures = {pool.submit(_execute, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # a worker died (BrokenProcessPool) or did not pickle
                yield _Outcome(futures[future].spec.run_id, 0.0, error=_error(exc))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _host_cores() -> tuple[str, int]:
    """This machine's name and usable cores (run on each Dask worker)."""
    import socket

    return socket.gethostname(), default_threads()


def _dask_threads(client: Any) -> int:
    """Threads per run on an existing cluster: the smallest per-host share of cores."""
    info = client.run(_host_cores)
    if not info:
        return 1
    per_host = Counter(host for host, _ in info.values())
    return max(1, min(cores // per_host[host] for host, cores in info.values()))


def _import_dask() -> tuple[Any, Any, Any]:
    """``Client``, ``LocalCluster`` and ``as_completed`` from dask.distributed."""
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_as_completed
    except ImportError as exc:
        raise SweepError(
            "--executor dask needs dask.distributed, which is not installed: "
            "pip install 'simulacra[dask]'"
        ) from exc
    return Client, LocalCluster, dask_as_completed


def _run_dask(
    tasks: Sequence[_Task], workers: int, address: str | None, budget: Callable[[int], list[_Task]]
) -> Iterator[_Outcome]:
    """Run tasks on a Dask cluster: a new LocalCluster, or the scheduler at ``address``.

    ``budget(threads)`` gives the tasks with their thread count set, once the
    cluster's cores are known.  Results come back to this process, which writes
    them, so workers need no shared file system.
    """
    client_cls, cluster_cls, dask_as_completed = _import_dask()
    import logging

    with contextlib.ExitStack() as stack:
        if address:
            try:
                client = stack.enter_context(client_cls(address, timeout="30s"))
            except OSError as exc:
                raise SweepError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
            tasks = budget(_dask_threads(client))
        else:
            cluster = stack.enter_context(
                cluster_cls(
                    n_workers=min(workers, len(tasks)),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(client_cls(cluster))
        stamp = os.urandom(4).hex()
        futures = {}
        for task in tasks:
            key = f"simulacra-{task.spec.run_id}-{stamp}"
            futures[client.submit(_execute, task, key=key, pure=False)] = task
        for future in dask_as_completed(list(futures)):
            try:
                outcome = future.result()
            except Exception as exc:  # a worker died or the task could not be sent
                outcome = _Outcome(futures[future].spec.run_id, 0.0, error=_error(exc))
            future.release()
            yield outcome


# --------------------------------------------------------------------------- progress


class _Progress:
    """A one-line progress bar over runs on stderr: done, failed, remaining, ETA."""

    def __init__(self, total: int, skipped: int, *, enabled: bool, stream: TextIO | None = None):
        self.total = total
        self.skipped = skipped
        self.done = 0
        self.failed = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._width = 0

    def update(self, *, failed: bool = False) -> None:
        """Count one finished run and redraw."""
        if failed:
            self.failed += 1
        else:
            self.done += 1
        self.draw()

    def draw(self) -> None:
        """Write the current line."""
        if not self.enabled:
            return
        finished = self.skipped + self.done + self.failed
        remaining = self.total - finished
        filled = round(24 * finished / max(self.total, 1))
        bar = "#" * filled + "-" * (24 - filled)
        line = (
            f"sweep [{bar}] {finished}/{self.total}  done {self.skipped + self.done}  "
            f"failed {self.failed}  remaining {remaining}"
        )
        ran = self.done + self.failed
        if ran and remaining:
            eta = (time.perf_counter() - self.started) / ran * remaining
            line += f"  eta {_duration(eta)}"
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


# --------------------------------------------------------------------------- directory


def _umask() -> int:
    """The process's file-mode creation mask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a table through a temporary file and an atomic rename."""
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
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on a sweep directory (released even on kill -9)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(directory / _LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise SweepError(f"another sweep is running in {directory}") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clean_leftovers(directory: Path) -> None:
    """Remove temporary files and directories left by an interrupted sweep."""
    for parent in (directory, directory / RUNS_DIR):
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            if not entry.name.startswith(".") or entry.name == _LOCK_FILE:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _manifest(run_dir: Path, spec: RunSpec) -> dict[str, Any] | None:
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


def _kind(values: Sequence[Any]) -> str:
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


def _column(values: Sequence[Any], kind: str) -> pd.Series:
    """A grid parameter column of a given kind (mixed values become their text)."""
    dtypes = {"bool": bool, "int": "int64", "float": "float64"}
    if kind in dtypes:
        return pd.Series(values, dtype=dtypes[kind])
    if kind == "text":
        values = [_value_text(v) for v in values]
    return pd.Series(values, dtype=object)


def _runs_table(
    specs: Sequence[RunSpec],
    kinds: Mapping[str, str],
    manifests: Mapping[str, dict[str, Any]],
    failures: Mapping[str, _Outcome],
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
        frame[key] = _column([spec.params[key] for spec in specs], kind)
    frame["replicate"] = pd.Series([spec.replicate for spec in specs], dtype="int64")
    frame["seed"] = pd.Series([spec.seed for spec in specs], dtype="int64")
    frame["status"] = pd.Series(status, dtype=object)
    frame["error"] = pd.Series(error, dtype=object)
    frame["wall_s"] = pd.Series(wall, dtype="float64")
    frame["tokens"] = pd.Series(tokens, dtype="Int64")
    return frame


def _combined_tables(
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
            frame.insert(position, key, _column([spec.params[key] for spec in expanded], kind))
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

    """

    definition: dict[str, Any]
    runs: pd.DataFrame
    transcript: pd.DataFrame
    beliefs: pd.DataFrame
    agents: pd.DataFrame
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    regeneration: pd.DataFrame = field(default_factory=pd.DataFrame)

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


def _read_definition(directory: Path) -> dict[str, Any]:
    """The contents of ``sweep.json``, or SweepError."""
    path = directory / SWEEP_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"{directory} is not a sweep directory: it has no {SWEEP_FILE}") from None
    except (OSError, ValueError) as exc:
        raise SweepError(f"cannot read {path}: {exc}") from exc


def _specs_of(definition: Mapping[str, Any]) -> tuple[list[RunSpec], dict[str, str]]:
    """The runs of a stored definition, in table order, and the grid keys' column kinds."""
    grid = definition["grid"]
    specs = plan_runs(grid, definition["replicates"], definition["seed"])
    kinds = {key: _kind(values) for key, values in grid.items()}
    return sorted(specs, key=lambda spec: _sort_key(spec, list(grid))), kinds


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
    definition = _read_definition(directory)
    paths = {name: directory / f"{name}.parquet" for name in (RUNS_TABLE, *COMBINED_TABLES)}
    if all(path.is_file() for path in paths.values()):
        tables = {name: pd.read_parquet(path) for name, path in paths.items()}
        return SweepResult.from_tables(definition, tables)
    specs, kinds = _specs_of(definition)
    runs_dir = directory / RUNS_DIR
    manifests = {
        spec.run_id: manifest
        for spec in specs
        if (manifest := _manifest(runs_dir / spec.run_id, spec)) is not None
    }
    runs = _runs_table(specs, kinds, manifests, {})
    combined = _combined_tables(specs, kinds, runs_dir, manifests)
    return SweepResult.from_tables(definition, {RUNS_TABLE: runs, **combined})


# --------------------------------------------------------------------------- sweep


def sweep(
    scenario: str | os.PathLike[str] | Scenario,
    grid: Grid | None = None,
    *,
    replicates: int = 1,
    out: str | os.PathLike[str],
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    seed: int | None = None,
    workers: int = 1,
    executor: Executor = "local",
    address: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run a scenario over a grid × replicates into ``out``, resuming what is there.

    Args:
        scenario: A scenario file, or a Scenario (then keys address its resolved
            form, as for :meth:`Scenario.with_overrides`).
        grid: Dotted key -> values; the sweep is their cartesian product.
        replicates: Runs per grid point (>= 1).
        out: The sweep directory; created, or resumed when it holds this sweep.
        overrides: ``--set`` overrides applied to every run.
        seed: The sweep seed (>= 0); None for the scenario's seed.
        workers: Worker processes (or LocalCluster workers); 1 runs in this
            process.  Each worker runs with ``max(1, cores // workers)`` threads,
            capped by the scenario's ``model.n_threads``.
        executor: ``"local"`` (processes on this machine) or ``"dask"``.
        address: A Dask scheduler address; None starts a LocalCluster.
        progress: Show a progress bar on stderr.

    Returns:
        The runs table (also written to ``out/runs.parquet``); failed runs have
        status ``"failed"`` and their error, and are retried by the next call.

    Raises:
        ScenarioError: The scenario, an override or a grid value is invalid
            (checked for every grid point before anything runs).
        SweepError: Bad sweep settings, or ``out`` holds a different sweep.

    """
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise SweepError(f"replicates must be an integer >= 1, got {replicates!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"workers must be an integer >= 1, got {workers!r}")
    if executor not in ("local", "dask"):
        raise SweepError(f"unknown executor {executor!r}: expected 'local' or 'dask'")
    if address and executor != "dask":
        raise SweepError("--address needs --executor dask")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SweepError(f"the sweep seed must be an integer >= 0, got {seed!r}")
    if executor == "dask":
        _import_dask()

    if isinstance(scenario, Scenario):
        base, source = scenario.to_dict(), scenario.source
    else:
        source = os.fspath(scenario)
        base = _read_toml(Path(source), source)
    set_map = _set_overrides(overrides)
    plain_grid = _normalize_grid(grid, set_map)
    points = expand_grid(plain_grid)
    scenarios = {
        _canonical(point): scenario
        for point, scenario in zip(
            points, _validate_points(base, source, set_map, plain_grid), strict=True
        )
    }
    sweep_seed = next(iter(scenarios.values())).seed if seed is None else seed
    fresh = {
        "format": FORMAT,
        "scenario_source": source,
        "scenario": _jsonable(apply_overrides(base, set_map)),
        "overrides": _jsonable(set_map),
        "grid": plain_grid,
        "replicates": replicates,
        "seed": sweep_seed,
    }

    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise SweepError(f"{directory} exists and is not a directory")
    if directory.is_dir() and not (directory / SWEEP_FILE).exists():
        foreign = [entry.name for entry in directory.iterdir() if entry.name != _LOCK_FILE]
        if foreign:
            raise SweepError(
                f"{directory} exists and is not a sweep directory (no {SWEEP_FILE}); "
                "choose another --out"
            )
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        _clean_leftovers(directory)
        definition = fresh
        if (directory / SWEEP_FILE).exists():
            stored = _read_definition(directory)
            definition = {**_merge_definitions(stored, fresh, directory / SWEEP_FILE)}
        definition.update(
            versions=package_versions(),
            updated=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        definition.setdefault("created", definition["updated"])
        write_json_atomic(directory / SWEEP_FILE, definition)
        return _run_sweep(directory, definition, scenarios, workers, executor, address, progress)


def _run_sweep(
    directory: Path,
    definition: Mapping[str, Any],
    scenarios: Mapping[str, Scenario],
    workers: int,
    executor: Executor,
    address: str | None,
    progress: bool,
) -> pd.DataFrame:
    """Run the missing runs of a stored definition and write the sweep's tables.

    ``scenarios`` holds the validated scenario of every grid point, by
    :func:`_canonical` of the point.
    """
    specs, kinds = _specs_of(definition)
    runs_dir = directory / RUNS_DIR
    runs_dir.mkdir(exist_ok=True)
    manifests: dict[str, dict[str, Any]] = {}
    pending: list[RunSpec] = []
    for spec in plan_runs(definition["grid"], definition["replicates"], definition["seed"]):
        manifest = _manifest(runs_dir / spec.run_id, spec)
        if manifest is None:
            pending.append(spec)
        else:
            manifests[spec.run_id] = manifest

    budget = max(1, default_threads() // workers)

    def tasks_with(threads: int) -> list[_Task]:
        tasks = []
        for spec in pending:
            scenario = scenarios[_canonical(spec.params)]
            tasks.append(_Task(spec, scenario, _threads(scenario, threads)))
        return tasks

    failures: dict[str, _Outcome] = {}
    bar = _Progress(len(specs), len(specs) - len(pending), enabled=progress)
    bar.draw()
    if pending:
        for name in (RUNS_TABLE, *COMBINED_TABLES):  # stale until rebuilt below
            (directory / f"{name}.parquet").unlink(missing_ok=True)
        tasks = tasks_with(budget)
        if executor == "dask":
            outcomes = _run_dask(tasks, workers, address, tasks_with)
        elif workers == 1 or len(tasks) == 1:
            outcomes = _run_in_process(tasks)
        else:
            outcomes = _run_local(tasks, workers)
        for outcome in outcomes:
            spec_dir = runs_dir / outcome.run_id
            if outcome.result is not None:
                try:
                    outcome.result.save(spec_dir, overwrite=True)
                    manifests[outcome.run_id] = outcome.result.manifest
                except Exception as exc:
                    outcome.error = f"saving failed: {_error(exc)}"
                outcome.result = None
            if outcome.error is not None:
                failures[outcome.run_id] = outcome
            bar.update(failed=outcome.error is not None)
    bar.close()

    runs = _runs_table(specs, kinds, manifests, failures)
    combined = _combined_tables(specs, kinds, runs_dir, manifests)
    for name, frame in combined.items():
        _write_parquet_atomic(frame, directory / f"{name}.parquet")
    _write_parquet_atomic(runs, directory / f"{RUNS_TABLE}.parquet")
    if failures and progress:
        print(f"{len(failures)} run(s) failed (retried by the next call):", file=sys.stderr)
        for outcome in list(failures.values())[:10]:
            print(f"  {outcome.run_id}: {outcome.error}", file=sys.stderr)
        if len(failures) > 10:
            print(f"  ... and {len(failures) - 10} more (see runs.parquet)", file=sys.stderr)
    return runs
