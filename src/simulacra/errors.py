"""The exception hierarchy of simulacra.

Every error the package raises on purpose derives from :class:`SimulacraError`,
so that a command-line front end can catch one class, print a clear message and
exit without a traceback.  Warnings a user can act on are of class
:class:`SimulacraWarning`, issued by :func:`warn`.  Scenario problems are reported as a list of
:class:`ScenarioIssue` records carried by a single :class:`ScenarioError`, so that
a user sees every mistake in a file at once.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "EngineError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ScenarioError",
    "ScenarioIssue",
    "SimulacraError",
    "SimulacraWarning",
    "SweepError",
    "VectorError",
    "warn",
]


class SimulacraError(Exception):
    """Base class of every error raised on purpose by simulacra."""


@dataclass(frozen=True)
class ScenarioIssue:
    """One problem found in a scenario.

    Attributes:
        source: Where the scenario came from, usually its file path.
        path: Dotted path of the offending field (``agents[1].prior.pirate``), or
            ``""`` when the problem concerns the whole file.
        message: What is wrong and what was expected.

    """

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        """Render as ``source: path: message`` (``source: message`` without a path)."""
        if self.path:
            return f"{self.source}: {self.path}: {self.message}"
        return f"{self.source}: {self.message}"


class ScenarioError(SimulacraError):
    """A scenario is invalid; carries every issue found, not only the first.

    Args:
        issues: The problems found, in the order they were detected.  A single
            :class:`ScenarioIssue` is accepted too.

    Attributes:
        issues: The problems, as a tuple.

    """

    def __init__(self, issues: Iterable[ScenarioIssue] | ScenarioIssue) -> None:
        if isinstance(issues, ScenarioIssue):
            issues = (issues,)
        self.issues: tuple[ScenarioIssue, ...] = tuple(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        """Render all issues, one per line."""
        return "\n".join(str(issue) for issue in self.issues)

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[tuple[ScenarioIssue, ...]]]:
        """Pickle by issues, so the error survives process and Dask boundaries."""
        return (type(self), (self.issues,))


class ModelNotFoundError(SimulacraError):
    """A model name is not in the registry, or its GGUF file cannot be found."""


class ModelLoadError(SimulacraError):
    """A model file exists but could not be loaded or failed verification."""


class EngineError(SimulacraError):
    """The inference engine failed (context overflow, bad tokens, backend error)."""


class SweepError(SimulacraError):
    """A sweep is misconfigured, or its run directory is inconsistent."""


class VectorError(SimulacraError):
    """A persona-vector file or setting is invalid (the message names the file and field)."""


class SimulacraWarning(UserWarning):
    """Something a user can act on; the message says what in the scenario to change.

    Filter it like any warning, e.g.
    ``warnings.simplefilter("ignore", simulacra.errors.SimulacraWarning)``.
    """


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _outside_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside simulacra, seen from :func:`warn`'s caller."""
    level = 2  # stacklevel 2 of warnings.warn called in warn() is warn()'s caller
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = SimulacraWarning) -> None:
    """Issue a warning attributed to the caller's own code, not to simulacra's.

    The warning points at the first stack frame outside the simulacra package (the
    user's script or notebook cell), so Python shows the user's line, never one
    of simulacra's internals; ``simulacra`` on the command line prints it as
    ``warning: <message>``.

    Args:
        message: what happened and what in the scenario to change.
        category: the warning class.
    """
    warnings.warn(message, category, stacklevel=_outside_stacklevel())
