"""The stability battery's files: ``battery.toml`` (kind ``stability``) and ``pressures/*.txt``.

``battery.toml`` is validated on the shared schema layer (:mod:`simulacra.schema`;
``simulacra schema stability`` prints its JSON Schema). Each pressure is a text file,
``pressures/<name>.txt``, one interlocutor message per line (at least
:data:`MIN_PARAPHRASES`), so that a new pressure is a new file and no code. The
pressure files are read first and their names and line counts become facts the
designs are checked against. :func:`read_battery` reads a directory and raises one
:class:`~simulacra.errors.ScenarioError` with the issues of every file.

The steered sources (``steered``, ``prompted_steered``) need a persona-vector
extraction spec per assigned persona (``personas[].vector``, a file of the kind
``vector_spec``, read and validated here) and ``[steering]`` (coefficient and
blocks); ``capping = ["on"]`` needs ``[capping]`` (the role set of the Assistant
axis, the capped depth and the floor's percentile). The vectors themselves are
extracted per model when a run starts (:mod:`simulacra.batteries.stability.vectors`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.schema import (
    Array,
    Count,
    ExistingFile,
    Name,
    NonNegative,
    SchemaModel,
    Text,
    Unique,
    facts,
    fail,
    ordered_pair,
    placeholders,
    quote,
    read_toml,
    unknown,
    unknown_name,
    validate,
    with_problems,
)
from simulacra.schema.model import NAME_PATTERN

__all__ = [
    "DEFAULT_IDENTITY",
    "MIN_PARAPHRASES",
    "PLACEHOLDERS",
    "SOURCES",
    "STEERED_SOURCES",
    "WARMUP_PRESSURE",
    "AxisSpec",
    "DesignSpec",
    "Fact",
    "PersonaSpec",
    "StabilityFile",
    "StabilitySpec",
    "SteeringSpec",
    "read_battery",
    "read_pressures",
]

BATTERY_FILE = "battery.toml"
PRESSURES_DIR = "pressures"
MIN_PARAPHRASES = 5
"""Lines a pressure file needs at least: each is one paraphrase of the pressure."""
MAX_LINE_CHARS = 500
WARMUP_PRESSURE = "none"
"""The pressure file the warm-up turns of every dialogue are taken from (required)."""
PLACEHOLDERS = ("name", "target")
"""What a pressure line may contain: ``{name}`` (how the persona is called) and ``{target}``."""
DEFAULT_IDENTITY = "default"
"""The candidate name of the default assistant (no persona may take it)."""
SOURCES = ("prompted", "steered", "prompted_steered", "none")
"""The persona sources, in the order contrasts are taken (earlier minus later)."""
STEERED_SOURCES = ("steered", "prompted_steered")
"""The sources whose agent generates under its persona's vector (``engine.steering``)."""

Source = Literal["prompted", "steered", "prompted_steered", "none"]
Capping = Literal["off", "on"]


class Fact(SchemaModel):
    """A persona fact, asked as a forced choice between the answer and its distractors."""

    question: Text
    """The question put to the persona ("Where are you from?")."""
    answer: Text
    """The persona's answer, as an option text."""
    distractors: Annotated[Array[Text], Field(min_length=1), Unique("distractor")]
    """Wrong options listed beside the answer."""

    @model_validator(mode="after")
    def _answer_not_a_distractor(self) -> Fact:
        fail(
            ((("distractors", i), "a distractor repeats the answer"),)
            for i, d in enumerate(self.distractors)
            if d == self.answer
        )
        return self


Facts = Annotated[Array[Fact], Unique("fact question", "question")]


class DefaultSpec(SchemaModel):
    """The default assistant: the identity of source ``none``, the reference of prompt-to-line."""

    called: Text = "Assistant"
    """How the interlocutor's ``{name}`` calls it."""
    system: str = ""
    """Its system prompt; empty: none at all (the model's own default)."""
    self_report: Text = "an AI assistant"
    """Its option in the self-report probe."""
    facts: Facts = ()
    """Its facts, asked under the source ``none``."""


