"""Command-line overrides: ``--set key=value`` applied to a raw scenario.

Keys are dotted paths with optional list indices (``dialogue.turns``,
``agents[1].prior.pirate``) and must exist in the scenario schema; values are
parsed as TOML values, falling back to a plain string. Overrides are applied
to the raw data before validation, so an overridden scenario is checked exactly
like a file, and every issue names the ``--set`` behind it.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.scenario.parsing import Issues, describe, quote, render_path, unknown_name
from simulacra.scenario.schema import (
    AGENT_KEYS,
    BELIEF_KEYS,
    DIALOGUE_KEYS,
    MODEL_KEYS,
    NUMERIC_KEYS,
    PROBE_KEYS,
    REGENERATION_KEYS,
    SCALE_KEYS,
)

__all__ = [
    "Overrides",
    "apply_overrides",
    "apply_pairs",
    "override_pairs",
    "parse_override",
    "parse_override_value",
]

Overrides: TypeAlias = Mapping[str, object] | Sequence[str] | None
"""Overrides: a mapping of dotted key to value, or ``"key=value"`` strings."""

_KEY_SEGMENT = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")

_ANY_KEY = "*"


_SCHEMA: dict[str, Any] = {
    "seed": None,
    "model": dict.fromkeys(MODEL_KEYS),
    "simulacra": [{"name": None, "description": None, "tags": [None]}],
    "agents": [
        dict.fromkeys(AGENT_KEYS) | {"prior": {_ANY_KEY: None}, "prior_tags": {_ANY_KEY: None}}
    ],
    "dialogue": dict.fromkeys(DIALOGUE_KEYS),
    "belief": dict.fromkeys(BELIEF_KEYS),
    "probes": [
        dict.fromkeys(PROBE_KEYS)
        | {
            "options": [None],
            "scale": dict.fromkeys(SCALE_KEYS),
            "numeric": dict.fromkeys(NUMERIC_KEYS),
            "turns": [None],
            "agents": [None],
        }
    ],
    "regeneration": dict.fromkeys(REGENERATION_KEYS) | {"turns": [None], "agents": [None]},
}


def apply_overrides(
    data: Mapping[str, Any], overrides: Overrides, *, source: str = "--set"
) -> dict[str, Any]:
    """Return a deep copy of ``data`` with overrides applied; ``data`` is untouched.

    Keys are dotted paths with optional list indices (``dialogue.turns``,
    ``agents[1].prior.pirate``) and must exist in the scenario schema; missing
    tables on the way are created, list indices must exist.

    Args:
        data: A raw scenario dict.
        overrides: Dotted keys to values, or ``"key=value"`` strings.
        source: Name used in error messages.

    Returns:
        The overridden copy (not validated).

    Raises:
        ScenarioError: If an override is malformed or its key path is invalid.

    """
    issues = Issues(source)
    pairs = override_pairs(overrides, issues)
    if not isinstance(data, Mapping):
        raise ScenarioError(ScenarioIssue(source, "", "expected a table at the top level"))
    result, _ = apply_pairs(data, pairs, issues)
    if issues:
        raise issues.error({})
    return result


def parse_override(text: str) -> tuple[str, object]:
    """Split a command-line ``"key=value"`` override.

    Args:
        text: E.g. ``"dialogue.turns=4"`` or ``"agents[0].persona=map"``.

    Returns:
        The key and the value parsed by :func:`parse_override_value`.

    Raises:
        ScenarioError: If ``text`` has no ``=`` or an empty key.

    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        message = f"malformed override {quote(text)}: expected key=value, e.g. dialogue.turns=4"
        raise ScenarioError(ScenarioIssue("--set", "", message))
    return key, parse_override_value(raw.strip())


