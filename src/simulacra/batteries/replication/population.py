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
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd

from simulacra.batteries.replication.checks import FileChecker, join, unknown
from simulacra.simulation.simulacrum import Simulacrum

__all__ = [
    "Attribute",
    "Participant",
    "Population",
    "PopulationSpec",
    "composition",
    "parse_population",
    "participant_key",
]

_TOP_KEYS = ("seed", "template", "attributes")
_ATTRIBUTE_KEYS = ("values", "labels", "weights", "ranges")
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
        weights: relative weights, one per value or range.
        ranges: inclusive integer ranges (``[low, high]``) drawn uniformly within.
    """

    name: str
    values: tuple[str, ...]
    labels: tuple[str, ...]
    weights: tuple[float, ...]
    ranges: tuple[tuple[int, int], ...] = ()

    def draw(self, rng: np.random.Generator) -> tuple[str, str]:
        """Draw one level: ``(text for the template, label)``."""
        p = np.asarray(self.weights, dtype=float)
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
            attributes[attribute.name], labels[attribute.name] = attribute.draw(rng)
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


# --------------------------------------------------------------------------- parsing


def parse_population(
    path: Path, data: Mapping[str, Any], check: FileChecker
) -> PopulationSpec | None:
    """Build a :class:`PopulationSpec` from ``population.toml``, recording every problem."""
    before = len(check.issues.items)
    check.keys(data, "", _TOP_KEYS, required=_TOP_KEYS)
    seed = check.integer(data["seed"], "seed", minimum=0) if "seed" in data else None
    template = check.string(data["template"], "template") if "template" in data else None
    attributes: list[Attribute] = []
    table = check.table(data.get("attributes", {}), "attributes")
    for name, entry in (table or {}).items():
        attribute = _parse_attribute(name, entry, check)
        if attribute is not None:
            attributes.append(attribute)
    if template is not None:
        _check_template(template, [a.name for a in attributes], check)
    if len(check.issues.items) > before or seed is None or template is None:
        return None
    return PopulationSpec(seed, template, tuple(attributes), path)


def _parse_attribute(name: str, entry: Any, check: FileChecker) -> Attribute | None:
    path = join("attributes", name)
    if check.name(name, path) is None:
        return None
    table = check.table(entry, path)
    if table is None:
        return None
    check.keys(table, path, _ATTRIBUTE_KEYS, required=("weights",))
    if ("values" in table) == ("ranges" in table):
        check.add(path, "expected exactly one of 'values' (texts) or 'ranges' ([low, high] pairs)")
        return None
    weights_raw = table.get("weights")
    if not isinstance(weights_raw, list):
        if "weights" in table:
            check.add(join(path, "weights"), "expected an array of numbers")
        return None
    weights = [
        check.number(w, join(join(path, "weights"), i), minimum=0)
        for i, w in enumerate(weights_raw)
    ]
    if any(w is None for w in weights):
        return None
    if sum(weights) <= 0:  # type: ignore[arg-type]
        check.add(join(path, "weights"), "expected weights summing to more than 0")
        return None
    values: list[str] = []
    ranges: list[tuple[int, int]] = []
    if "values" in table:
        parsed = check.strings(table["values"], join(path, "values"), minimum=1)
        if parsed is None:
            return None
        values = parsed
        count = len(values)
    else:
        raw = table["ranges"]
        if not isinstance(raw, list) or not raw:
            check.add(join(path, "ranges"), "expected an array of [low, high] integer pairs")
            return None
        for i, pair in enumerate(raw):
            where = join(join(path, "ranges"), i)
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in pair)
                or pair[0] > pair[1]
            ):
                check.add(where, f"expected [low, high] integers with low <= high, got {pair!r}")
                return None
            ranges.append((pair[0], pair[1]))
        count = len(ranges)
    if len(weights) != count:
        check.add(
            join(path, "weights"), f"expected {count} weights (one per level), got {len(weights)}"
        )
        return None
    if "labels" in table:
        labels = check.strings(table["labels"], join(path, "labels"))
        if labels is None:
            return None
        if len(labels) != count:
            check.add(
                join(path, "labels"), f"expected {count} labels (one per level), got {len(labels)}"
            )
            return None
    else:
        labels = values or [f"{low}-{high}" for low, high in ranges]
    return Attribute(
        name,
        tuple(values),
        tuple(labels),
        tuple(float(w) for w in weights),  # type: ignore[arg-type]
        tuple(ranges),
    )


def _check_template(template: str, names: Sequence[str], check: FileChecker) -> None:
    try:
        fields = [
            field for _, field, _, _ in string.Formatter().parse(template) if field is not None
        ]
    except ValueError as exc:
        check.add(
            "template", f"not a valid template: {exc} (write a literal brace as {{{{ or }}}})"
        )
        return
    for field in fields:
        if field not in names:
            check.add("template", unknown("attribute", field, list(names)) + f" in {{{field}}}")