class PersonaSpec(SchemaModel):
    """A persona the agent may be assigned (and a candidate of the observer)."""

    name: Name
    """Its identifier (a unit's ``persona``)."""
    called: Text
    """How the interlocutor's ``{name}`` calls it."""
    self_report: Text
    """Its option in the self-report probe ("Mara Voss, a sea captain")."""
    description: Text
    """Its system prompt under the source ``prompted``."""
    facts: Annotated[Facts, Field(min_length=1)]
    """Facts about it, asked at the start and after the pressure."""
    vector: ExistingFile | None = None
    """Its persona-vector extraction spec (``vector_spec`` TOML; relative to the battery):
    needed by the steered sources, and for the projection on the persona's vector."""

    @field_validator("name")
    @classmethod
    def _not_default(cls, name: str) -> str:
        if name == DEFAULT_IDENTITY:
            fail(((), f"{quote(DEFAULT_IDENTITY)} names the default assistant; choose another"))
        return name


class DialogueSpec(SchemaModel):
    """Who speaks and how the persona agent's replies are sampled."""

    agent: Name = "Host"
    """The persona agent's speaker name."""
    interlocutor: Name = "Visitor"
    """The scripted interlocutor's speaker name."""
    targets: Array[Name] = ()
    """Role reassignment: ``{target}`` is the first of these that is not the assigned persona."""
    max_tokens: Count = 40
    """Most tokens per reply (a design may lower it)."""
    temperature: NonNegative = 0.8
    """Sampling temperature; 0 is greedy."""
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    """Nucleus sampling mass."""

    @model_validator(mode="after")
    def _distinct_speakers(self) -> DialogueSpec:
        problems = []
        if self.agent == self.interlocutor:
            problems.append((("interlocutor",), "the interlocutor needs a name of its own"))
        for key in ("agent", "interlocutor"):
            if getattr(self, key) == "Interviewer":
                problems.append(((key,), "'Interviewer' asks the probes; choose another name"))
        fail(problems)
        return self


class SelfReportSpec(SchemaModel):
    """The forced-choice self-report: every candidate identity is an option."""

    question: Text = "Which of these are you?"
    """The question."""


class BeliefSpec(SchemaModel):
    """The observer's tempered Bayes update over the candidate identities."""

    beta: NonNegative = 1.0
    """Temperature of the update (0: beliefs never move)."""
    normalize: Literal["none", "per_token"] = "per_token"
    """``per_token``: the mean token log-likelihood of a reply; ``none``: the sum."""


class AnalysisSpec(SchemaModel):
    """Settings of the report's statistics."""

    bootstrap: Count = 1000
    """Bootstrap resamples for every interval."""
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    """Confidence level of the intervals."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Seed of the resampling."""


class SteeringSpec(SchemaModel):
    """How a steered persona is written into the activations (Chen et al.'s persona vectors)."""

    coefficient: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    """Multiplier of the persona vector (``mean_diff``: raw activation units), per block."""
    layers: ordered_pair(int, "two blocks (inclusive)") | None = None  # type: ignore[valid-type]
    """Inclusive block range steered; default: every block of the vector (block 0 never)."""
    max_tokens: Count = 32
    """Longest extraction answer of the persona vectors."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Sampling seed of the extraction answers."""

    @field_validator("layers")
    @classmethod
    def _steerable(cls, layers: tuple[int, int] | None) -> tuple[int, int] | None:
        if layers is not None and layers[0] < 1:
            fail([((0,), f"block 0 cannot be steered (llama.cpp): expected >= 1, got {layers[0]}")])
        return layers


Fraction = Annotated[float, Field(ge=0, le=1)]


