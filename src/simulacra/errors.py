"""The exception hierarchy of simulacra.

Every error the package raises on purpose derives from :class:`SimulacraError`,
so that a command-line front end can catch one class, print a clear message and
exit without a traceback.  Scenario problems are reported as a list of
:class:`ScenarioIssue` records carried by a single :class:`ScenarioError`, so that
a user sees every mistake in a file at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "EngineError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ScenarioError",
    "ScenarioIssue",
    "SimulacraError",
    "SweepError",
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
