"""Population: simulated participants, sampled from ``population.toml``.

Each participant is a :class:`Participant`, a ``mesa.Agent`` holding its persona as
a :class:`~simulacra.simulation.simulacrum.Simulacrum` (the backstory rendered from the file's
template), its attributes, its own random order of the studies and one random
condition per study, as in Many Labs 1. Everything about participant ``i`` is drawn
from seeded streams keyed by ``(seed, i)`` (and the effect's name for its
condition), so participant ``i`` is the same whatever the population size, the
chunking into units, or which other effects the battery holds.

Schema::

    seed = 1941                           # integer >= 0
    template = "You are a {age}-year-old {gender} ..."   # {attribute} placeholders
    [attributes.gender]
    values = ["woman", "man"]             # the text put into the template
    weights = [62, 38]                    # relative weights (> 0 in total)
    labels = ["F", "M"]                   # optional short names for reports and filters
    [attributes.age]
    ranges = [[18, 22], [23, 29]]         # or: whole numbers, uniform within a range
    weights = [55, 45]
    [attributes.work]
    values = ["You study.", "You work."]
    given = "age"                         # optional: drawn given an attribute declared before
    weights = { 18-22 = [8, 2], 23-29 = [3, 7] }   # then weights by its labels (0: impossible)
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import mesa
import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from simulacra.schema import (
    Array,
    Expect,
    Name,
    NonNegative,
    Problem,
    SchemaModel,
    Text,
    facts,
    fail,
    one_or_table,
    ordered_pair,
    placeholders,
    unknown,
    unknown_name,
    with_problems,
)
from simulacra.simulation.simulacrum import Simulacrum

__all__ = [
    "Attribute",
    "Participant",
    "Population",
    "PopulationFile",
    "PopulationSpec",
    "composition",
    "participant_key",
    "population_spec",
]

_STREAM_ATTRIBUTES, _STREAM_ORDER, _STREAM_CONDITION = 0, 1, 2


def participant_key(index: int) -> str:
    """The key of participant ``index`` (``p0007``), carried into every answer."""
    return f"p{index:04d}"


@dataclass(frozen=True)
class Attribute:
    """One attribute's distribution.

    Attributes:
        name: the attribute (a template placeholder).
        values: the texts put into the template (empty for ``ranges``).
        labels: short names for reports and filters.
        weights: relative weights, one per value or range (empty when ``given``).
        ranges: inclusive integer ranges (``[low, high]``) drawn uniformly within.
        given: the attribute this one's distribution depends on (drawn before it).
        weights_given: the weights per label of ``given`` (0: an impossible combination).
    """

    name: str
    values: tuple[str, ...]
    labels: tuple[str, ...]
    weights: tuple[float, ...]
    ranges: tuple[tuple[int, int], ...] = ()
    given: str | None = None
    weights_given: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def draw(self, rng: np.random.Generator, given: str | None = None) -> tuple[str, str]:
        """Draw one level: ``(text for the template, label)``; ``given``: the parent's label."""
        p = np.asarray(self.weights if self.given is None else self.weights_given[given or ""])
        k = int(rng.choice(len(p), p=p / p.sum()))
        if self.ranges:
            low, high = self.ranges[k]
            return str(int(rng.integers(low, high + 1))), self.labels[k]
        return self.values[k], self.labels[k]