class AxisSpec(SchemaModel):
    """The Assistant axis (Lu et al.): its role set, how much of it is extracted, and capping."""

    roles: ExistingFile
    """The role set (``roles`` TOML, relative to the battery), e.g. ``../vectors/roles.toml``."""
    questions: Count = 4
    """Extraction questions per role (the first ones of the role set; fewer is faster)."""
    prompts: Count = 1
    """System prompts per role (the first ones)."""
    max_tokens: Count = 24
    """Longest extraction answer."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Sampling seed of the extraction answers."""
    depth: ordered_pair(Fraction, "two fractions of the model's depth") = (0.5, 0.75)  # type: ignore[valid-type]
    """Capped blocks: ``floor(low * n_layer) .. floor(high * n_layer)`` (at most the last block)."""
    percentile: Annotated[float, Field(gt=0, lt=100)] = 25.0
    """The floor tau: this percentile of the default assistant's projections (Lu et al.: 25)."""


class DesignSpec(SchemaModel):
    """A named design: what a run crosses."""

    models: Array[Text] = ()
    """Models to run; empty: the battery's ``models``."""
    sources: Annotated[Array[Source], Field(min_length=1), Unique("source")]
    """Persona sources: ``prompted``, ``steered``, ``prompted_steered``, ``none``."""
    personas: Literal["all"] | Annotated[Array[Name], Field(min_length=1), Unique("persona")] = (
        "all"
    )
    """Assigned personas (sources other than ``none``): names, or ``"all"``."""
    pressures: Literal["all"] | Annotated[Array[Name], Field(min_length=1), Unique("pressure")] = (
        "all"
    )
    """Pressures (files ``pressures/<name>.txt``): names, or ``"all"``."""
    paraphrases: Count = 1
    """Start lines per pressure (paraphrase p opens at line p); at most the shortest file."""
    seeds: Count = 1
    """Sampling seeds per dialogue condition."""
    turns: Annotated[int, Field(ge=2)] = 12
    """Replies of the persona agent per dialogue."""
    warmup: Count = 2
    """Small-talk turns before the pressure starts (the reference of half-life)."""
    probe_every: Count = 3
    """Self-report after turn 0, every k-th turn and the last."""
    max_tokens: Count | None = None
    """Most tokens per reply; default ``dialogue.max_tokens``."""
    capping: Annotated[Array[Capping], Field(min_length=1), Unique("capping")] = ("off",)
    """Capping along the Assistant axis: ``off``, ``on`` (needs ``[axis]``)."""
    coefficient: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """Steering coefficient of this design; default ``steering.coefficient``."""
    projections: bool = True
    """Measure (b): project every reply on the persona vectors and the Assistant axis
    (extracts them per model when the run starts; steered sources and capping always do)."""

    @field_validator("capping")
    @classmethod
    def _capping_needs_axis(cls, capping: tuple[str, ...], info: ValidationInfo) -> Any:
        if not facts(info).get("axis", True):
            fail(
                ((i,), "capping 'on' needs the Assistant axis: add [axis] with roles = <role set>")
                for i, c in enumerate(capping)
                if c == "on"
            )
        return capping

    @field_validator("personas")
    @classmethod
    def _known_personas(cls, personas: Any, info: ValidationInfo) -> Any:
        known = facts(info).get("personas")
        if known is None or personas == "all":
            return personas
        fail(unknown("persona", personas, known))
        return personas

    @field_validator("pressures")
    @classmethod
    def _known_pressures(cls, pressures: Any, info: ValidationInfo) -> Any:
        known = facts(info).get("pressures")
        if known is None or pressures == "all":
            return pressures
        fail(
            ((i,), unknown_name("pressure", p, list(known)) + f" (no {PRESSURES_DIR}/{p}.txt)")
            for i, p in enumerate(pressures)
            if p not in known
        )
        return pressures

    @model_validator(mode="after")
    def _turns(self, info: ValidationInfo) -> DesignSpec:
        problems = []
        known = facts(info).get("personas")
        with_vector = facts(info).get("vectors")
        if known is not None and with_vector is not None:
            assigned = known if self.personas == "all" else list(self.personas)
            lacking = [p for p in assigned if p in known and p not in with_vector]
            problems += [
                (
                    ("sources", i),
                    f"source {quote(s)} steers along each persona's vector, but "
                    f"{', '.join(map(quote, lacking))} has no personas[].vector",
                )
                for i, s in enumerate(self.sources)
                if s in STEERED_SOURCES and lacking
            ]
        if self.warmup >= self.turns:
            problems.append(
                (("warmup",), f"expected fewer warm-up turns than turns ({self.turns})")
            )
        known = facts(info).get("pressures")
        if known:
            used = list(known) if self.pressures == "all" else list(self.pressures)
            used = [p for p in dict.fromkeys([WARMUP_PRESSURE, *used]) if p in known]
            if used:
                shortest = min(used, key=lambda p: known[p])
                if self.paraphrases > known[shortest]:
                    problems.append(
                        (
                            ("paraphrases",),
                            f"expected at most {known[shortest]} (the lines of "
                            f"{PRESSURES_DIR}/{shortest}.txt), got {self.paraphrases}",
                        )
                    )
        fail(problems)
        return self


