"""Validation helpers: collecting issues, and parsing one field at a time.

Validation never stops at the first problem. Every parser records what is wrong
in an :class:`Issues` collection (the dotted path of the field and what was
expected) and returns the :data:`INVALID` marker, so the caller carries on and
the user sees every mistake of a file at once, in one
:class:`~simulacra.errors.ScenarioError`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from simulacra.errors import ScenarioError, ScenarioIssue

__all__ = [
    "INVALID",
    "NAME_PATTERN",
    "REQUIRED",
    "Invalid",
    "Issues",
    "Parser",
    "check_table",
    "check_tables",
    "describe",
    "first_index",
    "format_errors",
    "get_field",
    "join_path",
    "parse_array",
    "parse_choice",
    "parse_float",
    "parse_int",
    "parse_string",
    "parse_unit_interval",
    "quote",
    "render_path",
    "unknown_name",
]

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


# --------------------------------------------------------------------------- issues


class Invalid:
    """Marker for a value that failed validation (its issue is already recorded)."""

    def __repr__(self) -> str:
        return "<invalid>"


INVALID: Any = Invalid()
REQUIRED: Any = object()


@dataclass
class Issues:
    """Collects issues with the field paths they relate to."""

    source: str
    items: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def add(self, path: str, message: str, related: Iterable[str] = ()) -> None:
        """Record a problem at ``path``; ``related`` are other paths it depends on."""
        self.items.append((path, message, tuple(related)))

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self, origins: Mapping[str, str]) -> ScenarioError:
        """Build the error, noting the overrides (path -> text) behind each issue."""
        issues = []
        for path, message, related in self.items:
            texts = [
                text
                for key, text in origins.items()
                if any(_related_paths(key, p) for p in (path, *related) if p)
            ]
            if texts:
                message += " (with " + " ".join(f"--set {t}" for t in texts) + ")"
            issues.append(ScenarioIssue(self.source, path, message))
        return ScenarioError(issues)


def _related_paths(a: str, b: str) -> bool:
    """Tell whether one dotted path equals or contains the other."""
    return a == b or _is_under(a, b) or _is_under(b, a)


def _is_under(child: str, parent: str) -> bool:
    """Tell whether ``child`` is a strict descendant of ``parent``."""
    return child.startswith((parent + ".", parent + "["))


def format_errors(err: ScenarioError) -> str:
    """Render a scenario error for the terminal: one ``error:`` line per issue.

    Args:
        err: The error to render.

    Returns:
        The text, without a trailing newline.

    """
    lines = [f"error: {issue}" for issue in err.issues]
    if len(err.issues) > 1:
        sources = ", ".join(dict.fromkeys(issue.source for issue in err.issues))
        lines.append(f"found {len(err.issues)} errors in {sources}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- formatting


def quote(text: str) -> str:
    """Quote a name for a message."""
    return f"'{text}'"


def join_path(base: str, key: str) -> str:
    """Extend a dotted path with a key (quoted when not a bare name)."""
    segment = key if NAME_PATTERN.fullmatch(key) else json.dumps(key)
    return f"{base}.{segment}" if base else segment


def render_path(parts: Sequence[str | int]) -> str:
    """Render key-path parts as a dotted path with ``[i]`` indices."""
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else join_path(path, part)
    return path


def describe(value: object) -> str:
    """Describe a value by TOML type and content, for 'got ...' messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        text = json.dumps(value)
        return f"string {text if len(text) <= 40 else text[:37] + '...'}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value}"


def _number_text(value: float) -> str:
    """Render a bound without a spurious ``.0``."""
    return f"{value:g}"


def unknown_name(kind: str, word: str, candidates: Sequence[str]) -> str:
    """Message for an unknown name, suggesting the closest candidate."""
    message = f"unknown {kind} {quote(word)}"
    close = difflib.get_close_matches(word, list(candidates), n=1)
    if close:
        return f"{message}; did you mean {quote(close[0])}?"
    if candidates:
        return f"{message}; expected one of {', '.join(map(quote, candidates))}"
    return message


# --------------------------------------------------------------------------- field parsers

Parser: TypeAlias = Callable[[Any, str, Issues], Any]


