"""The replication battery: ``battery.toml``, its population and effects, and its units.

:func:`load` reads a battery directory (``battery.toml``, the population file and
every ``*.toml`` of the effects directory), checks everything, and returns a
:class:`ReplicationBattery`. :meth:`ReplicationBattery.plan` cuts the population
into chunks of participants per model (one unit each); :meth:`~ReplicationBattery.run_unit`
interviews one chunk. The re-asked participants of the variance decomposition are
re-asked inside their own chunk's unit, where their prompts are still cached.

Schema of ``battery.toml``::

    kind = "replication"
    title = "..."                       # optional
    population = "population.toml"      # default
    effects = "effects"                 # default: a directory of effect files
    models = ["smollm2-135m-instruct"]  # default models (--model overrides)
    participants = 40                   # M (--participants)
    mode = "sampled"                    # sampled | expected (--mode)
    seed = 2014                         # the answer sampling seed
    chunk = 8                           # participants per unit
    n_ctx = 8192                        # KV cells of each engine
    [answering]
    participant = "Participant"         # the respondent's name in the dialogue
    expected_samples = 5                # expected mode: numeric samples averaged
    [variance]
    share = 0.2                         # R = round(share * M) participants are re-asked ...
    min_participants = 20               # ... when M >= this; below it nobody is
    # participants = 8                  # or a fixed R (RunOptions.extra["reask"] overrides)
    runs = 3                            # answer runs of each (--reask-runs); 1: no re-asking
    [designs.smoke]                     # named sizes (--design smoke); each key optional
    participants = 4                    # M
    effects = ["sunk_costs"]            # the studies run (--effects overrides); default all
    chunk = 2                           # participants per unit
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

import pandas as pd
from pydantic import Field, field_validator, model_validator

from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.replication.effects import Effect, EffectFile, effect_of
from simulacra.batteries.replication.intervention import (
    Prepared,
    describe_rows,
    prepare,
    spec_issues,
)
from simulacra.batteries.replication.interview import MODES, interview
from simulacra.batteries.replication.population import (
    Population,
    PopulationFile,
    PopulationSpec,
    population_spec,
)
from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.instruments import INTERVIEWER
from simulacra.schema import (
    Array,
    Count,
    SchemaModel,
    Text,
    fail,
    read_toml,
    unknown_name,
    validate,
)
from simulacra.schema.model import NAME_PATTERN

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine

__all__ = ["BATTERY_FILE", "KIND", "ReplicationBattery", "build", "load", "read_files"]

KIND = "replication"
BATTERY_FILE = "battery.toml"
M = TypeVar("M", bound=SchemaModel)
_EXTRA_OPTIONS = ("reask", "chunk", "expected_samples", "effects", "reask_runs")
_OPTIONS_SOURCE = "run options"
_MIN_PARTICIPANTS = 4
DEFAULT_REASK_SHARE = 0.2
DEFAULT_REASK_FROM = 20
DEFAULT_SOURCE = "Many Labs 1"
"""The replication project a battery without ``source`` follows (the first battery's)."""


class AnsweringSpec(SchemaModel):
    """How participants answer (``[answering]``)."""

    participant: Text = "Participant"
    """The respondent's name in the dialogue."""
    expected_samples: Count = 5
    """Expected mode: numeric samples averaged."""

    @field_validator("participant")
    @classmethod
    def _not_interviewer(cls, name: str) -> str:
        if name == INTERVIEWER:
            fail([((), f"'{INTERVIEWER}' asks the questions; choose another name")])
        return name


class VarianceSpec(SchemaModel):
    """The variance decomposition (``[variance]``): a fixed R, or R scaling with M."""

    participants: Annotated[int, Field(ge=0)] | None = None
    """A fixed R of re-asked participants (instead of ``share``)."""
    share: Annotated[float, Field(ge=0, le=1)] = DEFAULT_REASK_SHARE
    """R = round(share * M) when ``participants`` is not given."""
    min_participants: Annotated[int, Field(ge=0)] = DEFAULT_REASK_FROM
    """The smallest M at which anyone is re-asked (with ``share``)."""
    runs: Count = 3
    """Answer runs of each (run 0 included; 1: no re-asking)."""

    @model_validator(mode="after")
    def _one_rule(self) -> VarianceSpec:
        if self.participants is not None:
            both = [k for k in ("share", "min_participants") if k in self.model_fields_set]
            if both:
                fail([((k,), f"give either participants (a fixed R) or {k}") for k in both])
        return self


class DesignSpec(SchemaModel):
    """A named size (``[designs.<name>]``); every key optional (the battery's own)."""

    participants: Annotated[int, Field(ge=_MIN_PARTICIPANTS)] | None = None
    """M."""
    effects: Annotated[Array[Text], Field(min_length=1)] | None = None
    """The studies run, in the battery's order (--effects overrides)."""
    chunk: Count | None = None
    """Participants per unit."""


class BatteryFile(SchemaModel):
    """A replication battery's ``battery.toml``."""

    kind: Literal["replication"]
    """The battery kind."""
    title: Text | None = None
    """A readable title (default: the directory's name)."""
    source: Text = DEFAULT_SOURCE
    """The replication project the effects come from, e.g. "Many Labs 1"."""
    population: Text = "population.toml"
    """The population file, relative to the battery directory."""
    effects: Text = "effects"
    """The directory of effect files."""
    models: Annotated[Array[Text], Field(min_length=1)] = ("smollm2-135m-instruct",)
    """The default models (--model overrides)."""
    participants: Annotated[int, Field(ge=_MIN_PARTICIPANTS)] = 40
    """M, the population size (--participants)."""
    mode: Literal["sampled", "expected"] = "sampled"
    """The answering mode (--mode)."""
    seed: Annotated[int, Field(ge=0)] = 0
    """The answer sampling seed."""
    chunk: Count = 8
    """Participants per unit."""
    n_ctx: Annotated[int, Field(ge=512)] = 8192
    """KV cells of each engine."""
    answering: AnsweringSpec = AnsweringSpec()
    """How participants answer."""
    variance: VarianceSpec = VarianceSpec()
    """The variance decomposition."""
    designs: dict[Text, DesignSpec] = Field(default_factory=dict)
    """Named sizes (--design NAME)."""


def reask_count(participants: int, share: float, min_participants: int) -> int:
    """How many participants are re-asked: ``round(share * M)``, none below the threshold.

    Re-asking feeds the variance decomposition (between personas against between
    answer runs of one persona), which needs several re-asked participants to mean
    anything; a pilot below ``min_participants`` skips it and saves its cost.

    Args:
        participants: the population size M.
        share: the share of M re-asked, in [0, 1].
        min_participants: the smallest M at which anyone is re-asked.

    Returns:
        R, between 0 and M (halves round up).
    """
    if participants < min_participants:
        return 0
    return min(participants, math.floor(share * participants + 0.5))


@dataclass(frozen=True)
class Design:
    """A named size of a replication battery (``[designs.<name>]``); None: the battery's own.

    Attributes:
        name: the design's name.
        participants: M.
        effects: the studies run, in the battery's order.
        chunk: participants per unit.
    """

    name: str
    participants: int | None = None
    effects: tuple[str, ...] | None = None
    chunk: int | None = None


@dataclass(frozen=True)
class ReplicationBattery:
    """A loaded, validated replication battery.

    Attributes:
        directory: the battery directory.
        title: a readable title.
        population: the attribute distributions and backstory template.
        effects: the studies, by file name.
        models: the default models.
        participants: the default population size M.
        mode: the default answering mode.
        seed: the answer sampling seed.
        chunk: participants per unit.
        n_ctx: KV cells of each engine.
        participant_name: the respondent's name in the dialogue.
        expected_samples: numeric samples averaged in expected mode.
        reask: a fixed R of re-asked participants (``[variance] participants``), or
            None: R scales with M (:func:`reask_count`).
        runs: answer runs of each re-asked participant (run 0 included).
        reask_share: the share of M re-asked when ``reask`` is None.
        reask_from: the smallest M at which anyone is re-asked when ``reask`` is None.
        designs: the named sizes, by name.
        files: every file's decoded TOML by relative path (recorded in the manifest).
        source: the replication project the effects come from ("Many Labs 1").
        revision: how the battery turns its files into numbers, raised when that
            changes the numbers (recorded, so a resumed run does not mix them). 2: a
            re-asked choice or scale whose prompt did not change keeps run 0's
            distribution and is only drawn again.
    """

    revision: ClassVar[int] = 2
    directory: Path
    title: str
    population: PopulationSpec
    effects: tuple[Effect, ...]
    models: tuple[str, ...]
    participants: int
    mode: str
    seed: int
    chunk: int
    n_ctx: int
    participant_name: str
    expected_samples: int
    reask: int | None
    runs: int
    files: Mapping[str, Any] = field(repr=False)
    kind: str = KIND
    source: str = DEFAULT_SOURCE
    reask_share: float = DEFAULT_REASK_SHARE
    reask_from: int = DEFAULT_REASK_FROM
    designs: Mapping[str, Design] = field(default_factory=dict, repr=False)

    def effect(self, name: str) -> Effect:
        """An effect by name."""
        for effect in self.effects:
            if effect.name == name:
                return effect
        raise KeyError(f"the battery has no effect {name!r}")

    def plan(self, options: RunOptions) -> list[Unit]:
        """Chunks of participants per model, with the run's settings as parameters.

        Raises:
            ScenarioError: an option that does not fit (named as on the command line).
        """
        settings = self.settings(options)
        units = []
        slugs = _model_slugs(settings["models"])
        for model, slug in zip(settings["models"], slugs, strict=True):
            m = settings["participants"]
            for start in range(0, m, settings["chunk"]):
                stop = min(m, start + settings["chunk"])
                params = {k: settings[k] for k in ("mode", "persona", "runs", "reask", "samples")}
                if settings["effects"] != tuple(e.name for e in self.effects):
                    params["effects"] = list(settings["effects"])
                reasks = start < settings["reask"] and settings["runs"] > 1
                units.append(
                    Unit(
                        f"{slug}-p{start:04d}-{stop - 1:04d}",
                        model,
                        params | {"start": start, "stop": stop},
                        "reask" if reasks else "answer",
                    )
                )
        return units

    def settings(self, options: RunOptions) -> dict[str, Any]:
        """The run's settings: the options, else the battery's defaults (checked)."""
        problems: list[ScenarioIssue] = []

        def bad(option: str, message: str) -> None:
            problems.append(ScenarioIssue(_OPTIONS_SOURCE, option, message))

        design = Design("")
        if options.design is not None:
            if options.design in self.designs:
                design = self.designs[options.design]
            elif self.designs:
                bad("--design", unknown_name("design", options.design, list(self.designs)))
            else:
                bad("--design", "this replication battery has no [designs]; leave it out")
        participants = options.participants or design.participants or self.participants
        if participants < _MIN_PARTICIPANTS:
            bad("--participants", f"must be >= {_MIN_PARTICIPANTS}, got {participants}")
        mode = options.mode or self.mode
        if mode not in MODES:
            bad("--mode", unknown_name("mode", mode, MODES))
        extra = dict(options.extra)
        if options.seeds is not None:
            bad(
                "--seeds",
                "a replication battery has no seeds per condition; the answer runs of "
                f"re-asked participants are --reask-runs (e.g. --reask-runs {options.seeds})",
            )
        if "tasks" in extra:
            bad("--tasks", "applies to goal_guarding batteries; pick studies with --effects")
        runs = _positive(extra.get("reask_runs", self.runs), "--reask-runs", bad)
        for key in extra:
            if key not in (*_EXTRA_OPTIONS, "tasks"):
                bad(f"extra.{key}", unknown_name("option", key, _EXTRA_OPTIONS))
        if "reask" in extra:
            reask = _positive(extra["reask"], "extra.reask", bad, minimum=0)
        elif self.reask is not None:
            reask = self.reask
        else:
            reask = reask_count(participants, self.reask_share, self.reask_from)
        chunk = _positive(extra.get("chunk", design.chunk or self.chunk), "extra.chunk", bad)
        names = [e.name for e in self.effects]
        picked = extra.get("effects", design.effects)
        where = "--effects" if "effects" in extra else f"designs.{design.name}.effects"
        if picked is None:
            effects = tuple(names)
        else:
            for name in picked:
                if name not in names:
                    bad(where, unknown_name("effect", str(name), names))
            effects = tuple(n for n in names if n in set(picked))
        samples = _positive(
            extra.get("expected_samples", self.expected_samples), "extra.expected_samples", bad
        )
        if problems:
            raise ScenarioError(problems)
        return {
            "models": tuple(options.models) or self.models,
            "participants": participants,
            "mode": mode,
            "persona": not options.no_persona,
            "runs": runs,
            "reask": min(reask, participants),
            "chunk": chunk,
            "samples": samples,
            "effects": effects,
        }

    def population_model(self, indices: range | list[int]) -> Population:
        """The participants ``indices`` as a Mesa model of :class:`Participant` agents."""
        return Population(
            self.population, {e.name: e.condition_names for e in self.effects}, list(indices)
        )

    def run_unit(
        self, unit: Unit, engine: Engine, out: Path | None = None
    ) -> dict[str, pd.DataFrame]:
        """Interview one chunk: the ``answers`` and ``participants`` tables.

        Effects with an ``[intervention]`` get their vectors from ``out/vectors``
        (extracted there once per model; a temporary folder without ``out``) and
        add the ``interventions`` table.
        """
        p = unit.params
        effects = self.effects
        if "effects" in p:
            effects = tuple(e for e in self.effects if e.name in set(p["effects"]))
        levers = [e for e in effects if e.intervention is not None]
        prepared: dict[str, Prepared] = {}
        if levers:
            cache = Path(out) / "vectors" if out is not None else Path(tempfile.mkdtemp())
            for effect in levers:
                assert effect.intervention is not None
                prepared[effect.name] = prepare(effect.intervention, engine, unit.model, cache)
        population = Population(
            self.population, {e.name: e.condition_names for e in effects}, range_list(p)
        )
        answers = interview(
            engine,
            population.participants,
            effects,
            seed=self.seed,
            mode=str(p["mode"]),
            persona=bool(p["persona"]),
            runs=int(p["runs"]),
            reask=int(p["reask"]),
            samples=int(p["samples"]),
            name=self.participant_name,
            interventions=prepared,
        )
        participants = population.frame()
        participants["persona_used"] = bool(p["persona"])
        tables = {"answers": answers, "participants": participants}
        if prepared:
            rows = [row for name, done in prepared.items() for row in describe_rows(name, done)]
            tables["interventions"] = pd.DataFrame(rows)
        return tables

    def describe(self) -> dict[str, Any]:
        """The battery for the manifest: its title, effects and every file's content."""
        return {
            "kind": KIND,
            "title": self.title,
            "effects": [e.name for e in self.effects],
            "interventions": {
                e.name: e.intervention.text() for e in self.effects if e.intervention is not None
            },
            "population_seed": self.population.seed,
            "variance": {
                "participants": self.reask,
                "share": self.reask_share,
                "min_participants": self.reask_from,
                "runs": self.runs,
            },
            # TOML dates have no JSON form: recorded as text (no battery field uses them).
            "files": json.loads(json.dumps(dict(self.files), default=str)),
        }


def range_list(params: Mapping[str, Any]) -> list[int]:
    """The participant indices of a unit: ``start`` to ``stop - 1``."""
    return list(range(int(params["start"]), int(params["stop"])))


def _positive(value: Any, option: str, bad: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bad(option, f"expected an integer >= {minimum}, got {value!r}")
        return minimum
    return value


def _model_slugs(models: tuple[str, ...]) -> list[str]:
    """File-safe unit-id prefixes, one per model (numbered when two would clash)."""
    slugs = [re.sub(r"[^A-Za-z0-9_.-]", "_", Path(m).name) or "model" for m in models]
    if len(set(slugs)) < len(slugs):
        slugs = [f"m{i}-{slug}" for i, slug in enumerate(slugs)]
    return slugs


# --------------------------------------------------------------------------- loading


def read_files(directory: Path) -> dict[str, Any]:
    """Every file of a battery directory, decoded, by path relative to it.

    Raises:
        ScenarioError: a file cannot be read or is not valid TOML.
    """
    issues: list[ScenarioIssue] = []

    def read(path: Path) -> Any:
        try:
            return read_toml(path)
        except ScenarioError as error:
            issues.extend(error.issues)
            return None

    data = read_toml(directory / BATTERY_FILE)
    files: dict[str, Any] = {BATTERY_FILE: data}
    population = data.get("population", "population.toml")
    effects = data.get("effects", "effects")
    if isinstance(population, str):
        files[population] = read(directory / population)
    if isinstance(effects, str):
        folder = directory / effects
        if not folder.is_dir():
            message = f"expected a directory of effect files, got {str(folder)!r}"
            issues.append(ScenarioIssue(str(directory / BATTERY_FILE), "effects", message))
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            files[str(path.relative_to(directory))] = read(path)
    if issues:
        raise ScenarioError(issues)
    return files


def load(directory: str | Path) -> ReplicationBattery:
    """Read and validate a replication battery directory.

    Raises:
        ScenarioError: every problem found in any of its files, each naming the
            file, the field and what was expected.
    """
    directory = Path(directory)
    if not (directory / BATTERY_FILE).is_file():
        raise ScenarioError(
            ScenarioIssue(str(directory), "", f"a battery directory needs a {BATTERY_FILE}")
        )
    battery = build(directory, read_files(directory))
    issues = [
        issue
        for effect in battery.effects
        if effect.intervention is not None
        for issue in spec_issues(effect.intervention, str(effect.path))
    ]
    if issues:
        raise ScenarioError(issues)
    return battery


def build(directory: Path, files: Mapping[str, Any]) -> ReplicationBattery:
    """Validate decoded battery files (as :func:`read_files` returns them) into a battery.

    Raises:
        ScenarioError: every problem found in any of the files.
    """
    issues: list[ScenarioIssue] = []
    source = str(directory / BATTERY_FILE)
    spec = _validated(BatteryFile, files[BATTERY_FILE], source, {}, issues)
    raw = files[BATTERY_FILE]
    population_file, effects_dir = (
        raw.get("population", "population.toml"),
        raw.get("effects", "effects"),
    )
    context: dict[str, Any] = {}
    population = None
    if isinstance(population_file, str) and population_file in files:
        population = _validated(
            PopulationFile,
            files[population_file],
            str(directory / population_file),
            context,
            issues,
        )
    effects: list[Effect] = []
    if isinstance(effects_dir, str):
        paths = sorted(p for p in files if p.startswith(f"{effects_dir}/") and p.endswith(".toml"))
        if not paths:
            message = f"expected effect files (*.toml) in {str(directory / effects_dir)!r}"
            issues.append(ScenarioIssue(source, "effects", message))
        for rel in paths:
            if not re.fullmatch(NAME_PATTERN, Path(rel).stem):
                message = (
                    f"the file name {Path(rel).stem!r} must be a name (letters, digits, '_', '-')"
                )
                issues.append(ScenarioIssue(str(directory / rel), "", message))
                continue
            effect = _validated(EffectFile, files[rel], str(directory / rel), context, issues)
            if effect is not None:
                effects.append(effect_of(effect, directory / rel))
    # a design's effect names are checked when it is run (settings): a copy of the battery
    # with fewer effect files stays valid while it does not use the design
    if issues:
        raise ScenarioError(issues)
    assert spec is not None and population is not None
    return ReplicationBattery(
        directory=directory,
        title=spec.title or directory.name,
        population=population_spec(population, directory / population_file),
        effects=tuple(effects),
        models=spec.models,
        participants=spec.participants,
        mode=spec.mode,
        seed=spec.seed,
        chunk=spec.chunk,
        n_ctx=spec.n_ctx,
        participant_name=spec.answering.participant,
        expected_samples=spec.answering.expected_samples,
        reask=spec.variance.participants,
        runs=spec.variance.runs,
        files=dict(files),
        source=spec.source,
        reask_share=spec.variance.share,
        reask_from=spec.variance.min_participants,
        designs={
            name: Design(
                name,
                d.participants,
                tuple(d.effects) if d.effects is not None else None,
                d.chunk,
            )
            for name, d in spec.designs.items()
        },
    )


def _validated(
    model: type[M], data: Any, source: str, context: dict[str, Any], issues: list[ScenarioIssue]
) -> M | None:
    """A file validated into ``model`` with the battery's facts, or None (its issues recorded)."""
    try:
        return validate(model, data, source, context)
    except ScenarioError as error:
        issues.extend(error.issues)
        return None
