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
    "designs",
)
_ANSWERING_KEYS = ("participant", "expected_samples")
_VARIANCE_KEYS = ("participants", "share", "min_participants", "runs")
_DESIGN_KEYS = ("participants", "effects", "chunk")
_EXTRA_OPTIONS = ("reask", "chunk", "expected_samples", "effects", "reask_runs")
_OPTIONS_SOURCE = "run options"
_MIN_PARTICIPANTS = 4
DEFAULT_REASK_SHARE = 0.2
DEFAULT_REASK_FROM = 20


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
    reask: int | None
    runs: int
    files: Mapping[str, Any] = field(repr=False)
    kind: str = KIND
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
                bad("--design", unknown("design", options.design, list(self.designs)))
            else:
                bad("--design", "this replication battery has no [designs]; leave it out")
        participants = options.participants or design.participants or self.participants
        if participants < _MIN_PARTICIPANTS:
            bad("--participants", f"must be >= {_MIN_PARTICIPANTS}, got {participants}")
        mode = options.mode or self.mode
        if mode not in MODES:
            bad("--mode", unknown("mode", mode, MODES))
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
                bad(f"extra.{key}", unknown("option", key, _EXTRA_OPTIONS))
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
                    bad(where, unknown("effect", str(name), names))
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

    def run_unit(self, unit: Unit, engine: Engine) -> dict[str, pd.DataFrame]:
        """Interview one chunk: the ``answers`` and ``participants`` tables."""
        p = unit.params
        effects = self.effects
        if "effects" in p:
            effects = tuple(e for e in self.effects if e.name in set(p["effects"]))
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
    reask = None
    if "participants" in variance:
        reask = check.integer(variance["participants"], "variance.participants", minimum=0)
        for key in ("share", "min_participants"):
            if key in variance:
                check.add(f"variance.{key}", "give either participants (a fixed R) or " + key)
    share = check.number(variance.get("share", DEFAULT_REASK_SHARE), "variance.share", minimum=0)
    if share is not None and share > 1:
        check.add("variance.share", f"must be <= 1, got {share:g}")
    reask_from = check.integer(
        variance.get("min_participants", DEFAULT_REASK_FROM), "variance.min_participants", minimum=0
    )
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
    designs = _designs(data.get("designs", {}), check)
    issues.raise_if_any()
    assert population is not None and participants is not None and mode is not None
    assert seed is not None and chunk is not None and n_ctx is not None and name is not None
    assert samples is not None and runs is not None
    assert share is not None and reask_from is not None
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
        reask_share=share,
        reask_from=reask_from,
        designs=designs,
    )


def _designs(value: Any, check: FileChecker) -> dict[str, Design]:
    """``[designs.<name>]``: named sizes, each with optional participants, effects, chunk."""
    out: dict[str, Design] = {}
    tables = check.table(value, "designs") or {}
    for name, entry in tables.items():
        path = join("designs", name)
        table = check.table(entry, path)
        if table is None:
            continue
        check.keys(table, path, _DESIGN_KEYS)
        m = table.get("participants")
        if m is not None:
            m = check.integer(m, join(path, "participants"), minimum=_MIN_PARTICIPANTS)
        chunk = table.get("chunk")
        if chunk is not None:
            chunk = check.integer(chunk, join(path, "chunk"), minimum=1)
        picked = None
        if "effects" in table:
            # names are checked when the design is run (settings), so that a copy of the
            # battery with fewer effect files stays valid while it does not use the design
            names = check.strings(table["effects"], join(path, "effects"), minimum=1)
            picked = tuple(names) if names is not None else None
        out[str(name)] = Design(str(name), m, picked, chunk)
    return out


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
