"""The battery contract: what every kind of battery provides to the shared runner.

A *battery* is a directory of data files that puts many questions to many personas:
``battery.toml`` (whose ``kind`` names the battery type) plus the files that kind
reads (templates, effect files, a population). One command runs any battery::

    simulacra battery run DIR --out OUT

The shared runner (:mod:`simulacra.batteries.runner`) knows nothing about goal
guarding or replication. It asks the battery for its *units of work*
(:meth:`Battery.plan`), runs each unit once on an engine (:meth:`Battery.run_unit`),
stores each unit's tidy tables atomically (so a killed run resumes without redoing
finished units), and concatenates them into ``OUT/<table>.parquet`` with a manifest.
A kind module (``simulacra.batteries.<kind>``) provides :func:`load` and
:func:`write_report`; :data:`KINDS` maps ``battery.toml``'s ``kind`` to that module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from simulacra.llm.engine import Engine

__all__ = ["KINDS", "Battery", "RunOptions", "Unit"]

KINDS: dict[str, str] = {
    "goal_guarding": "simulacra.batteries.goal_guarding",
    "replication": "simulacra.batteries.replication",
    "stability": "simulacra.batteries.stability",
}
"""``battery.toml`` ``kind`` -> the module implementing that kind of battery."""


@dataclass(frozen=True)
class RunOptions:
    """The command line's choices for one battery run; None means "the battery's own".

    Attributes:
        design: the named design to expand (goal guarding: ``quick`` or ``full``).
        models: model names or GGUF paths to run; empty: the battery's own list.
        seeds: how many seeds (replicates) per condition.
        participants: population size M (replication).
        mode: answering mode (replication: ``sampled`` or ``expected``).
        no_persona: ask the bare model, without persona prompts (replication baseline).
        n_threads: llama.cpp threads per engine; None: the runner's fixed default.
        extra: kind-specific options, by name.
    """

    design: str | None = None
    models: tuple[str, ...] = ()
    seeds: int | None = None
    participants: int | None = None
    mode: str | None = None
    no_persona: bool = False
    n_threads: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The options as plain JSON values (recorded in the manifest, checked on resume)."""
        return {
            "design": self.design,
            "models": list(self.models),
            "seeds": self.seeds,
            "participants": self.participants,
            "mode": self.mode,
            "no_persona": self.no_persona,
            "n_threads": self.n_threads,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class Unit:
    """One unit of work: deterministic given its fields, independent of the others.

    Attributes:
        unit_id: unique within the run and safe as a file name (``[A-Za-z0-9_.-]+``).
        model: the model name or GGUF path the unit runs on.
        params: JSON-able values the battery needs to run the unit (seed, condition...).
        kind: what sort of work the unit is (goal guarding: its channel; replication:
            whether its chunk re-asks): units of one kind and model take about as long,
            so the progress line's ETA is estimated per kind.
    """

    unit_id: str
    model: str
    params: Mapping[str, Any]
    kind: str = ""


class Battery(Protocol):
    """A loaded, validated battery directory.

    A kind may also define ``revision`` (an int), raised whenever a change to the
    kind changes the numbers the same files give: the runner records it with the
    run's configuration, so a resumed run refuses to mix revisions.
    """

    kind: str
    """The battery's kind, a key of :data:`KINDS`."""
    directory: Path
    """The battery directory it was loaded from."""
    n_ctx: int
    """The context size (tokens per sequence) its engines need."""

    def plan(self, options: RunOptions) -> list[Unit]:
        """Expand the design into units of work, in a stable order.

        Raises:
            simulacra.errors.ScenarioError: an option does not fit this battery
                (for example an unknown design name), naming the option.
        """
        ...

    def run_unit(self, unit: Unit, engine: Engine) -> dict[str, pd.DataFrame]:
        """Run one unit on ``engine`` and return its tidy tables by name.

        The runner adds the columns ``unit_id`` and ``model`` to every table. The
        result must depend only on the unit (its seed among its params) and the
        engine's model and thread count, never on which units ran before. A kind
        whose ``run_unit`` also takes an ``out`` keyword gets the run directory, for
        files it makes once per run and reads back on resume (e.g. ``out/vectors``).
        """
        ...

    def describe(self) -> dict[str, Any]:
        """Plain JSON facts about the battery for the manifest (files, their sha256...)."""
        ...