def get_field(
    table: Mapping[str, Any],
    key: str,
    path: str,
    issues: Issues,
    parse: Parser,
    default: Any = REQUIRED,
) -> Any:
    """Parse ``table[key]``, or return ``default`` (record it missing if required)."""
    where = join_path(path, key)
    if key not in table:
        if default is REQUIRED:
            issues.add(where, f"missing required key {quote(key)}")
            return INVALID
        return default
    return parse(table[key], where, issues)


def parse_int(value: Any, path: str, issues: Issues, *, minimum: int | None = None) -> Any:
    """Parse an integer (not a boolean), optionally >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        issues.add(path, f"expected an integer, got {describe(value)}")
        return INVALID
    if minimum is not None and value < minimum:
        issues.add(path, f"must be >= {minimum}, got {value}")
        return INVALID
    return value


def parse_float(
    value: Any, path: str, issues: Issues, *, minimum: float | None = None, what: str = ""
) -> Any:
    """Parse a finite number (an int is accepted) as a float, optionally >= ``minimum``."""
    label = f"{what} must" if what else "must"
    if isinstance(value, bool) or not isinstance(value, int | float):
        issues.add(path, f"expected a number, got {describe(value)}")
        return INVALID
    if not math.isfinite(value):
        issues.add(path, f"{label} be a finite number, got {value}")
        return INVALID
    if minimum is not None and value < minimum:
        issues.add(path, f"{label} be >= {_number_text(minimum)}, got {value}")
        return INVALID
    return float(value)


def parse_unit_interval(value: Any, path: str, issues: Issues) -> Any:
    """Parse a number in (0, 1]."""
    number = parse_float(value, path, issues)
    if number is not INVALID and not 0 < number <= 1:
        issues.add(path, f"must be in (0, 1], got {value}")
        return INVALID
    return number


def parse_string(
    value: Any, path: str, issues: Issues, *, nonempty: bool = False, name: bool = False
) -> Any:
    """Parse a string, optionally non-blank or a name matching ``[A-Za-z0-9_-]+``."""
    if not isinstance(value, str):
        issues.add(path, f"expected a string, got {describe(value)}")
        return INVALID
    if (nonempty or name) and not value.strip():
        issues.add(path, "must not be empty")
        return INVALID
    if name and not NAME_PATTERN.fullmatch(value):
        issues.add(path, f"invalid name {json.dumps(value)}: use only letters, digits, '_' and '-'")
        return INVALID
    return value


def parse_choice(value: Any, path: str, issues: Issues, *, choices: Sequence[str]) -> Any:
    """One of ``choices``."""
    text = parse_string(value, path, issues)
    if text is INVALID:
        return INVALID
    if text not in choices:
        message = f"must be one of {', '.join(map(quote, choices))}; got {quote(text)}"
        close = difflib.get_close_matches(text, list(choices), n=1)
        issues.add(path, message + (f" (did you mean {quote(close[0])}?)" if close else ""))
        return INVALID
    return text


def parse_array(value: Any, path: str, issues: Issues, *, item: Parser) -> Any:
    """Parse an array whose items all pass ``item`` (each one checked)."""
    if not isinstance(value, list):
        issues.add(path, f"expected an array, got {describe(value)}")
        return INVALID
    items = [item(entry, f"{path}[{index}]", issues) for index, entry in enumerate(value)]
    return INVALID if any(entry is INVALID for entry in items) else items


def check_table(value: Any, path: str, issues: Issues, *, keys: Sequence[str]) -> Any:
    """Check a table whose keys must all be in ``keys`` (suggesting fixes for typos)."""
    if not isinstance(value, Mapping):
        issues.add(path, f"expected a table, got {describe(value)}")
        return INVALID
    for key in value:
        if key not in keys:
            issues.add(join_path(path, key), unknown_name("key", key, keys))
    return value


def check_tables(value: Any, path: str, issues: Issues, *, keys: Sequence[str]) -> Any:
    """Check an array of tables (``[[path]]``), each item by ``check_table``."""
    if isinstance(value, Mapping):
        issues.add(path, f"expected an array of tables ([[{path}]]), got a single table")
        return INVALID
    if not isinstance(value, list):
        issues.add(path, f"expected an array of tables ([[{path}]]), got {describe(value)}")
        return INVALID
    return [check_table(entry, f"{path}[{i}]", issues, keys=keys) for i, entry in enumerate(value)]


def first_index(items: Sequence[object], value: object) -> int:
    """Index of the first occurrence of ``value``."""
    return list(items).index(value)