def parse_override_value(text: str) -> object:
    """Parse an override value as a TOML value, falling back to the raw string.

    Args:
        text: E.g. ``"4"``, ``"0.5"``, ``"true"``, ``"[0, 4]"``, ``"map"``.

    Returns:
        The TOML value, or ``text`` itself when it is not one.

    """
    try:
        parsed = tomllib.loads("v = " + text)
    except tomllib.TOMLDecodeError:
        return text
    return parsed["v"] if list(parsed) == ["v"] else text


def _render_value(value: object) -> str:
    """Render an override value TOML-like, for '(with --set ...)' notes."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def override_pairs(overrides: Overrides, issues: Issues) -> list[tuple[str, object, str]]:
    """Normalise overrides to (key, value, display text), recording malformed ones."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [(str(k), v, f"{k}={_render_value(v)}") for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    pairs = []
    for text in overrides:
        if not isinstance(text, str):
            issues.add("", f"malformed override {text!r}: expected a 'key=value' string")
            continue
        try:
            key, value = parse_override(text)
        except ScenarioError as exc:
            issues.add("", exc.issues[0].message)
            continue
        pairs.append((key, value, text.strip()))
    return pairs


def _parse_key_path(key: str) -> list[str | int] | None:
    """Split ``agents[1].prior.pirate`` into ``["agents", 1, "prior", "pirate"]``."""
    parts: list[str | int] = []
    for segment in key.split("."):
        match = _KEY_SEGMENT.fullmatch(segment.strip())
        if match is None:
            return None
        parts.append(match.group(1))
        parts.extend(int(index) for index in _INDEX.findall(match.group(2)))
    return parts


def apply_pairs(
    data: Mapping[str, Any], pairs: Sequence[tuple[str, object, str]], issues: Issues
) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply overrides to a deep copy; return it and the overridden path -> text."""
    result = copy.deepcopy(dict(data))
    origins: dict[str, str] = {}
    for key, value, text in pairs:
        note = f" (with --set {text})"
        parts = _parse_key_path(key)
        if parts is None:
            issues.add(
                "",
                f"malformed key path {quote(key)}: expected dotted keys with optional [index], "
                f"e.g. agents[0].prior.pirate{note}",
            )
            continue
        problem = _set_path(result, parts, copy.deepcopy(value))
        if problem is not None:
            issues.add(problem[0], problem[1] + note)
            continue
        origins[render_path(parts)] = text
    return result, origins


def _set_path(
    root: dict[str, Any], parts: Sequence[str | int], value: object
) -> tuple[str, str] | None:
    """Set ``value`` at ``parts`` in ``root`` following the schema; return a problem or None."""
    node: Any = root
    schema: Any = _SCHEMA
    done: list[str | int] = []
    for position, part in enumerate(parts):
        here = render_path(done)
        last = position == len(parts) - 1
        if isinstance(part, str):
            if not isinstance(schema, dict):
                return here, f"{here} is not a table; cannot set key {quote(part)} in it"
            if part not in schema and _ANY_KEY not in schema:
                return render_path([*done, part]), unknown_name("key", part, list(schema))
            if not isinstance(node, dict):
                return here, f"cannot set {quote(part)}: {here} is {describe(node)}, not a table"
            sub = schema.get(part, schema.get(_ANY_KEY))
            if last:
                node[part] = value
                return None
            if part not in node and isinstance(sub, dict):
                node[part] = {}
            node = node.get(part)
        else:
            if not isinstance(schema, list):
                return here, f"{here} is not an array; cannot index it with [{part}]"
            if node is not None and not isinstance(node, list):
                return here, f"cannot index {here}: it is {describe(node)}, not an array"
            size = 0 if node is None else len(node)
            if part >= size:
                entries = "entry" if size == 1 else "entries"
                return f"{here}[{part}]", f"index {part} out of range: {here} has {size} {entries}"
            if last:
                node[part] = value
                return None
            sub = schema[0]
            node = node[part]
        schema = sub
        done.append(part)
    return None  # pragma: no cover - parts is never empty