@dataclass(frozen=True)
class PopulationSpec:
    """The attribute distributions and the backstory template.

    Attributes:
        seed: the population's seed.
        template: the backstory, with ``{attribute}`` placeholders.
        attributes: the distributions, in file order.
        path: the file it came from.
    """

    seed: int
    template: str
    attributes: tuple[Attribute, ...]
    path: Path

    def attribute(self, name: str) -> Attribute:
        """An attribute by name."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(f"the population has no attribute {name!r}")


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class Participant(mesa.Agent):
    """A simulated participant of the battery.

    Attributes:
        index: the participant's number, from 0.
        key: ``p0007``, the respondent key of its answers.
        simulacrum: its persona (the rendered backstory as the description).
        attributes: attribute -> the text drawn.
        labels: attribute -> the label drawn.
        order: the effects, in the order this participant does them.
        conditions: effect -> the condition drawn.
    """

    model: Population

    def __init__(
        self,
        model: Population,
        index: int,
        attributes: Mapping[str, str],
        labels: Mapping[str, str],
        order: Sequence[str],
        conditions: Mapping[str, str],
    ) -> None:
        super().__init__(model)
        self.index = index
        self.key = participant_key(index)
        self.attributes = dict(attributes)
        self.labels = dict(labels)
        self.order = tuple(order)
        self.conditions = dict(conditions)
        persona = model.spec.template.format_map(self.attributes)
        self.simulacrum = Simulacrum(self.key, persona, tuple(self.labels.values()))

    def __repr__(self) -> str:
        return f"Participant({self.key})"

    @property
    def persona(self) -> str:
        """The persona prompt: the rendered backstory."""
        return self.simulacrum.description

    def row(self) -> dict[str, Any]:
        """The participant as one row of the ``participants`` table."""
        row: dict[str, Any] = {"participant": self.key, "index": self.index}
        for name, label in self.labels.items():
            row[name] = label
            if self.model.spec.attribute(name).ranges:
                row[f"{name}_value"] = int(self.attributes[name])
        row["persona"] = self.persona
        row["order"] = ",".join(self.order)
        return row


class Population(mesa.Model):
    """The participants ``indices`` of a population, drawn from ``spec``.

    Args:
        spec: the attribute distributions and template.
        effects: effect name -> its condition names (the studies everyone does).
        indices: which participants to create (their draws do not depend on the others).
    """

    def __init__(
        self,
        spec: PopulationSpec,
        effects: Mapping[str, Sequence[str]],
        indices: Sequence[int],
    ) -> None:
        super().__init__(seed=spec.seed)
        self.spec = spec
        self.effects = {name: tuple(conds) for name, conds in sorted(effects.items())}
        for index in indices:
            self._draw(index)

    def _draw(self, index: int) -> Participant:
        rng = _stream(self.spec.seed, index, _STREAM_ATTRIBUTES)
        attributes, labels = {}, {}
        for attribute in self.spec.attributes:
            parent = None if attribute.given is None else labels[attribute.given]
            attributes[attribute.name], labels[attribute.name] = attribute.draw(rng, parent)
        names = list(self.effects)
        order = [
            names[k] for k in _stream(self.spec.seed, index, _STREAM_ORDER).permutation(len(names))
        ]
        conditions = {}
        for name, conds in self.effects.items():
            crc = zlib.crc32(name.encode("utf-8"))
            rng = _stream(self.spec.seed, index, _STREAM_CONDITION, crc)
            conditions[name] = conds[int(rng.integers(len(conds)))]
        return Participant(self, index, attributes, labels, order, conditions)

    @property
    def participants(self) -> list[Participant]:
        """The participants, by index."""
        return sorted(self.agents, key=lambda agent: agent.index)

    def frame(self) -> pd.DataFrame:
        """The ``participants`` table: one row per participant."""
        return pd.DataFrame([p.row() for p in self.participants])


def composition(participants: pd.DataFrame, spec: PopulationSpec) -> pd.DataFrame:
    """The population's composition: per attribute and label, count and share.

    Args:
        participants: the ``participants`` table (one row per participant).
        spec: the population (its attributes and label order).

    Returns:
        Columns ``attribute, label, count, share``, labels in the file's order.
    """
    rows = []
    people = participants.drop_duplicates("participant")
    total = len(people)
    for attribute in spec.attributes:
        if attribute.name not in people:
            continue
        counts = people[attribute.name].value_counts()
        for label in dict.fromkeys(attribute.labels):
            count = int(counts.get(label, 0))
            rows.append(
                {
                    "attribute": attribute.name,
                    "label": label,
                    "count": count,
                    "share": count / total if total else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=["attribute", "label", "count", "share"])


# --------------------------------------------------------------------------- the file


Range = ordered_pair(int, "two integers")
Weights = one_or_table(Array[Annotated[NonNegative, Expect(noun="weight")]])
_ONE_OF = "expected exactly one of 'values' (texts) or 'ranges' ([low, high] pairs)"


class AttributeEntry(SchemaModel):
    """One attribute's distribution (``[attributes.NAME]``): values or ranges, with weights."""

    values: Annotated[Array[Text], Field(min_length=1)] | None = None
    """The texts put into the template."""
    ranges: Annotated[Array[Range], Field(min_length=1)] | None = None
    """Or: inclusive [low, high] integer ranges, drawn uniformly within."""
    given: Name | None = None
    """An attribute declared before this one that its distribution depends on."""
    weights: Weights
    """Relative weights, one per value or range (> 0 in total); with ``given``, a table of
    them by the label of ``given`` (0: an impossible combination)."""
    labels: Array[Text] | None = None
    """Short names for reports and filters, one per level (default: the values, or low-high)."""

    @model_validator(mode="wrap")
    @classmethod
    def _one_kind(cls, data: Any, handler: Any) -> Any:
        neither_or_both = isinstance(data, Mapping) and ("values" in data) == ("ranges" in data)
        return with_problems(handler, data, [((), _ONE_OF)] if neither_or_both else [])

    @field_validator("weights", "labels")
    @classmethod
    def _one_per_level(cls, given: Any, info: ValidationInfo) -> Any:
        levels = info.data.get("values") or info.data.get("ranges")
        noun, parent = info.field_name, info.data.get("given")
        table = isinstance(given, Mapping)
        if noun == "weights" and "given" in info.data and table != (parent is not None):
            message = f"with given = {parent!r}, expected a table of weights by its label"
            fail([((), message if parent else "a table of weights needs given = 'ATTRIBUTE'")])
        problems: list[Problem] = []
        for key, row in given.items() if table else [((), given)] if given is not None else []:
            where = key if isinstance(key, tuple) else (key,)
            if noun == "weights" and sum(row) <= 0:
                problems.append(
                    (
                        where,
                        "expected weights summing to more than 0"
                        + (f" (no level is possible for {parent} {key!r})" if table else ""),
                    )
                )
            if levels is not None and len(row) != len(levels):
                message = f"expected {len(levels)} {noun} (one per level), got {len(row)}"
                problems.append((where, message))
        fail(problems)
        return given


