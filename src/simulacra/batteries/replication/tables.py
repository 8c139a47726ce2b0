"""Tables: the parts of an effect file as pydantic models, with the checks inside each.

The questions (``[[conditions.before]]`` lead-ins and ``[[items]]``, whose texts may be
tables keyed by condition), the scoring steps (and :func:`follow_steps`, which follows
each score column's type through them), the contrast, the target and the moderators.
:class:`~simulacra.batteries.replication.effects.EffectFile` puts them together and
checks them against each other and against the population.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

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
    facts,
    fail,
    kind_keys,
    one_or_table,
    ordered_pair,
    quote,
    unknown,
)
from simulacra.schema.model import NAME_PATTERN

__all__ = [
    "ITEM_KINDS",
    "RESERVED",
    "STEPS",
    "ConditionEntry",
    "ContrastEntry",
    "InstrumentEntry",
    "InteractionTargetEntry",
    "ItemEntry",
    "Labels",
    "ModeratorEntry",
    "StepEntry",
    "TargetEntry",
    "by_condition",
    "follow_steps",
    "grouped",
    "score_columns",
]

ItemKind = Literal["choice", "likert", "numeric"]
InstrumentKind = Literal["choice", "likert", "numeric", "free_text"]
Step = Literal["code", "reverse", "drop", "sqrt", "rank", "composite"]
ITEM_KINDS: tuple[str, ...] = get_args(InstrumentKind)
"""Instrument kinds an item or lead-in may have (free text only as a lead-in)."""
STEPS: tuple[str, ...] = get_args(Step)
"""The scoring steps."""
RESERVED = ("condition", "participant", "run", "sample", "score")
_KIND_KEYS = {
    "choice": ("options",),
    "likert": ("points", "low", "high"),
    "numeric": ("unit", "max_tokens", "temperature"),
    "free_text": ("max_tokens", "temperature"),
}
_REQUIRED = {"choice": ("options",), "likert": ("points", "low", "high")}
_STEP_REQUIRED = {"code": ("item", "one"), "composite": ("name", "items")} | {
    step: ("item",) for step in ("reverse", "drop", "sqrt", "rank")
}
_STEP_KEYS = {
    "code": ("item", "one"),
    "reverse": ("item",),
    "drop": ("item", "at_or_below", "at_or_above"),
    "sqrt": ("item",),
    "rank": ("item",),
    "composite": ("name", "items", "min_valid"),
}


# --------------------------------------------------------------------------- field types


Interval = ordered_pair(float, "two numbers")
Options = Annotated[Array[Text], Field(min_length=2), Unique("option")]
Labels = Annotated[Array[Text], Field(min_length=1)]


Question = one_or_table(Text)
OptionsBy = one_or_table(Options)
Unit = one_or_table(str)
LabelsBy = one_or_table(Labels)


def grouped(levels: Any) -> dict[str, tuple[str, ...]]:
    """A moderator's levels as a table (an array of labels: each label its own level)."""
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
        return kind_keys(handler, data, "kind", _KIND_KEYS, _REQUIRED, "question")

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
    one: LabelsBy | None = None
    """code: the options coded 1 (or a table of them by condition)."""
    at_or_below: float | None = None
    """drop: values at or below this become missing."""
    at_or_above: float | None = Field(None, validate_default=True)
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
        return kind_keys(handler, data, "step", _STEP_KEYS, _STEP_REQUIRED, "step")

    @field_validator("at_or_above")
    @classmethod
    def _above(cls, high: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("at_or_below")
        if (
            info.data.get("step") == "drop"
            and "at_or_below" in info.data
            and low is None
            and high is None
        ):
            fail([((), "a drop step needs at_or_below, at_or_above or both")])
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
    levels: LabelsBy
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
        if known is not None:
            fail(unknown("attribute", attribute, known))
        return attribute

    @field_validator("levels")
    @classmethod
    def _distinct(cls, levels: Any, info: ValidationInfo) -> Any:
        attribute = info.data.get("attribute")
        known = facts(info).get("attributes", {}).get(attribute)
        first: dict[str, str] = {}
        problems: list[Problem] = []
        for level, labels in grouped(levels).items():
            for index, label in enumerate(labels):
                where = (
                    (level, index) if isinstance(levels, Mapping) else (list(levels).index(label),)
                )
                if label in first:
                    message = f"label {quote(label)} is in two levels, {quote(first[label])} and "
                    problems.append((where, message + quote(level)))
                elif known is not None:
                    problems += unknown("label", label, known, at=where)
                first.setdefault(label, level)
        if len(grouped(levels)) < 2:
            problems.append(((), "expected at least 2 levels to compare, got 1"))
        problems += [
            ((level,), f"invalid level name {quote(level)}: a name, not {quote(INTERACTION)}")
            for level in levels
            if isinstance(levels, Mapping)
            and (level == INTERACTION or not re.fullmatch(NAME_PATTERN, level))
        ]
        fail(problems)
        return levels

    @field_validator("reference")
    @classmethod
    def _reference(cls, reference: str | None, info: ValidationInfo) -> str | None:
        levels = info.data.get("levels")
        if reference is not None and levels is not None:
            fail(unknown("level", reference, grouped(levels)))
        return reference

    @field_validator("target")
    @classmethod
    def _target(cls, target: Any, info: ValidationInfo) -> Any:
        if target is None or "levels" not in info.data or "reference" not in info.data:
            return target
        levels = list(grouped(info.data["levels"]))
        reference = info.data["reference"] or levels[0]
        if target.level is None and len(levels) > 2:
            fail([(("level",), "with more than two levels, name the level the target compares")])
        if target.level is not None:
            fail(unknown("level", target.level, levels, at=("level",)))
        if target.level == reference:
            fail([(("level",), f"{quote(reference)} is the reference; name a level compared")])
        return target

    def moderator(self) -> Moderator:
        """The analysis object."""
        target = self.target
        return Moderator(
            self.attribute,
            grouped(self.levels),
            self.reference,
            None if target is None else InteractionTarget(**target.model_dump()),
            self.name,
        )


# --------------------------------------------------------------------------- scoring columns


@dataclass
class _Column:
    """What the scoring checks know of a column: its type and scale."""

    kind: str  # "choice" | "number"
    points: int | None = None  # a Likert scale still on its points
    options: Mapping[str, tuple[str, ...]] | None = None  # choice: options per condition


def score_columns(data: Mapping[str, Any]) -> dict[str, _Column] | None:
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


def follow_steps(
    entries: tuple[StepEntry, ...], columns: dict[str, _Column], conditions: list[str]
) -> tuple[list[ScoringStep], list[Problem]]:
    """The scoring steps, following each column's type through them, and their problems."""
    steps: list[ScoringStep] = []
    problems: list[Problem] = []
    for index, entry in enumerate(entries):
        try:
            steps.append(_step(entry, columns, conditions))
        except _StepError as bad:
            problems += [((index, *loc), message) for loc, message in bad.args]
    return steps, problems


class _StepError(Exception):
    """A step's problems: ``(location, message)`` pairs."""


def _step(entry: StepEntry, columns: dict[str, _Column], conditions: list[str]) -> ScoringStep:
    kind, item = entry.step, entry.item or ""
    if kind == "composite":
        assert entry.name is not None and entry.items is not None
        if entry.name in columns or entry.name in RESERVED:
            raise _StepError(
                (("name",), f"'{entry.name}' is already a column; a composite needs a new name")
            )
        for index, part in enumerate(entry.items):
            if part not in columns:
                raise _StepError(*unknown("item", part, columns, at=("items", index)))
            if columns[part].kind != "number":
                raise _StepError(
                    (("items", index), f"'{part}' is a choice item; code it 0/1 first")
                )
        columns[entry.name] = _Column("number")
        return Composite(entry.name, entry.items, entry.min_valid or len(entry.items))
    if item not in columns:
        raise _StepError(*unknown("item", item, columns, at=("item",)))
    column = columns[item]
    if kind == "code":
        if column.options is None:
            raise _StepError((("item",), f"'{item}' is not an uncoded choice item; code needs one"))
        columns[item] = _Column("number")  # coded, even when broken: no follow-on errors
        return Code(item, _coded(entry.one, column.options, conditions))
    if column.kind != "number":
        message = f"'{item}' is a choice item; code it 0/1 with a 'code' step before '{kind}'"
        raise _StepError((("item",), message))
    if kind == "reverse" and column.points is None:
        raise _StepError(
            (("item",), f"'{item}' is not a Likert item on its points; reverse needs one")
        )
    if kind == "reverse":
        return Reverse(item, column.points)  # type: ignore[arg-type]
    if kind == "drop":
        return Drop(item, entry.at_or_below, entry.at_or_above)
    columns[item] = _Column("number")
    return Sqrt(item) if kind == "sqrt" else Rank(item)


def by_condition(value: Any, conditions: list[str], missing: str) -> list[Problem]:
    """Problems of a table keyed by condition: unknown conditions, and ``missing`` ones."""
    if not isinstance(value, Mapping):
        return []
    problems = unknown("condition", value, conditions)
    return problems + [((), missing.format(c)) for c in conditions if c not in value]


def _coded(
    one: Any, options: Mapping[str, tuple[str, ...]], conditions: list[str]
) -> dict[str, frozenset[str]]:
    """A code step's options coded 1 per condition (given once, or per condition)."""
    problems = by_condition(one, conditions, "missing the options coded 1 in condition '{}'")
    if problems:
        raise _StepError(*((("one", *loc), message) for loc, message in problems))
    groups = (
        [((c,), one[c], [c]) for c in conditions]
        if isinstance(one, Mapping)
        else [((), one, conditions)]
    )
    coded: dict[str, frozenset[str]] = {}
    for loc, chosen, scope in groups:
        known = sorted({option for c in scope for option in options[c]})
        bad = [option for option in chosen if option not in known]
        if bad:
            raise _StepError(*unknown("option", bad[0], known, at=("one", *loc)))
        coded.update((c, frozenset(chosen)) for c in scope)
    return {c: coded[c] for c in conditions}
