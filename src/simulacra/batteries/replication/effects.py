"""Effects: one study of the battery as data, read from one TOML file.

An effect file names its conditions (each with its stimulus text and, optionally,
lead-in questions asked and answered first), its measure (one or more items, each a
choice, Likert or numeric instrument), its scoring steps, the contrast, the targets
and, optionally, moderators. Adding a file to the battery's ``effects/`` directory
adds a study. :class:`EffectFile` is the file kind (``simulacra schema effect``; every
field is documented there, and ``scenarios/replication/many_labs_1/effects`` shows
them in use); :func:`effect_of` builds the :class:`Effect` the battery runs.

``exploratory = true`` (or the tag ``exploratory``) marks an effect without a
published main effect: it may leave out ``[target]``. ``[[moderators]]`` name a
population attribute with its levels (docs/moderators.md); references to the
population (``only``, moderators) are checked against its facts (``attributes``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from simulacra.analysis.moderators import INTERACTION, InteractionTarget, Moderator
from simulacra.analysis.replication import (
    Code,
    Composite,
    Drop,
    Rank,
    Reverse,
    ScoringStep,
    Sqrt,
)
from simulacra.instruments import Choice, FreeText, Instrument, Likert, Numeric
from simulacra.instruments.likert import MAX_POINTS
from simulacra.schema import (
    Array,
    Count,
    Expect,
    Name,
    NonNegative,
    Problem,
    SchemaModel,
    Text,
    Unique,
    describe,
    facts,
    fail,
    quote,
    unknown_name,
    with_problems,
)
from simulacra.schema.model import NAME_PATTERN

__all__ = [
    "ITEM_KINDS",
    "REPORTED_TAGS",
    "STEPS",
    "Condition",
    "Effect",
    "EffectFile",
    "Item",
    "Target",
    "compose",
    "effect_of",
]

ItemKind = Literal["choice", "likert", "numeric"]
InstrumentKind = Literal["choice", "likert", "numeric", "free_text"]
Step = Literal["code", "reverse", "drop", "sqrt", "rank", "composite"]
ITEM_KINDS: tuple[str, ...] = get_args(InstrumentKind)
"""Instrument kinds an item or lead-in may have (free text only as a lead-in)."""
STEPS: tuple[str, ...] = get_args(Step)
"""The scoring steps."""
REPORTED_TAGS = ("negative_control", "weak_control", "text_adaptation", "us_centric")
"""Tags that get a column of their own in the report."""
EXPLORATORY = "exploratory"
_RESERVED = ("condition", "participant", "run", "sample", "score")
_KIND_KEYS = {
    "choice": ("options",),
    "likert": ("points", "low", "high"),
    "numeric": ("unit", "max_tokens", "temperature"),
    "free_text": ("max_tokens", "temperature"),
}
_REQUIRED = {"choice": ("options",), "likert": ("points", "low", "high")}
_STEP_KEYS = {
    "code": ("item", "one"),
    "reverse": ("item",),
    "drop": ("item", "at_or_below", "at_or_above"),
    "sqrt": ("item",),
    "rank": ("item",),
    "composite": ("name", "items", "min_valid"),
}


# --------------------------------------------------------------------------- the runtime objects


@dataclass(frozen=True)
class Condition:
    """One condition of a study: its name, stimulus ("" for none) and lead-in questions."""

    name: str
    stimulus: str
    before: tuple[Instrument, ...] = ()


@dataclass(frozen=True)
class Item:
    """One item of the measure: its name (a score column), kind, and instrument per condition."""

    name: str
    kind: str
    instruments: Mapping[str, Instrument]


@dataclass(frozen=True)
class Target:
    """What the simulated effect is compared with (the fields of ``[target]``).

    Attributes:
        d, ci: ML1's d and confidence interval (99% in ML1's report).
        ci95, n: a 95% interval and ML1's N, if given.
        original_d, original_ci, original_n: the original study's, if known.
        published_d, published_ci: a published figure that differs from ``d``.
    """

    d: float
    ci: tuple[float, float]
    ci95: tuple[float, float] | None = None
    n: int | None = None
    original_d: float | None = None
    original_ci: tuple[float, float] | None = None
    original_n: int | None = None
    published_d: float | None = None
    published_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Effect:
    """One study: conditions, measure, scoring, contrast, targets and moderators.

    Attributes:
        name: the effect's name (its file's stem).
        title, source, tags, note: as in the file.
        conditions, items: the conditions (at least two) and the measure's items.
        steps: the scoring steps, in order.
        score, treatment, control: d is treatment minus control on ``score``.
        target: the published effect; None for an exploratory effect without one.
        only: analyse only participants whose attribute labels are listed.
        path: the file it came from.
        exploratory: no published main effect (``exploratory = true`` or the tag).
        moderators: the subgroup comparisons (``[[moderators]]``).
    """

    name: str
    title: str
    source: str
    tags: tuple[str, ...]
    note: str
    conditions: tuple[Condition, ...]
    items: tuple[Item, ...]
    steps: tuple[ScoringStep, ...]
    score: str
    treatment: str
    control: str
    target: Target | None
    only: Mapping[str, tuple[str, ...]]
    path: Path
    exploratory: bool = False
    moderators: tuple[Moderator, ...] = field(default=())

    @property
    def condition_names(self) -> tuple[str, ...]:
        """The conditions' names, in file order."""
        return tuple(c.name for c in self.conditions)

    def condition(self, name: str) -> Condition:
        """A condition by name."""
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise KeyError(f"effect {self.name!r} has no condition {name!r}")

    def lead_ins(self, condition: str) -> tuple[Instrument, ...]:
        """The condition's lead-in questions, the first carrying the stimulus."""
        cond = self.condition(condition)
        return tuple(
            _with_stimulus(instrument, cond.stimulus if i == 0 else "")
            for i, instrument in enumerate(cond.before)
        )

    def measures(self, condition: str) -> tuple[Instrument, ...]:
        """The items as asked in ``condition``: each carries the stimulus unless lead-ins do."""
        cond = self.condition(condition)
        stimulus = "" if cond.before else cond.stimulus
        return tuple(_with_stimulus(item.instruments[condition], stimulus) for item in self.items)

    def has_tag(self, tag: str) -> bool:
        """Whether the effect carries ``tag``."""
        return tag in self.tags


