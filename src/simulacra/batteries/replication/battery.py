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
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.replication.checks import FileChecker, Issues, join, read_toml, unknown
from simulacra.batteries.replication.effects import Effect, parse_effect
from simulacra.batteries.replication.interview import MODES, interview
from simulacra.batteries.replication.population import (
    Population,
    PopulationSpec,
    parse_population,
)
from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.instruments import INTERVIEWER

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine

__all__ = ["BATTERY_FILE", "KIND", "ReplicationBattery", "build", "load", "read_files"]

KIND = "replication"
BATTERY_FILE = "battery.toml"
_TOP_KEYS = (
    "kind",
    "title",
    "population",
    "effects",
    "models",
    "participants",
    "mode",
    "seed",
    "chunk",
    "n_ctx",
    "answering",
    "variance",
)
_ANSWERING_KEYS = ("participant", "expected_samples")
_VARIANCE_KEYS = ("participants", "runs")
_EXTRA_OPTIONS = ("reask", "chunk", "expected_samples")
_OPTIONS_SOURCE = "run options"
_MIN_PARTICIPANTS = 4


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
            bad("--mode", unknown("mode", mode, MODES))
        runs = options.seeds if options.seeds is not None else self.runs
        if runs < 1:
            bad("--seeds", f"answer runs must be >= 1, got {runs}")
        extra = dict(options.extra)
        for key in extra:
            if key not in _EXTRA_OPTIONS:
                bad(f"extra.{key}", unknown("option", key, _EXTRA_OPTIONS))
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
    issues = Issues()
    files: dict[str, Any] = {}
    data = read_toml(directory / BATTERY_FILE, issues)
    issues.raise_if_any()
    assert data is not None
    files[BATTERY_FILE] = data
    population = data.get("population", "population.toml")
    effects = data.get("effects", "effects")
    if isinstance(population, str):
        loaded = read_toml(directory / population, issues)
        if loaded is not None:
            files[population] = loaded
    if isinstance(effects, str):
        folder = directory / effects
        if not folder.is_dir():
            issues.items.append(
                ScenarioIssue(
                    str(directory / BATTERY_FILE),
                    "effects",
                    f"expected a directory of effect files, got {str(folder)!r}",
                )
            )
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            loaded = read_toml(path, issues)
            if loaded is not None:
                files[str(path.relative_to(directory))] = loaded
    issues.raise_if_any()
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
        ScenarioError: every problem found.
    """
    issues = Issues()
    data = files[BATTERY_FILE]
    check = FileChecker(str(directory / BATTERY_FILE), issues)
    check.keys(data, "", _TOP_KEYS, required=("kind",))
    if data.get("kind") != KIND:
        check.add("kind", f"expected '{KIND}', got {data.get('kind')!r}")
    title = check.string(data.get("title", directory.name), "title") or directory.name
    population_file = check.string(data.get("population", "population.toml"), "population")
    effects_dir = check.string(data.get("effects", "effects"), "effects")
    models = tuple(
        check.strings(data.get("models", ["smollm2-135m-instruct"]), "models", minimum=1) or ()
    )
    participants = check.integer(
        data.get("participants", 40), "participants", minimum=_MIN_PARTICIPANTS
    )
    mode = check.choice(data.get("mode", "sampled"), "mode", MODES)
    seed = check.integer(data.get("seed", 0), "seed", minimum=0)
    chunk = check.integer(data.get("chunk", 8), "chunk", minimum=1)
    n_ctx = check.integer(data.get("n_ctx", 8192), "n_ctx", minimum=512)
    answering = check.table(data.get("answering", {}), "answering") or {}
    check.keys(answering, "answering", _ANSWERING_KEYS)
    name = check.string(answering.get("participant", "Participant"), "answering.participant")
    if name == INTERVIEWER:
        check.add(
            "answering.participant", f"'{INTERVIEWER}' asks the questions; choose another name"
        )
    samples = check.integer(
        answering.get("expected_samples", 5), "answering.expected_samples", minimum=1
    )
    variance = check.table(data.get("variance", {}), "variance") or {}
    check.keys(variance, "variance", _VARIANCE_KEYS)
    reask = check.integer(variance.get("participants", 8), "variance.participants", minimum=0)
    runs = check.integer(variance.get("runs", 3), "variance.runs", minimum=1)

    population = None
    if population_file is not None and population_file in files:
        population = parse_population(
            directory / population_file,
            files[population_file],
            FileChecker(str(directory / population_file), issues),
        )
    effects: list[Effect] = []
    if effects_dir is not None:
        prefix = f"{effects_dir}/"
        paths = sorted(p for p in files if p.startswith(prefix) and p.endswith(".toml"))
        if not paths:
            check.add(
                "effects", f"expected effect files (*.toml) in {str(directory / effects_dir)!r}"
            )
        for rel in paths:
            effect_check = FileChecker(str(directory / rel), issues)
            effect = parse_effect(directory / rel, files[rel], effect_check)
            if effect is not None:
                effects.append(effect)
                if population is not None:
                    _check_only(effect, population, effect_check)
    issues.raise_if_any()
    assert population is not None and participants is not None and mode is not None
    assert seed is not None and chunk is not None and n_ctx is not None and name is not None
    assert samples is not None and reask is not None and runs is not None
    return ReplicationBattery(
        directory=directory,
        title=title,
        population=population,
        effects=tuple(effects),
        models=models,
        participants=participants,
        mode=mode,
        seed=seed,
        chunk=chunk,
        n_ctx=n_ctx,
        participant_name=name,
        expected_samples=samples,
        reask=reask,
        runs=runs,
        files=dict(files),
    )


def _check_only(effect: Effect, population: PopulationSpec, check: FileChecker) -> None:
    """An effect's ``only`` filter must name the population's attributes and labels."""
    names = [a.name for a in population.attributes]
    for attribute, labels in effect.only.items():
        path = join("only", attribute)
        if attribute not in names:
            check.add(path, unknown("attribute", attribute, names))
            continue
        known = list(dict.fromkeys(population.attribute(attribute).labels))
        for i, label in enumerate(labels):
            if label not in known:
                check.add(join(path, i), unknown("label", label, known))
