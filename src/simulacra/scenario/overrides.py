"""Command-line overrides: ``--set key=value`` applied to a raw scenario.

Keys are dotted paths with optional list indices (``dialogue.turns``,
``agents[1].prior.pirate``) and must exist in the scenario file kind
(:class:`~simulacra.scenario.schema.ScenarioFile`); values are parsed as TOML
values, falling back to a plain string. Overrides are applied to the raw data
before validation, so an overridden scenario is checked exactly like a file, and
every issue names the ``--set`` behind it. A path given on the command line
(``model.path``) is relative to the working directory.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, get_origin

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.scenario.schema import ScenarioFile
from simulacra.schema import describe, quote, unknown_name
from simulacra.schema.issues import Located, child, render_path, table_keys, unwrap
from simulacra.schema.model import is_path

__all__ = [
    "Overrides",
    "apply_overrides",
    "apply_pairs",
    "parse_override",
    "parse_override_value",
]

Overrides: TypeAlias = Mapping[str, object] | Sequence[str] | None
"""Overrides: a mapping of dotted key to value, or ``"key=value"`` strings."""

_KEY_SEGMENT = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


def apply_overrides(
    data: Mapping[str, Any], overrides: Overrides, *, source: str = "--set"
) -> dict[str, Any]:
    """A deep copy of raw ``data`` with ``overrides`` applied (not validated; ``data`` untouched).

    Missing tables on the way are created; list indices must exist.

    Raises:
        ScenarioError: An override is malformed or its key path is not in the file kind
            (named by ``source`` in the messages).

    """
    if not isinstance(data, Mapping):
        raise ScenarioError(ScenarioIssue(source, "", "expected a table at the top level"))
    problems: list[Located] = []
    result, _ = apply_pairs(data, overrides, problems)
    if problems:
        raise ScenarioError([ScenarioIssue(source, path, text) for path, text, _ in problems])
    return result


def parse_override(text: str) -> tuple[str, object]:
    """Split a command-line ``"key=value"`` override (the value as :func:`parse_override_value`).

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
    """Parse an override value as a TOML value (``4``, ``0.5``, ``[0, 4]``), else the string."""
    try:
        parsed = tomllib.loads("v = " + text)
    except tomllib.TOMLDecodeError:
        return text
    return parsed["v"] if list(parsed) == ["v"] else text


def _render_value(value: object) -> str:
    """Render an override value TOML-like (``true``, ``"text"``), for '(with --set ...)' notes."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def _pairs(overrides: Overrides, problems: list[Located]) -> list[tuple[str, object, str]]:
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
            problems.append(("", f"malformed override {text!r}: expected a 'key=value' string", ()))
            continue
        try:
            key, value = parse_override(text)
        except ScenarioError as exc:
            problems.append(("", exc.issues[0].message, ()))
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
    data: Mapping[str, Any], overrides: Overrides, problems: list[Located]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply overrides to a deep copy; return it and the overridden path -> text.

    Malformed overrides, and those the file kind does not allow, are added to ``problems``.
    """
    result = copy.deepcopy(dict(data))
    origins: dict[str, str] = {}
    for key, value, text in _pairs(overrides, problems):
        note = f" (with --set {text})"
        parts = _parse_key_path(key)
        if parts is None:
            message = (
                f"malformed key path {quote(key)}: expected dotted keys with optional [index], "
                f"e.g. agents[0].prior.pirate{note}"
            )
            problems.append(("", message, ()))
            continue
        problem = _set_path(result, ScenarioFile, parts, copy.deepcopy(value))
        if problem is not None:
            problems.append((problem[0], problem[1] + note, ()))
            continue
        origins[render_path(parts)] = text
    return result, origins


def _is_table(annotation: Any) -> bool:
    bare = unwrap(annotation)[0]
    return table_keys(bare) is not None or get_origin(bare) is dict


def _is_path(annotation: Any, metadata: list[Any]) -> bool:
    """Tell whether a field holds a path, or an array of paths."""
    bare, more = unwrap(annotation)
    item = child(bare, 0)
    return is_path(metadata + more) or (item is not None and is_path(unwrap(item[0])[1]))


def _absolute(value: Any) -> Any:
    """A path (or paths) given on the command line, made absolute against the working directory."""
    if isinstance(value, list):
        return [_absolute(item) for item in value]
    return os.path.abspath(os.path.expanduser(value)) if isinstance(value, str) else value


def _set_path(
    root: dict[str, Any], schema: Any, parts: Sequence[str | int], value: object
) -> tuple[str, str] | None:
    """Set ``value`` at ``parts`` in ``root`` where the schema allows; return a problem or None."""
    node: Any = root
    for position, part in enumerate(parts):
        here, step = render_path(parts[:position]), child(schema, part)
        if isinstance(part, str):
            if not _is_table(schema):
                return here, f"{here} is not a table; cannot set key {quote(part)} in it"
            if step is None:
                keys = table_keys(schema) or []
                return render_path(parts[: position + 1]), unknown_name("key", part, keys)
            if not isinstance(node, dict):
                return here, f"cannot set {quote(part)}: {here} is {describe(node)}, not a table"
            if part not in node and _is_table(step[0]):
                node[part] = {}
        else:
            if step is None:
                return here, f"{here} is not an array; cannot index it with [{part}]"
            if node is not None and not isinstance(node, list):
                return here, f"cannot index {here}: it is {describe(node)}, not an array"
            size = 0 if node is None else len(node)
            if part >= size:
                entries = "entry" if size == 1 else "entries"
                return f"{here}[{part}]", f"index {part} out of range: {here} has {size} {entries}"
        if position == len(parts) - 1:
            node[part] = _absolute(value) if _is_path(*step) else value
            return None
        node, schema = (node.get(part) if isinstance(part, str) else node[part]), step[0]
    return None  # pragma: no cover - parts is never empty
