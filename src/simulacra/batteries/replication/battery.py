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
    participants = 8                    # R re-asked participants (RunOptions.extra["reask"])
    runs = 3                            # answer runs of each (--seeds); 1: no re-asking
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import pandas as pd
from pydantic import Field, field_validator

from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.replication.effects import Effect, EffectFile, effect_of
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
_EXTRA_OPTIONS = ("reask", "chunk", "expected_samples")
_OPTIONS_SOURCE = "run options"
_MIN_PARTICIPANTS = 4
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
    """The variance decomposition (``[variance]``)."""

    participants: Annotated[int, Field(ge=0)] = 8
    """R, the participants re-asked."""
    runs: Count = 3
    """Answer runs of each (run 0 included; 1: no re-asking)."""


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
        reask: R, the participants re-asked for the variance decomposition.
        runs: answer runs of each re-asked participant (run 0 included).
        files: every file's decoded TOML by relative path (recorded in the manifest).
        source: the replication project the effects come from ("Many Labs 1").
    """

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
    reask: int
    runs: int
    files: Mapping[str, Any] = field(repr=False)
    kind: str = KIND
    source: str = DEFAULT_SOURCE

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
                units.append(
                    Unit(
                        f"{slug}-p{start:04d}-{stop - 1:04d}",
                        model,
                        params | {"start": start, "stop": stop},
                    )
                )
        return units

    def settings(self, options: RunOptions) -> dict[str, Any]:
        """The run's settings: the options, else the battery's defaults (checked)."""
        problems: list[ScenarioIssue] = []

        def bad(option: str, message: str) -> None:
            problems.append(ScenarioIssue(_OPTIONS_SOURCE, option, message))

        if options.design is not None:
            bad("--design", "a replication battery has no designs; leave it out")
        participants = options.participants or self.participants
        if participants < _MIN_PARTICIPANTS:
            bad("--participants", f"must be >= {_MIN_PARTICIPANTS}, got {participants}")
        mode = options.mode or self.mode
        if mode not in MODES:
            bad("--mode", unknown_name("mode", mode, MODES))
        runs = options.seeds if options.seeds is not None else self.runs
        if runs < 1:
            bad("--seeds", f"answer runs must be >= 1, got {runs}")
        extra = dict(options.extra)
        for key in extra:
            if key not in _EXTRA_OPTIONS:
                bad(f"extra.{key}", unknown_name("option", key, _EXTRA_OPTIONS))
        reask = _positive(extra.get("reask", self.reask), "extra.reask", bad, minimum=0)
        chunk = _positive(extra.get("chunk", self.chunk), "extra.chunk", bad)
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
        }

    def population_model(self, indices: range | list[int]) -> Population:
        """The participants ``indices`` as a Mesa model of :class:`Participant` agents."""
        return Population(
            self.population, {e.name: e.condition_names for e in self.effects}, list(indices)
        )

    def run_unit(self, unit: Unit, engine: Engine) -> dict[str, pd.DataFrame]:
        """Interview one chunk: the ``answers`` and ``participants`` tables."""
        p = unit.params
        population = self.population_model(range(int(p["start"]), int(p["stop"])))
        answers = interview(
            engine,
            population.participants,
            self.effects,
            seed=self.seed,
            mode=str(p["mode"]),
            persona=bool(p["persona"]),
            runs=int(p["runs"]),
            reask=int(p["reask"]),
            samples=int(p["samples"]),
            name=self.participant_name,
        )
        participants = population.frame()
        participants["persona_used"] = bool(p["persona"])
        return {"answers": answers, "participants": participants}

    def describe(self) -> dict[str, Any]:
        """The battery for the manifest: its title, effects and every file's content."""
        return {
            "kind": KIND,
            "title": self.title,
            "effects": [e.name for e in self.effects],
            "population_seed": self.population.seed,
            # TOML dates have no JSON form: recorded as text (no battery field uses them).
            "files": json.loads(json.dumps(dict(self.files), default=str)),
        }


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
    return build(directory, read_files(directory))


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