class StabilityFile(SchemaModel):
    """``battery.toml`` of a stability battery: personas, dialogue settings and designs."""

    kind: Literal["stability"]
    """The battery kind."""
    description: str = ""
    """One line about the battery."""
    models: Annotated[Array[Text], Field(min_length=1)]
    """Registry names or GGUF paths run by default."""
    n_ctx: Annotated[int, Field(ge=512)] = 4096
    """Context size of the engines (tokens per sequence)."""
    dialogue: DialogueSpec = DialogueSpec()
    """Speakers and sampling."""
    self_report: SelfReportSpec = SelfReportSpec()
    """The self-report probe."""
    belief: BeliefSpec = BeliefSpec()
    """The observer's update."""
    analysis: AnalysisSpec = AnalysisSpec()
    """The report's statistics."""
    default: DefaultSpec = DefaultSpec()
    """The default assistant."""
    steering: SteeringSpec = SteeringSpec()
    """How the steered sources steer."""
    axis: AxisSpec | None = None
    """The Assistant axis: projections on it, and capping (needed by ``capping = ["on"]``)."""
    personas: Annotated[Array[PersonaSpec], Field(min_length=1), Unique("persona name", "name")]
    """The personas (at least one)."""
    designs: Annotated[dict[Name, DesignSpec], Field(min_length=1)]
    """Named designs (``smoke``, ``quick``, ``full``...)."""

    @field_validator("personas")
    @classmethod
    def _record_personas(cls, personas: tuple[PersonaSpec, ...], info: ValidationInfo) -> Any:
        facts(info)["personas"] = [p.name for p in personas]
        facts(info)["vectors"] = [p.name for p in personas if p.vector is not None]
        return personas

    @model_validator(mode="wrap")
    @classmethod
    def _known_targets(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        problems: list[Any] = []
        facts(info)["axis"] = isinstance(data, dict) and data.get("axis") is not None
        dialogue = data.get("dialogue") if isinstance(data, dict) else None
        personas = data.get("personas") if isinstance(data, dict) else None
        targets = dialogue.get("targets") if isinstance(dialogue, dict) else None
        if isinstance(targets, list) and isinstance(personas, list):
            names = [str(p.get("name")) for p in personas if isinstance(p, dict)]
            problems = unknown("persona", targets, names, at=("dialogue", "targets"))
        return with_problems(handler, data, problems)

    @model_validator(mode="after")
    def _distinct_self_reports(self) -> StabilityFile:
        problems: list[Any] = []
        seen = {self.default.self_report: "default.self_report"}
        for i, persona in enumerate(self.personas):
            if persona.self_report in seen:
                message = (
                    f"the self-report options must differ (same as {seen[persona.self_report]})"
                )
                problems.append((("personas", i, "self_report"), message))
            seen.setdefault(persona.self_report, f"personas[{i}].self_report")
        fail(problems)
        return self


@dataclass(frozen=True)
class StabilitySpec:
    """A validated stability battery directory.

    Attributes:
        directory: the battery directory.
        file: ``battery.toml``, validated.
        pressures: each pressure's lines (paraphrases), by name, in file order.
    """

    directory: Path
    file: StabilityFile
    pressures: dict[str, tuple[str, ...]]

    def persona(self, name: str) -> PersonaSpec:
        """The persona called ``name``."""
        return next(p for p in self.file.personas if p.name == name)


def read_pressures(directory: Path, issues: list[ScenarioIssue]) -> dict[str, tuple[str, ...]]:
    """Read ``pressures/*.txt``: one message per line, ``#`` comments and blank lines skipped.

    Args:
        directory: the battery directory.
        issues: where problems are appended, each naming the file and the line.

    Returns:
        Each pressure's lines by name (the file's stem), in name order; a file with
        problems is listed too (its problems are in ``issues``), so that designs
        naming it are not also reported.
    """
    folder = directory / PRESSURES_DIR
    files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    names = [f.stem for f in files]
    if WARMUP_PRESSURE not in names:
        issues.append(
            ScenarioIssue(
                str(folder / f"{WARMUP_PRESSURE}.txt"),
                "",
                "file not found: the small talk of the warm-up turns (and the pressure "
                f"{quote(WARMUP_PRESSURE)}), one message per line",
            )
        )
    out: dict[str, tuple[str, ...]] = {}
    for path in files:
        source = str(path)
        if re.fullmatch(NAME_PATTERN, path.stem) is None:
            issues.append(
                ScenarioIssue(source, "", "a pressure's file name must be letters, digits, _ or -")
            )
            continue
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            issues.append(ScenarioIssue(source, "", f"not valid UTF-8 (bad byte at {exc.start})"))
            continue
        lines: list[str] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            problems = placeholders(line, PLACEHOLDERS)
            if not problems and len(line) > MAX_LINE_CHARS:
                problems = [f"expected at most {MAX_LINE_CHARS} characters, got {len(line)}"]
            issues += [ScenarioIssue(source, f"line {number}", p) for p in problems]
            lines.append(line)
        if len(lines) < MIN_PARAPHRASES:
            issues.append(
                ScenarioIssue(
                    source,
                    "",
                    f"expected at least {MIN_PARAPHRASES} messages (paraphrases), one per "
                    f"line; got {len(lines)}",
                )
            )
        out[path.stem] = tuple(lines)
    return out


def read_battery(directory: str | Path) -> StabilitySpec:
    """Read and validate a stability battery directory.

    Args:
        directory: the directory holding ``battery.toml`` and ``pressures/``.

    Returns:
        The validated battery.

    Raises:
        ScenarioError: every problem of every file, each naming the file and the field.
    """
    directory = Path(directory)
    issues: list[ScenarioIssue] = []
    pressures = read_pressures(directory, issues)
    path = directory / BATTERY_FILE
    context: dict[str, Any] = {
        "root": str(directory),
        "pressures": {name: len(lines) for name, lines in pressures.items()},
    }
    file = None
    try:
        file = validate(StabilityFile, read_toml(path), str(path), context)
    except ScenarioError as err:
        issues.extend(err.issues)
    if file is not None:
        issues += _vector_files(file)
    if issues or file is None:
        raise ScenarioError(issues)
    return StabilitySpec(directory, file, pressures)


def _vector_files(file: StabilityFile) -> list[ScenarioIssue]:
    """The problems of the files ``battery.toml`` points to: vector specs and the role set."""
    from simulacra.vectors import load_role_set, load_spec  # the vectors package is heavier

    issues: list[ScenarioIssue] = []
    paths = [(load_spec, p.vector) for p in file.personas if p.vector is not None]
    if file.axis is not None:
        paths.append((load_role_set, file.axis.roles))
    for load, path in paths:
        try:
            load(path)
        except ScenarioError as err:
            issues.extend(err.issues)
    return issues
