"""A sweep's definition: what ``sweep.json`` records, checked before anything runs.

The definition is the scenario after ``--set``, the overrides, the grid, the
number of replicates and the sweep seed. :func:`validate_points` validates the
scenario of every grid point at once; :func:`merge_definitions` decides whether
a sweep directory may be resumed with a new definition (only added grid values
or replicates are allowed).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulacra.errors import ScenarioError, ScenarioIssue, SweepError
from simulacra.scenario import Scenario, parse_override, parse_scenario
from simulacra.sweep.grid import Grid, canonical, expand_grid
from simulacra.sweep.store import FORMAT

__all__ = [
    "jsonable",
    "merge_definitions",
    "normalize_grid",
    "plain_value",
    "set_overrides",
    "validate_points",
]


def plain_value(value: Any, where: str) -> Any:
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
        return [plain_value(item, where) for item in value]
    if isinstance(value, Mapping):
        return {str(k): plain_value(v, where) for k, v in value.items()}
    message = f"value {value!r} is not a TOML value (a number, string, boolean, array or table)"
    raise ScenarioError(ScenarioIssue("--grid", where, message))


def normalize_grid(grid: Grid | None, set_keys: Iterable[str]) -> dict[str, list[Any]]:
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
            plain = [plain_value(value, key) for value in values]
        except ScenarioError as err:
            issues.extend(err.issues)
            continue
        texts = [canonical(value) for value in plain]
        repeated = [text for text, n in Counter(texts).items() if n > 1]
        if repeated:
            issues.append(ScenarioIssue("--grid", key, f"repeated value(s) {', '.join(repeated)}"))
            continue
        result[key] = plain
    if issues:
        raise ScenarioError(issues)
    return result


def set_overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """``--set`` overrides as a dict of key -> value (later keys win)."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return {str(key): value for key, value in overrides.items()}
    if isinstance(overrides, str):
        overrides = [overrides]
    return dict(parse_override(text) for text in overrides)


def jsonable(data: Any) -> Any:
    """Round-trip through JSON, so that stored and fresh definitions compare equal."""
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def validate_points(
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
                    at = ", ".join(f"{k}={canonical(v)}" for k, v in point.items())
                    message += f" (at grid point {at})"
                issues[ScenarioIssue(issue.source, issue.path, message)] = None
    if issues:
        raise ScenarioError(list(issues))
    return scenarios


def merge_definitions(old: Mapping[str, Any], new: Mapping[str, Any], where: Path) -> dict:
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
            f"(was {canonical(old['overrides'])}, now {canonical(new['overrides'])}){hint}"
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
    if old.get("paired", False) != new.get("paired", False):
        was, now = ("paired", "unpaired") if old.get("paired") else ("unpaired", "paired")
        raise SweepError(f"the sweep in {where} has {was} seeds, this call asks for {now}{hint}")
    if old["seed"] != new["seed"]:
        raise SweepError(f"the sweep seed differs (was {old['seed']}, now {new['seed']}){hint}")
    if set(old["grid"]) != set(new["grid"]):
        raise SweepError(
            f"the grid keys differ (were {', '.join(old['grid']) or 'none'}, now "
            f"{', '.join(new['grid']) or 'none'}){hint}"
        )
    grid: dict[str, list[Any]] = {}
    for key, values in old["grid"].items():
        fresh = {canonical(v): v for v in new["grid"][key]}
        missing = [canonical(v) for v in values if canonical(v) not in fresh]
        if missing:
            raise SweepError(
                f"grid values of {key} were removed ({', '.join(missing)}); a resumed sweep "
                f"may only add grid values or replicates{hint}"
            )
        known = {canonical(v) for v in values}
        grid[key] = [*values, *(v for text, v in fresh.items() if text not in known)]
    if new["replicates"] < old["replicates"]:
        raise SweepError(
            f"fewer replicates ({new['replicates']}) than the sweep in {where} already has "
            f"({old['replicates']}); a resumed sweep may only add grid values or replicates{hint}"
        )
    return {**old, "grid": grid, "replicates": new["replicates"]}
