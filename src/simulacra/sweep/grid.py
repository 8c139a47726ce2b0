"""Grids, run ids and seeds: what runs a sweep is made of.

A sweep runs the full cartesian product of its grid (dotted scenario keys, each
with a list of values, as for ``--set``) times ``replicates`` runs per grid
point. Every run has a stable id and seed derived from its parameters and
replicate index only (:func:`make_run_id`, :func:`derive_seed`), so adding a
grid value or a replicate leaves the ids and seeds of existing runs unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulacra.errors import ScenarioError, ScenarioIssue, SweepError
from simulacra.scenario import parse_override_value

__all__ = [
    "Grid",
    "RunSpec",
    "canonical",
    "derive_seed",
    "expand_grid",
    "make_run_id",
    "parse_grid",
    "plan_runs",
    "sort_key",
    "value_text",
]

_READABLE_MAX = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")

Grid = Mapping[str, Sequence[Any]]
"""A grid: dotted scenario key -> the values it takes."""


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


def canonical(value: Any) -> str:
    """A value as canonical JSON (``1`` and ``1.0`` differ, key order does not)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _run_key(params: Mapping[str, Any], replicate: int) -> bytes:
    """The bytes that identify a run: its parameters (sorted) and replicate index."""
    return canonical({"params": dict(params), "replicate": int(replicate)}).encode()


def _slug(text: str) -> str:
    """Make ``text`` safe for a file name: runs of other characters become ``_``."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


def value_text(value: Any) -> str:
    """A short rendering of a grid value for run ids."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    return canonical(value)


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
        f"{_slug(key.rsplit('.', 1)[-1])}={_slug(value_text(params[key]))}"
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


def plan_runs(grid: Grid, replicates: int, seed: int, *, paired: bool = False) -> list[RunSpec]:
    """Every run of a sweep: grid points in order, each with its replicates.

    Args:
        grid: Key -> values.
        replicates: Runs per grid point (>= 1).
        seed: The sweep seed.
        paired: Give replicate ``r`` the same seed at every grid point (the seed
            derived from the replicate alone), so that grid points can be
            compared run by run (:mod:`simulacra.analysis.paired`).

    Returns:
        The runs, in grid order then replicate order.

    Raises:
        SweepError: Two runs would share an id.

    """
    specs = [
        RunSpec(
            make_run_id(point, rep), point, rep, derive_seed(seed, {} if paired else point, rep)
        )
        for point in expand_grid(grid)
        for rep in range(replicates)
    ]
    counts = Counter(spec.run_id for spec in specs)
    duplicates = [run_id for run_id, n in counts.items() if n > 1]
    if duplicates:
        raise SweepError(f"run ids collide: {', '.join(duplicates)} (repeated grid values?)")
    return specs


def sort_key(spec: RunSpec, keys: Sequence[str]) -> tuple[Any, ...]:
    """Deterministic order of runs: by grid values (numbers numerically), replicate, id."""

    def value_key(value: Any) -> tuple[Any, ...]:
        if isinstance(value, bool):
            return (1, int(value), "")
        if isinstance(value, int | float):
            return (0, float(value), canonical(value))
        if isinstance(value, str):
            return (2, 0.0, value)
        return (3, 0.0, canonical(value))

    return (*(value_key(spec.params[key]) for key in keys), spec.replicate, spec.run_id)