def compose(stimulus: str, question: str) -> str:
    """The stimulus, a blank line and the question (the question alone without one)."""
    return f"{stimulus.strip()}\n\n{question}" if stimulus.strip() else question


def _with_stimulus(instrument: Instrument, stimulus: str) -> Instrument:
    if not stimulus.strip():
        return instrument
    fields = dict(instrument.__dict__)
    fields["question"] = compose(stimulus, instrument.question)
    return type(instrument)(**fields)


# --------------------------------------------------------------------------- field types


def _by_key(adapter: TypeAdapter[Any], value: Any) -> Any:
    """``value`` validated by ``adapter``; a table's values each, errors located under the key."""
    pairs = value.items() if isinstance(value, Mapping) else [((), value)]
    out, kept = {}, []
    for key, item in pairs:
        try:
            out[key] = adapter.validate_python(item)
        except ValidationError as error:
            where = key if isinstance(key, tuple) else (key,)
            kept += [
                InitErrorDetails(
                    type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
                    loc=(*where, *e["loc"]),
                    input=e.get("input"),
                )
                for e in error.errors(include_url=False)
            ]
    fail([], kept)
    return out if isinstance(value, Mapping) else out[()]


def _adapter(inner: Any) -> TypeAdapter[Any]:
    return TypeAdapter(inner, config=ConfigDict(strict=True, allow_inf_nan=False))