class PopulationFile(SchemaModel):
    """A population file: the backstory template and the attributes' distributions."""

    seed: Annotated[int, Field(ge=0)]
    """The population's seed."""
    template: Text
    """The backstory, with {attribute} placeholders."""
    attributes: Annotated[dict[Name, AttributeEntry], Expect(type="a table of attributes")]
    """The attributes, in file order ([attributes.NAME] tables)."""

    @model_validator(mode="wrap")
    @classmethod
    def _placeholders(cls, data: Any, handler: Any) -> Any:
        template, attributes = (
            data.get(k) if isinstance(data, Mapping) else None for k in ("template", "attributes")
        )
        problems: list[Problem] = []
        if isinstance(template, str) and isinstance(attributes, Mapping):
            found = placeholders(template, list(attributes), "attribute")
            problems = [(("template",), message) for message in found]
        return with_problems(handler, data, problems)

    @field_validator("attributes")
    @classmethod
    def _names(cls, attributes: dict[str, AttributeEntry], info: ValidationInfo) -> Any:
        known: dict[str, list[str]] = {}
        for name, entry in attributes.items():
            fail(_parent(name, entry, known, list(attributes)))
            known[name] = list(dict.fromkeys(_labels(entry)))
        facts(info)["attributes"] = known
        return attributes


def _parent(name: str, entry: AttributeEntry, known: dict[str, list[str]], names: list[str]) -> Any:
    """Problems of an attribute's ``given``: declared before it, its labels all weighted."""
    parent, weights = entry.given, entry.weights
    if parent is None:
        return
    if parent not in known:
        after = parent in names and parent != name
        message = (
            f"{parent!r} is declared after {name!r}; declare it first"
            if after
            else (unknown_name("attribute", parent, list(known)))
        )
        yield ((name, "given"), message)
        return
    yield from unknown(f"{parent} label", weights, known[parent], at=(name, "weights"))
    for label in known[parent]:
        if label not in weights:
            yield ((name, "weights"), f"missing weights for {parent} {label!r}")


def _labels(entry: AttributeEntry) -> tuple[str, ...]:
    if entry.labels is not None:
        return entry.labels
    return entry.values or tuple(f"{low}-{high}" for low, high in entry.ranges or ())


def population_spec(file: PopulationFile, path: Path) -> PopulationSpec:
    """The :class:`PopulationSpec` of a validated population file."""
    attributes = tuple(
        Attribute(
            name,
            e.values or (),
            _labels(e),
            () if e.given else e.weights,
            tuple(map(tuple, e.ranges or ())),
            e.given,
            dict(e.weights) if e.given else {},
        )
        for name, e in file.attributes.items()
    )
    return PopulationSpec(file.seed, file.template, attributes, path)
