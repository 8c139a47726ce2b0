"""Checks: reading the replication battery's TOML files to the scenario standard.

Every problem becomes a :class:`~simulacra.errors.ScenarioIssue` naming the file,
the dotted field (``items[0].options.low``) and what was expected; an unknown key
or name suggests the closest known one ("did you mean ..."). A :class:`FileChecker`
collects the issues of one file into a list shared by all files of the battery, so
that one :class:`~simulacra.errors.ScenarioError` reports every mistake at once.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.schema import describe

__all__ = ["NAME", "FileChecker", "Issues", "describe", "join", "read_toml", "unknown"]

NAME = re.compile(r"[A-Za-z0-9_-]+")
"""What a condition, item, effect or attribute name may contain."""


@dataclass
class Issues:
    """The issues found in all files of one battery."""

    items: list[ScenarioIssue] = field(default_factory=list)

    def raise_if_any(self) -> None:
        """Raise one :class:`ScenarioError` carrying every issue, if there are any."""
        if self.items:
            raise ScenarioError(self.items)


def join(path: str, key: str | int) -> str:
    """Extend a dotted field path by a key or an ``[index]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def unknown(kind: str, word: str, candidates: Sequence[str]) -> str:
    """Message for an unknown name, suggesting the closest candidate."""
    message = f"unknown {kind} '{word}'"
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean '{close[0]}'?"
    if candidates:
        listed = ", ".join(f"'{c}'" for c in candidates)
        return f"{message}; expected one of {listed}"
    return message


def read_toml(path: Path, issues: Issues) -> dict[str, Any] | None:
    """Read and decode a TOML file; a failure is recorded and None returned."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a TOML file"
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
    else:
        try:
            return tomllib.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            message = f"not valid UTF-8 text (bad byte at offset {exc.start})"
        except tomllib.TOMLDecodeError as exc:
            message = f"invalid TOML: {exc}"
    issues.items.append(ScenarioIssue(source, "", message))
    return None


class FileChecker:
    """Typed reads of one file's fields, recording an issue for each bad value.

    Every reader returns the value when it is valid and None otherwise (the issue is
    then recorded), so parsing goes on and finds the file's other mistakes too.

    Args:
        source: the file's path, as shown in messages.
        issues: where the issues go.
    """

    def __init__(self, source: str, issues: Issues) -> None:
        self.source = source
        self.issues = issues

    def add(self, path: str, message: str) -> None:
        """Record a problem at a field."""
        self.issues.items.append(ScenarioIssue(self.source, path, message))

    def keys(
        self,
        table: Mapping[str, Any],
        path: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> None:
        """Record unknown keys (with a suggestion) and missing required keys."""
        for key in table:
            if key not in allowed:
                self.add(join(path, key), unknown("key", key, allowed))
        for key in required:
            if key not in table:
                self.add(join(path, key), "missing; this field is required")

    def table(self, value: Any, path: str) -> Mapping[str, Any] | None:
        """A TOML table."""
        if isinstance(value, Mapping):
            return value
        self.add(path, f"expected a table, got {describe(value)}")
        return None

    def tables(self, value: Any, path: str, *, minimum: int = 0) -> list[Mapping[str, Any]]:
        """An array of tables (``[[path]]``) of at least ``minimum`` entries."""
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            self.add(path, f"expected an array of tables ([[{path}]]), got {describe(value)}")
            return []
        if len(value) < minimum:
            self.add(path, f"expected at least {minimum} entries, got {len(value)}")
        return list(value)

    def string(self, value: Any, path: str, *, empty: bool = False) -> str | None:
        """A string; non-blank unless ``empty``."""
        if not isinstance(value, str):
            self.add(path, f"expected a string, got {describe(value)}")
            return None
        if not empty and not value.strip():
            self.add(path, "expected a non-empty string")
            return None
        return value

    def name(self, value: Any, path: str) -> str | None:
        """A name of letters, digits, ``_`` and ``-``."""
        text = self.string(value, path)
        if text is not None and not NAME.fullmatch(text):
            self.add(path, f"expected a name of letters, digits, '_' or '-', got {text!r}")
            return None
        return text

    def integer(self, value: Any, path: str, *, minimum: int | None = None) -> int | None:
        """An integer, at least ``minimum``."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {describe(value)}")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"must be >= {minimum}, got {value}")
            return None
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        minimum: float | None = None,
        positive: bool = False,
    ) -> float | None:
        """A finite number (integer or float), at least ``minimum`` / above 0."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"expected a number, got {describe(value)}")
            return None
        number = float(value)
        if not math.isfinite(number):
            self.add(path, f"expected a finite number, got {value}")
            return None
        if minimum is not None and number < minimum:
            self.add(path, f"must be >= {minimum:g}, got {value}")
            return None
        if positive and number <= 0:
            self.add(path, f"must be > 0, got {value}")
            return None
        return number

    def strings(self, value: Any, path: str, *, minimum: int = 0) -> list[str] | None:
        """An array of non-empty strings of at least ``minimum`` entries."""
        if not isinstance(value, list):
            self.add(path, f"expected an array of strings, got {describe(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            text = self.string(item, join(path, i))
            if text is None:
                return None
            out.append(text)
        if len(out) < minimum:
            self.add(path, f"expected at least {minimum} entries, got {len(out)}")
            return None
        return out

    def interval(self, value: Any, path: str) -> tuple[float, float] | None:
        """A ``[low, high]`` pair of numbers with low <= high."""
        if (
            not isinstance(value, list)
            or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value)
        ):
            self.add(path, f"expected [low, high], two numbers, got {describe(value)}")
            return None
        low, high = float(value[0]), float(value[1])
        if low > high:
            self.add(path, f"expected low <= high, got [{value[0]}, {value[1]}]")
            return None
        return (low, high)

    def choice(self, value: Any, path: str, choices: Sequence[str]) -> str | None:
        """One of ``choices`` (an unknown word gets a suggestion)."""
        text = self.string(value, path)
        if text is not None and text not in choices:
            self.add(path, unknown("value", text, choices))
            return None
        return text
