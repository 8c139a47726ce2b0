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
``[intervention]`` caps or steers the residual stream while the effect's respondents
answer (:mod:`~simulacra.batteries.replication.intervention`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from simulacra.analysis.moderators import Moderator
from simulacra.analysis.replication import ScoringStep
from simulacra.batteries.replication.intervention import (
    Intervention,
    InterventionEntry,
    intervention_of,
)
from simulacra.batteries.replication.tables import (
    ITEM_KINDS,
    RESERVED,
    STEPS,
    ConditionEntry,
    ContrastEntry,
    ItemEntry,
    Labels,
    ModeratorEntry,
    StepEntry,
    TargetEntry,
    by_condition,
    follow_steps,
    score_columns,
)
from simulacra.instruments import Instrument
from simulacra.schema import (
    Array,
    Expect,
    Problem,
    SchemaModel,
    Text,
    Unique,
    facts,
    fail,
    quote,
    unknown,
    with_problems,
)

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

REPORTED_TAGS = ("negative_control", "weak_control", "text_adaptation", "us_centric")
"""Tags that get a column of their own in the report."""
EXPLORATORY = "exploratory"
"""The tag (or ``exploratory = true``) of an effect without a published main effect."""


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
        intervention: capping or steering while its respondents answer
            (``[intervention]``, :mod:`~simulacra.batteries.replication.intervention`).
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
    intervention: Intervention | None = None

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
    intervention: InterventionEntry | None = None
    """Capping or steering along a persona vector while the respondents answer."""

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
            if item.name in RESERVED:
                problems.append(
                    ((index, "name"), f"'{item.name}' is reserved; choose another name")
                )
            if item.name in leads:
                message = f"'{item.name}' is also a lead-in's name; items and lead-ins need "
                message += "distinct names"
                problems.append(((index, "name"), message))
            for key in ("question", "options", "low", "high", "unit") if conditions else ():
                missing = (
                    "missing a value for condition '{}' (a table here needs one per condition)"
                )
                found = by_condition(getattr(item, key), names, missing)
                problems += [((index, key, *loc), message) for loc, message in found]
        fail(problems)
        return items

    @field_validator("scoring")
    @classmethod
    def _scoring(cls, scoring: tuple[StepEntry, ...], info: ValidationInfo) -> Any:
        columns = score_columns(info.data)
        if columns is not None:
            fail(follow_steps(scoring, columns, [c.name for c in info.data["conditions"]])[1])
        return scoring

    @field_validator("contrast")
    @classmethod
    def _contrast(cls, contrast: ContrastEntry, info: ValidationInfo) -> ContrastEntry:
        problems: list[Problem] = []
        for key in ("treatment", "control") if "conditions" in info.data else ():
            names = [c.name for c in info.data["conditions"]]
            problems += unknown("condition", getattr(contrast, key), names, at=(key,))
        if contrast.treatment == contrast.control:
            problems.append((("control",), "must differ from contrast.treatment"))
        columns = score_columns(info.data)
        if columns is not None and "scoring" in info.data:
            follow_steps(info.data["scoring"], columns, [c.name for c in info.data["conditions"]])
            score = contrast.score
            problems += unknown("item", score, columns, at=("score",))
            if score in columns and columns[score].kind != "number":
                message = f"'{score}' is an uncoded choice item; add a 'code' step"
                problems.append((("score",), message))
        fail(problems)
        return contrast


def _labels(table: Mapping[str, tuple[str, ...]], known: Mapping[str, Any]) -> list[Problem]:
    """Problems of a table attribute -> labels against the population's attributes."""
    problems = unknown("attribute", table, known)
    for name, labels in table.items():
        problems += unknown("label", labels, known.get(name, labels), at=(name,))
    return problems


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
    steps, problems = follow_steps(file.scoring, score_columns(file.__dict__) or {}, names)
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
        intervention=intervention_of(file.intervention, path),
    )