def by_condition(inner: Any) -> Any:
    """A field holding a value, or a table of values keyed by condition name."""
    adapter = _adapter(inner)
    one = adapter.json_schema()
    schema = {"anyOf": [one, {"type": "object", "additionalProperties": one}]}
    return Annotated[Any, AfterValidator(lambda v: _by_key(adapter, v)), WithJsonSchema(schema)]


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        fail([((), f"expected low <= high, got [{pair[0]:g}, {pair[1]:g}]")])
    return pair


Interval = Annotated[
    Array[float],
    Field(min_length=2, max_length=2),
    Expect(size="expected [low, high], two numbers; got {got} entries"),
    AfterValidator(_ordered),
]
Options = Annotated[Array[Text], Field(min_length=2), Unique("option")]
Labels = Annotated[Array[Text], Field(min_length=1)]


Question = by_condition(Text)
OptionsBy = by_condition(Options)
Unit = by_condition(str)
CodedOne = by_condition(Labels)


def _levels(value: Any) -> tuple[str, ...] | dict[str, tuple[str, ...]]:
    """Levels as a table (level -> the labels it groups), or an array of labels (one each)."""
    if isinstance(value, list | tuple):
        return _by_key(_adapter(Annotated[Array[Text], Field(min_length=1)]), value)
    if not isinstance(value, Mapping):
        got = describe(value)
        raise PydanticCustomError(
            "levels", f"expected a table of levels or an array of labels, got {got}"
        )
    levels = _by_key(_adapter(Labels), value)
    fail(
        ((level,), f"invalid level name {quote(level)}: a name, not {quote(INTERACTION)}")
        for level in levels
        if level == INTERACTION or not re.fullmatch(NAME_PATTERN, level)
    )
    return levels


Levels = Annotated[
    Any,
    AfterValidator(_levels),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "additionalProperties": _adapter(Labels).json_schema()},
                _adapter(Labels).json_schema(),
            ]
        }
    ),
]


def _grouped(levels: Any) -> dict[str, tuple[str, ...]]:
    return dict(levels) if isinstance(levels, Mapping) else {label: (label,) for label in levels}


# --------------------------------------------------------------------------- the file's tables


class InstrumentEntry(SchemaModel):
    """A question: a lead-in (``[[conditions.before]]``, any kind) or an item of the measure."""

    name: Name
    """Its name (an item's is its score column)."""
    kind: Annotated[
        InstrumentKind, Expect(missing="missing required key 'kind' (choice, likert, numeric...)")
    ]
    """choice | likert | numeric (| free_text, for a lead-in)."""
    question: Question
    """The question; an item's may be a table keyed by condition."""
    options: OptionsBy | None = None
    """choice: two or more distinct options (or a table of them by condition)."""
    points: Annotated[int, Field(ge=2, le=MAX_POINTS)] | None = None
    """likert: the number of points."""
    low: Question | None = None
    """likert: what 1 means."""
    high: Question | None = None
    """likert: what the last point means."""
    unit: Unit | None = None
    """numeric: the unit the number is wanted in."""
    max_tokens: Count | None = None
    """numeric, free_text: the longest reply sampled (default 16)."""
    temperature: NonNegative | None = None
    """numeric, free_text: the sampling temperature (default 1.0, free text 0.8)."""

    @model_validator(mode="wrap")
    @classmethod
    def _kind_keys(cls, data: Any, handler: Any) -> Any:
        kind = data.get("kind") if isinstance(data, Mapping) else None
        if kind not in _KIND_KEYS:
            return handler(data)
        own = _KIND_KEYS[kind]
        stray = [k for k in data if k not in own and any(k in v for v in _KIND_KEYS.values())]
        problems: list[Problem] = [
            ((key,), f"{quote(key)} is not a key of a {kind} question (its keys: {', '.join(own)})")
            for key in stray
        ]
        problems += [
            ((key,), f"missing required key {quote(key)} (a {kind} question needs it)")
            for key in _REQUIRED.get(kind, ())
            if key not in data
        ]
        rest = {key: value for key, value in data.items() if key not in stray}
        return with_problems(handler, rest, problems)

    def instrument(self, effect: str, condition: str | None = None) -> Instrument:
        """The instrument as asked in ``condition`` (named ``effect.name``)."""

        def at(key: str) -> Any:
            value = getattr(self, key)
            return value[condition] if isinstance(value, Mapping) else value

        full, question = f"{effect}.{self.name}", at("question")
        if self.kind == "choice":
            return Choice(full, question, tuple(at("options")))
        if self.kind == "likert":
            return Likert(full, question, self.points, at("low"), at("high"))  # type: ignore[arg-type]
        tokens = self.max_tokens or 16
        if self.kind == "numeric":
            temperature = 1.0 if self.temperature is None else self.temperature
            return Numeric(full, question, at("unit") or "", tokens, temperature)
        return FreeText(
            full, question, tokens, 0.8 if self.temperature is None else self.temperature
        )


class ItemEntry(InstrumentEntry):
    """An item of the measure (``[[items]]``)."""

    kind: Annotated[
        ItemKind, Expect(missing="missing required key 'kind' (choice, likert, numeric)")
    ]
    """choice | likert | numeric."""


class ConditionEntry(SchemaModel):
    """A condition (``[[conditions]]``)."""

    name: Name
    """Unique name."""
    stimulus: str
    """The text put before the first question ("" for none)."""
    before: Annotated[Array[InstrumentEntry], Unique("lead-in name", "name")] = ()
    """Lead-in questions, asked and answered (in the dialogue) before the items."""

    @field_validator("before")
    @classmethod
    def _plain(cls, before: tuple[InstrumentEntry, ...]) -> tuple[InstrumentEntry, ...]:
        fail(
            ((index, key), "a lead-in belongs to one condition: give one value, not a table")
            for index, lead in enumerate(before)
            for key in ("question", "options", "low", "high", "unit")
            if isinstance(getattr(lead, key), Mapping)
        )
        return before


class StepEntry(SchemaModel):
    """A scoring step (``[[scoring]]``), applied in order."""

    step: Annotated[Step, Expect(missing=f"missing required key 'step' ({', '.join(STEPS)})")]
    """code | reverse | drop | sqrt | rank | composite."""
    item: Text | None = None
    """The item (or composite) transformed; every step but composite."""
    one: CodedOne | None = None
    """code: the options coded 1 (or a table of them by condition)."""
    at_or_below: float | None = None
    """drop: values at or below this become missing."""
    at_or_above: float | None = None
    """drop: values at or above this become missing."""
    name: Name | None = None
    """composite: the new column."""
    items: Annotated[Array[Text], Field(min_length=2)] | None = None
    """composite: the items averaged."""
    min_valid: Count | None = None
    """composite: the answers needed (default: all items)."""

    @model_validator(mode="wrap")
    @classmethod
    def _step_keys(cls, data: Any, handler: Any) -> Any:
        step = data.get("step") if isinstance(data, Mapping) else None
        if step not in _STEP_KEYS:
            return handler(data)
        own = ("step", *_STEP_KEYS[step])
        stray = [key for key in data if key not in own and key in cls.model_fields]
        problems: list[Problem] = [
            ((key,), unknown_name(f"key of a {step} step", key, own)) for key in stray
        ]
        needed = {"composite": ("name", "items"), "code": ("item", "one")}.get(step, ("item",))
        problems += [
            ((key,), f"missing required key {quote(key)} (a {step} step needs it)")
            for key in needed
            if key not in data
        ]
        if step == "drop" and "at_or_below" not in data and "at_or_above" not in data:
            problems.append(((), "a drop step needs at_or_below, at_or_above or both"))
        rest = {key: value for key, value in data.items() if key not in stray}
        return with_problems(handler, rest, problems)

    @field_validator("at_or_above")
    @classmethod
    def _above(cls, high: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("at_or_below")
        if low is not None and high is not None and low >= high:
            fail([((), f"must be above at_or_below ({low:g}), got {high:g}")])
        return high

    @field_validator("min_valid")
    @classmethod
    def _min_valid(cls, count: int | None, info: ValidationInfo) -> int | None:
        items = info.data.get("items")
        if count is not None and items is not None and count > len(items):
            fail([((), f"must be <= the {len(items)} items, got {count}")])
        return count


class ContrastEntry(SchemaModel):
    """The contrast (``[contrast]``): d = treatment minus control on ``score``."""

    score: Text
    """An item or composite, numeric after scoring."""
    treatment: Text
    """The condition whose mean comes first."""
    control: Text
    """The condition subtracted."""


class TargetEntry(SchemaModel):
    """The published effect (``[target]``)."""

    d: float
    """ML1's d."""
    ci: Interval
    """ML1's (99%) CI, [low, high]."""
    ci95: Interval | None = None
    """A 95% CI."""
    n: Annotated[int, Field(ge=4)] | None = None
    """ML1's N."""
    original_d: float | None = None
    """The original study's d."""
    original_ci: Interval | None = None
    """Its 95% CI."""
    original_n: Annotated[int, Field(ge=4)] | None = None
    """Its total N (small telescopes need it; with original_d)."""
    published_d: float | None = None
    """A published figure that differs from d."""
    published_ci: Interval | None = None
    """Its interval."""

    @field_validator("original_n")
    @classmethod
    def _with_d(cls, n: int | None, info: ValidationInfo) -> int | None:
        if n is not None and "original_d" in info.data and info.data["original_d"] is None:
            fail([((), "given without target.original_d")])
        return n


class InteractionTargetEntry(SchemaModel):
    """A published interaction (``[moderators.target]``)."""

    d_difference: float
    """d(level) - d(reference) in the source."""
    ci: Interval | None = None
    """Its interval, as published."""
    level: Text | None = None
    """The compared level (required with more than two levels)."""
    odds_ratio: Annotated[float, Field(gt=0)] | None = None
    """The published ratio of odds ratios (0/1 codes)."""
    source: str = ""
    """Where the numbers come from."""


class ModeratorEntry(SchemaModel):
    """A moderator (``[[moderators]]``): a population attribute whose labels form levels."""

    attribute: Name
    """An attribute of the population (its labels)."""
    levels: Levels
    """Level -> the labels it groups; or an array of labels, each its own level."""
    reference: Text | None = None
    """The level the others are compared with (default: the first)."""
    name: Name | None = None
    """The ``moderator`` cell of its rows (default: the attribute)."""
    target: InteractionTargetEntry | None = None
    """A published interaction to compare with."""

    @field_validator("attribute")
    @classmethod
    def _attribute(cls, attribute: str, info: ValidationInfo) -> str:
        known = facts(info).get("attributes")
        if known is not None and attribute not in known:
            fail([((), unknown_name("attribute", attribute, list(known)))])
        return attribute

    @field_validator("levels")
    @classmethod
    def _distinct(cls, levels: Any, info: ValidationInfo) -> Any:
        attribute = info.data.get("attribute")
        known = facts(info).get("attributes", {}).get(attribute)
        first: dict[str, str] = {}
        problems: list[Problem] = []
        for level, labels in _grouped(levels).items():
            for index, label in enumerate(labels):
                where = (
                    (level, index) if isinstance(levels, Mapping) else (list(levels).index(label),)
                )
                if label in first:
                    message = f"label {quote(label)} is in two levels, {quote(first[label])} and "
                    problems.append((where, message + quote(level)))
                elif known is not None and label not in known:
                    problems.append((where, unknown_name("label", label, known)))
                first.setdefault(label, level)
        if len(_grouped(levels)) < 2:
            problems.append(((), "expected at least 2 levels to compare, got 1"))
        fail(problems)
        return levels

    @field_validator("reference")
    @classmethod
    def _reference(cls, reference: str | None, info: ValidationInfo) -> str | None:
        levels = info.data.get("levels")
        if reference is not None and levels is not None and reference not in _grouped(levels):
            fail([((), unknown_name("level", reference, list(_grouped(levels))))])
        return reference

    @field_validator("target")
    @classmethod
    def _target(cls, target: Any, info: ValidationInfo) -> Any:
        if target is None or "levels" not in info.data or "reference" not in info.data:
            return target
        levels = list(_grouped(info.data["levels"]))
        reference = info.data["reference"] or levels[0]
        if target.level is None and len(levels) > 2:
            fail([(("level",), "with more than two levels, name the level the target compares")])
        if target.level is not None and target.level not in levels:
            fail([(("level",), unknown_name("level", target.level, levels))])
        if target.level == reference:
            fail([(("level",), f"{quote(reference)} is the reference; name a level compared")])
        return target

    def moderator(self) -> Moderator:
        """The analysis object."""
        target = self.target
        return Moderator(
            self.attribute,
            _grouped(self.levels),
            self.reference,
            None if target is None else InteractionTarget(**target.model_dump()),
            self.name,
        )


class EffectFile(SchemaModel):
    """An effect file: one study of a replication battery."""

    title: Text
    """A readable title."""
    source: str = ""
    """The citation."""
    tags: Array[Text] = ()
    """Labels: negative_control, weak_control, text_adaptation, us_centric are reported."""
    note: str = ""
    """Free text carried into the report."""
    exploratory: bool = False
    """No published main effect to compare with: [target] may be left out."""
    only: Annotated[dict[str, Labels], Expect(type="a table of labels by attribute")] = Field(
        default_factory=dict
    )
    """Analyse only participants with these labels (attribute -> labels)."""
    conditions: Annotated[
        Array[ConditionEntry], Field(min_length=2), Unique("condition name", "name")
    ]
    """The conditions (at least two)."""
    items: Annotated[Array[ItemEntry], Field(min_length=1), Unique("item name", "name")]
    """The measure's items."""
    scoring: Array[StepEntry] = ()
    """Scoring steps, in order."""
    contrast: ContrastEntry
    """The contrast compared."""
    target: TargetEntry | None = None
    """The published effect (required unless exploratory)."""
    moderators: Array[ModeratorEntry] = ()
    """Subgroups compared: who shows the effect."""

    @model_validator(mode="wrap")
    @classmethod
    def _across(cls, data: Any, handler: Any) -> Any:
        tags = data.get("tags") if isinstance(data, Mapping) else None
        exploratory = isinstance(data, Mapping) and (
            data.get("exploratory") is True or (isinstance(tags, list) and EXPLORATORY in tags)
        )
        problems: list[Problem] = []
        if isinstance(data, Mapping) and "target" not in data and not exploratory:
            message = "missing required key 'target' (or mark the effect exploratory = true)"
            problems.append((("target",), message))
        moderators = data.get("moderators") if isinstance(data, Mapping) else None
        seen: dict[Any, int] = {}
        for index, entry in enumerate(moderators if isinstance(moderators, list) else []):
            key = "name" if isinstance(entry, Mapping) and "name" in entry else "attribute"
            name = entry.get(key) if isinstance(entry, Mapping) else None
            if isinstance(name, str) and name in seen:
                message = f"duplicate moderator {quote(name)} (also moderators[{seen[name]}]); "
                problems.append((("moderators", index, key), message + "name one"))
            seen.setdefault(name, index)
        return with_problems(handler, data, problems)

    @field_validator("only")
    @classmethod
    def _only(cls, only: dict[str, tuple[str, ...]], info: ValidationInfo) -> Any:
        known = facts(info).get("attributes")
        if known is not None:
            fail(_labels(only, known))
        return only

    @field_validator("items")
    @classmethod
    def _items(cls, items: tuple[ItemEntry, ...], info: ValidationInfo) -> Any:
        conditions = info.data.get("conditions")
        names = [c.name for c in conditions or ()]
        leads = {lead.name for c in conditions or () for lead in c.before}
        problems: list[Problem] = []
        for index, item in enumerate(items):
            if item.name in _RESERVED:
                problems.append(
                    ((index, "name"), f"'{item.name}' is reserved; choose another name")
                )
            if item.name in leads:
                message = f"'{item.name}' is also a lead-in's name; items and lead-ins need "
                message += "distinct names"
                problems.append(((index, "name"), message))
            for key in ("question", "options", "low", "high", "unit") if conditions else ():
                value = getattr(item, key)
                if not isinstance(value, Mapping):
                    continue
                problems += [
                    ((index, key, c), unknown_name("condition", c, names))
                    for c in value
                    if c not in names
                ]
                problems += [
                    (
                        (index, key),
                        f"missing a value for condition '{c}' (a table here needs "
                        "one entry per condition)",
                    )
                    for c in names
                    if c not in value
                ]
        fail(problems)
        return items

    @field_validator("scoring")
    @classmethod
    def _scoring(cls, scoring: tuple[StepEntry, ...], info: ValidationInfo) -> Any:
        columns = _columns(info.data)
        if columns is not None:
            fail(_score(scoring, columns, [c.name for c in info.data["conditions"]])[1])
        return scoring

    @field_validator("contrast")
    @classmethod
    def _contrast(cls, contrast: ContrastEntry, info: ValidationInfo) -> ContrastEntry:
        problems: list[Problem] = []
        if "conditions" in info.data:
            names = [c.name for c in info.data["conditions"]]
            problems += [
                ((key,), unknown_name("condition", getattr(contrast, key), names))
                for key in ("treatment", "control")
                if getattr(contrast, key) not in names
            ]
        if contrast.treatment == contrast.control:
            problems.append((("control",), "must differ from contrast.treatment"))
        columns = _columns(info.data)
        if columns is not None and "scoring" in info.data:
            _score(info.data["scoring"], columns, [c.name for c in info.data["conditions"]])
            score = contrast.score
            if score not in columns:
                problems.append((("score",), unknown_name("item", score, list(columns))))
            elif columns[score].kind != "number":
                message = f"'{score}' is an uncoded choice item; add a 'code' step"
                problems.append((("score",), message))
        fail(problems)
        return contrast


def _labels(table: Mapping[str, tuple[str, ...]], known: Mapping[str, Any]) -> Any:
    """Problems of a table attribute -> labels against the population's attributes."""
    for name, labels in table.items():
        if name not in known:
            yield ((name,), unknown_name("attribute", name, list(known)))
            continue
        for index, label in enumerate(labels):
            if label not in known[name]:
                yield ((name, index), unknown_name("label", label, known[name]))


# --------------------------------------------------------------------------- scoring columns


@dataclass
class _Column:
    """What the scoring checks know of a column: its type and scale."""

    kind: str  # "choice" | "number"
    points: int | None = None  # a Likert scale still on its points
    options: Mapping[str, tuple[str, ...]] | None = None  # choice: options per condition


def _columns(data: Mapping[str, Any]) -> dict[str, _Column] | None:
    """The items' columns before scoring (None when the items or conditions are invalid)."""
    if "items" not in data or "conditions" not in data:
        return None
    names = [c.name for c in data["conditions"]]
    columns = {}
    for item in data["items"]:
        if item.kind == "choice":
            by = {c: tuple(item.instrument("", c).options) for c in names}
            columns[item.name] = _Column("choice", options=by)
        else:
            columns[item.name] = _Column("number", item.points)
    return columns


def _score(
    entries: tuple[StepEntry, ...], columns: dict[str, _Column], conditions: list[str]
) -> tuple[list[ScoringStep], list[Problem]]:
    """The scoring steps, following each column's type through them, and their problems."""
    steps: list[ScoringStep] = []
    problems: list[Problem] = []
    for index, entry in enumerate(entries):
        step, found = _step(entry, columns, conditions)
        problems += [((index, *loc), message) for loc, message in found]
        if step is not None and not found:
            steps.append(step)
    return steps, problems


def _step(
    entry: StepEntry, columns: dict[str, _Column], conditions: list[str]
) -> tuple[ScoringStep | None, list[tuple[tuple[str | int, ...], str]]]:
    kind, item = entry.step, entry.item
    if kind == "composite":
        assert entry.name is not None and entry.items is not None
        if entry.name in columns or entry.name in _RESERVED:
            return None, [
                (("name",), f"'{entry.name}' is already a column; a composite needs a new name")
            ]
        for index, part in enumerate(entry.items):
            if part not in columns:
                return None, [(("items", index), unknown_name("item", part, list(columns)))]
            if columns[part].kind != "number":
                return None, [(("items", index), f"'{part}' is a choice item; code it 0/1 first")]
        columns[entry.name] = _Column("number")
        return Composite(entry.name, entry.items, entry.min_valid or len(entry.items)), []
    assert item is not None
    if item not in columns:
        return None, [(("item",), unknown_name("item", item, list(columns)))]
    column = columns[item]
    if kind == "code":
        if column.kind != "choice":
            return None, [(("item",), f"'{item}' is not an uncoded choice item; code needs one")]
        columns[item] = _Column("number")  # coded, even when broken: no follow-on errors
        assert column.options is not None
        return _code(item, entry.one, column.options, conditions)
    if column.kind != "number":
        message = f"'{item}' is a choice item; code it 0/1 with a 'code' step before '{kind}'"
        return None, [(("item",), message)]
    if kind == "reverse":
        if column.points is None:
            return None, [
                (("item",), f"'{item}' is not a Likert item on its points; reverse needs one")
            ]
        return Reverse(item, column.points), []
    if kind == "drop":
        return Drop(item, entry.at_or_below, entry.at_or_above), []
    columns[item] = _Column("number")
    return (Sqrt(item) if kind == "sqrt" else Rank(item)), []


def _code(
    item: str, one: Any, options: Mapping[str, tuple[str, ...]], conditions: list[str]
) -> tuple[Code | None, list[tuple[tuple[str | int, ...], str]]]:
    """A code step: the options coded 1, the same in every condition or per condition."""
    if isinstance(one, Mapping):
        problems = [
            (("one", c), unknown_name("condition", c, conditions))
            for c in one
            if c not in conditions
        ]
        problems += [
            (("one",), f"missing the options coded 1 in condition '{c}'")
            for c in conditions
            if c not in one
        ]
        if problems:
            return None, problems
        groups = [(("one", c), one[c], [c]) for c in conditions]
    else:
        groups = [(("one",), one, conditions)]
    coded: dict[str, frozenset[str]] = {}
    for loc, chosen, scope in groups:
        known = sorted({option for c in scope for option in options[c]})
        bad = [option for option in chosen if option not in known]
        if bad:
            return None, [(loc, unknown_name("option", bad[0], known))]
        coded.update((c, frozenset(chosen)) for c in scope)
    return Code(item, {c: coded[c] for c in conditions}), []


# --------------------------------------------------------------------------- building


def effect_of(file: EffectFile, path: Path) -> Effect:
    """The :class:`Effect` of a validated file (its name is the file's stem)."""
    name = path.stem
    names = [c.name for c in file.conditions]
    conditions = tuple(
        Condition(c.name, c.stimulus, tuple(lead.instrument(name) for lead in c.before))
        for c in file.conditions
    )
    items = tuple(
        Item(i.name, i.kind, {c: i.instrument(name, c) for c in names}) for i in file.items
    )
    steps, problems = _score(file.scoring, _columns(file.__dict__) or {}, names)
    assert not problems, problems
    target = file.target
    return Effect(
        name=name,
        title=file.title,
        source=file.source,
        tags=file.tags,
        note=file.note,
        conditions=conditions,
        items=items,
        steps=tuple(steps),
        score=file.contrast.score,
        treatment=file.contrast.treatment,
        control=file.contrast.control,
        target=None if target is None else Target(**target.model_dump()),
        only=dict(file.only),
        path=path,
        exploratory=file.exploratory or EXPLORATORY in file.tags,
        moderators=tuple(m.moderator() for m in file.moderators),
    )
