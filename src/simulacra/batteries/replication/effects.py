"""Effects: one study of the battery as data, read from one TOML file.

An effect file names its conditions (each with its stimulus text and, optionally,
lead-in questions asked and answered first), its measure (one or more items, each a
choice, Likert or numeric instrument), its scoring steps, the contrast and the
targets. Adding a file to the battery's ``effects/`` directory adds a study.

Schema (every field is checked; see ``scenarios/replication/many_labs_1/effects``)::

    title = "Sunk costs"                  # required
    source = "Oppenheimer et al. (2009)"  # optional citation
    tags = ["negative_control"]           # optional; negative_control, weak_control,
                                          #   text_adaptation, us_centric are reported
    note = "..."                          # optional
    [only]                                # optional: analyse only these participants
    country = ["US"]                      #   attribute -> labels (population.toml)

    [[conditions]]                        # at least two
    name = "paid"
    stimulus = "Imagine ..."              # text put before the first question ("" for none)
    [[conditions.before]]                 # optional lead-ins, asked and answered in order;
    name = "describe"                     #   the answers stay in the dialogue
    kind = "free_text"                    #   choice | likert | numeric | free_text
    question = "Describe what you imagined."

    [[items]]                             # the measure: at least one item
    name = "go"
    kind = "likert"                       # choice | likert | numeric
    question = "Would you go?"            # question, options, low, high and unit may be
    points = 9                            #   tables keyed by condition name instead
    low = "definitely stay at home"
    high = "definitely go to the game"

    [[scoring]]                           # optional steps, in order:
    step = "code"                         #   code: item, one (options coded 1; a list,
    item = "program"                      #     or a table keyed by condition)
    one = ["Program B"]                   #   reverse: item (a Likert item)
                                          #   drop: item, at_or_below and/or at_or_above
                                          #   sqrt: item; rank: item
                                          #   composite: name, items, min_valid

    [contrast]
    score = "go"                          # an item or composite, numeric after scoring
    treatment = "paid"                    # d = treatment minus control
    control = "free"

    [target]
    d = 0.27                              # ML1's d
    ci = [0.20, 0.34]                     # ML1's (99%) CI
    ci95 = [0.22, 0.32]                   # optional
    n = 6330                              # optional: ML1's N
    original_d = 0.23                     # optional, with original_ci and original_n
    original_ci = [-0.04, 0.50]
    original_n = 213
    published_d = 1.96                    # optional: a published figure that differs
    published_ci = [1.88, 2.04]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulacra.analysis.replication import (
    Code,
    Composite,
    Drop,
    Rank,
    Reverse,
    ScoringStep,
    Sqrt,
)
from simulacra.batteries.replication.checks import FileChecker, join, unknown
from simulacra.instruments import Choice, FreeText, Instrument, Likert, Numeric

__all__ = [
    "ITEM_KINDS",
    "REPORTED_TAGS",
    "STEPS",
    "Condition",
    "Effect",
    "Item",
    "Target",
    "compose",
    "parse_effect",
]

ITEM_KINDS = ("choice", "likert", "numeric", "free_text")
"""Instrument kinds an item or lead-in may have (free text only as a lead-in)."""
STEPS = ("code", "reverse", "drop", "sqrt", "rank", "composite")
"""The scoring steps."""
REPORTED_TAGS = ("negative_control", "weak_control", "text_adaptation", "us_centric")
"""Tags that get a column of their own in the report."""

_TOP_KEYS = (
    "title",
    "source",
    "tags",
    "note",
    "only",
    "conditions",
    "items",
    "scoring",
    "contrast",
    "target",
)
_CONDITION_KEYS = ("name", "stimulus", "before")
_ITEM_KEYS = {
    "choice": ("name", "kind", "question", "options"),
    "likert": ("name", "kind", "question", "points", "low", "high"),
    "numeric": ("name", "kind", "question", "unit", "max_tokens", "temperature"),
    "free_text": ("name", "kind", "question", "max_tokens", "temperature"),
}
_VARYING = ("question", "options", "low", "high", "unit")
_STEP_KEYS = {
    "code": ("step", "item", "one"),
    "reverse": ("step", "item"),
    "drop": ("step", "item", "at_or_below", "at_or_above"),
    "sqrt": ("step", "item"),
    "rank": ("step", "item"),
    "composite": ("step", "name", "items", "min_valid"),
}
_CONTRAST_KEYS = ("score", "treatment", "control")
_TARGET_KEYS = (
    "d",
    "ci",
    "ci95",
    "n",
    "original_d",
    "original_ci",
    "original_n",
    "published_d",
    "published_ci",
)
_RESERVED = ("condition", "participant", "run", "sample", "score")


@dataclass(frozen=True)
class Condition:
    """One condition of a study.

    Attributes:
        name: the condition's name.
        stimulus: the text put before the study's first question ("" for none).
        before: lead-in questions, asked and answered (in the dialogue) before the items.
    """

    name: str
    stimulus: str
    before: tuple[Instrument, ...] = ()


@dataclass(frozen=True)
class Item:
    """One item of a study's measure.

    Attributes:
        name: the item's name (its column in the score frame).
        kind: ``choice``, ``likert`` or ``numeric``.
        instruments: the instrument asked in each condition (without the stimulus).
    """

    name: str
    kind: str
    instruments: Mapping[str, Instrument]


@dataclass(frozen=True)
class Target:
    """What the simulated effect is compared with.

    Attributes:
        d: ML1's d.
        ci: ML1's confidence interval (99% in ML1's report).
        ci95: a 95% interval, if given.
        n: ML1's N, if given.
        original_d: the original study's d, if known.
        original_ci: its 95% CI, if known.
        original_n: its total N, if known (small telescopes need it).
        published_d: a published figure that differs from ``d`` (with a note why).
        published_ci: its interval.
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
    """One study: conditions, measure, scoring, contrast and targets.

    Attributes:
        name: the effect's name (its file's stem).
        title: a readable title.
        source: the citation.
        tags: labels such as ``negative_control``.
        note: free text carried into the report.
        conditions: the conditions (at least two).
        items: the measure's items.
        steps: the scoring steps, in order.
        score: the column compared after scoring.
        treatment: the condition whose mean comes first in d.
        control: the condition subtracted.
        target: ML1 and the original study.
        only: analyse only participants whose attribute labels are listed.
        path: the file it came from.
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
    target: Target
    only: Mapping[str, tuple[str, ...]]
    path: Path

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


# --------------------------------------------------------------------------- parsing


@dataclass
class _Column:
    """What the scoring checks know of a column: its type and scale."""

    kind: str  # "choice" | "number"
    points: int | None = None  # a Likert scale still on its points
    options: Mapping[str, tuple[str, ...]] | None = None  # choice: options per condition


def parse_effect(path: Path, data: Mapping[str, Any], check: FileChecker) -> Effect | None:
    """Build an :class:`Effect` from one file's TOML, recording every problem.

    Args:
        path: the file (its stem is the effect's name).
        data: the decoded TOML.
        check: records issues under the file's name.

    Returns:
        The effect, or None when the file has problems (recorded in ``check``).
    """
    before = len(check.issues.items)
    name = path.stem
    effect_name = check.name(name, "")
    check.keys(data, "", _TOP_KEYS, required=("title", "conditions", "items", "contrast", "target"))
    title = check.string(data.get("title", ""), "title") if "title" in data else None
    source = check.string(data.get("source", ""), "source", empty=True) or ""
    note = check.string(data.get("note", ""), "note", empty=True) or ""
    tags = tuple(check.strings(data.get("tags", []), "tags") or ())
    only = _parse_only(data.get("only", {}), check)
    conditions = _parse_conditions(data.get("conditions"), name, check)
    names = tuple(c.name for c in conditions)
    items = _parse_items(data.get("items"), name, names, check) if names else ()
    lead_names = {i.name.split(".", 1)[1] for c in conditions for i in c.before}
    for i, item in enumerate(items):
        if item.name in lead_names:
            check.add(
                join(join("items", i), "name"),
                f"'{item.name}' is also a lead-in's name; items and lead-ins need distinct names",
            )
    columns = {
        item.name: _Column(
            "choice" if item.kind == "choice" else "number",
            points=item.instruments[names[0]].points if item.kind == "likert" else None,
            options=(
                {c: item.instruments[c].options for c in names} if item.kind == "choice" else None
            ),
        )
        for item in items
    }
    steps = _parse_steps(data.get("scoring", []), columns, names, check) if items else ()
    contrast = _parse_contrast(data.get("contrast"), columns, names, check)
    target = _parse_target(data.get("target"), check)
    if len(check.issues.items) > before or effect_name is None or title is None:
        return None
    if contrast is None or target is None:
        return None
    return Effect(
        name=name,
        title=title,
        source=source,
        tags=tags,
        note=note,
        conditions=conditions,
        items=items,
        steps=steps,
        score=contrast[0],
        treatment=contrast[1],
        control=contrast[2],
        target=target,
        only=only,
        path=path,
    )


def _parse_only(value: Any, check: FileChecker) -> dict[str, tuple[str, ...]]:
    table = check.table(value, "only")
    if table is None:
        return {}
    out = {}
    for attribute, labels in table.items():
        parsed = check.strings(labels, join("only", attribute), minimum=1)
        if parsed is not None:
            out[attribute] = tuple(parsed)
    return out


def _parse_conditions(value: Any, effect: str, check: FileChecker) -> tuple[Condition, ...]:
    if value is None:
        return ()
    out = []
    seen: set[str] = set()
    for i, table in enumerate(check.tables(value, "conditions", minimum=2)):
        path = join("conditions", i)
        check.keys(table, path, _CONDITION_KEYS, required=("name", "stimulus"))
        name = check.name(table.get("name", ""), join(path, "name")) if "name" in table else None
        stimulus = (
            check.string(table["stimulus"], join(path, "stimulus"), empty=True)
            if "stimulus" in table
            else None
        )
        if name is not None and name in seen:
            check.add(join(path, "name"), f"condition '{name}' is defined twice")
            name = None
        lead_ins = []
        lead_seen: set[str] = set()
        for j, lead in enumerate(check.tables(table.get("before", []), join(path, "before"))):
            lead_path = join(join(path, "before"), j)
            instrument = _parse_instrument(lead, lead_path, effect, ITEM_KINDS, check)
            if instrument is None:
                continue
            short = instrument.name.split(".", 1)[1]
            if short in lead_seen:
                check.add(join(lead_path, "name"), f"lead-in '{short}' is defined twice")
                continue
            lead_seen.add(short)
            lead_ins.append(instrument)
        if name is not None and stimulus is not None:
            seen.add(name)
            out.append(Condition(name, stimulus, tuple(lead_ins)))
    if len(out) != len(value if isinstance(value, list) else []):
        return ()  # a broken condition: items keyed by condition cannot be checked
    return tuple(out)


def _parse_instrument(
    table: Mapping[str, Any],
    path: str,
    effect: str,
    kinds: tuple[str, ...],
    check: FileChecker,
    values: Mapping[str, Any] | None = None,
    condition: str | None = None,
    first: bool = True,
) -> Instrument | None:
    """One instrument from a table.

    ``values`` replaces the fields given per condition with ``condition``'s values;
    the table's keys are checked only when ``first`` (the first condition asked).
    """
    values = values or {}
    if "kind" not in table:
        if first:
            check.add(join(path, "kind"), f"missing; expected one of {', '.join(kinds)}")
        return None
    kind = check.choice(table["kind"], join(path, "kind"), kinds)
    if kind is None:
        return None
    if first:
        check.keys(table, path, _ITEM_KEYS[kind], required=_required(kind))
    if "name" not in table:
        return None
    name = check.name(table["name"], join(path, "name"))
    if name is None:
        return None
    fields = dict(table) | dict(values)

    def where(key: str) -> str:
        field_path = join(path, key)
        return join(field_path, condition) if condition and key in values else field_path

    full = f"{effect}.{name}"
    question = check.string(fields.get("question"), where("question"))
    if question is None:
        return None
    if kind == "choice":
        options = check.strings(fields.get("options"), where("options"), minimum=2)
        if options is None:
            return None
        if len(set(options)) != len(options):
            check.add(where("options"), "expected distinct options, got a repeat")
            return None
        return Choice(full, question, tuple(options))
    if kind == "likert":
        points = check.integer(fields.get("points"), join(path, "points"), minimum=2)
        low = check.string(fields.get("low"), where("low"))
        high = check.string(fields.get("high"), where("high"))
        if points is None or low is None or high is None:
            return None
        if points > 101:
            check.add(join(path, "points"), f"must be <= 101, got {points}")
            return None
        return Likert(full, question, points, low, high)
    max_tokens = check.integer(fields.get("max_tokens", 16), join(path, "max_tokens"), minimum=1)
    temperature = check.number(
        fields.get("temperature", 1.0 if kind == "numeric" else 0.8),
        join(path, "temperature"),
        minimum=0,
    )
    if max_tokens is None or temperature is None:
        return None
    if kind == "numeric":
        unit = check.string(fields.get("unit", ""), where("unit"), empty=True)
        if unit is None:
            return None
        return Numeric(full, question, unit, max_tokens, temperature)
    return FreeText(full, question, max_tokens, temperature)


def _required(kind: str) -> tuple[str, ...]:
    return {
        "choice": ("name", "kind", "question", "options"),
        "likert": ("name", "kind", "question", "points", "low", "high"),
        "numeric": ("name", "kind", "question"),
        "free_text": ("name", "kind", "question"),
    }[kind]


def _parse_items(
    value: Any, effect: str, conditions: tuple[str, ...], check: FileChecker
) -> tuple[Item, ...]:
    if value is None:
        return ()
    out = []
    seen: set[str] = set()
    for i, table in enumerate(check.tables(value, "items", minimum=1)):
        path = join("items", i)
        per_condition = _per_condition(table, path, conditions, check)
        if per_condition is None:
            continue
        instruments = {}
        for k, condition in enumerate(conditions):
            instrument = _parse_instrument(
                table,
                path,
                effect,
                ("choice", "likert", "numeric"),
                check,
                values=per_condition[condition],
                condition=condition,
                first=k == 0,
            )
            if instrument is None:
                break
            instruments[condition] = instrument
        else:
            short = instruments[conditions[0]].name.split(".", 1)[1]
            if short in seen:
                check.add(join(path, "name"), f"item '{short}' is defined twice")
                continue
            if short in _RESERVED:
                check.add(join(path, "name"), f"'{short}' is reserved; choose another name")
                continue
            seen.add(short)
            kind = instruments[conditions[0]].kind
            out.append(Item(short, kind, instruments))
    return tuple(out)


def _per_condition(
    table: Mapping[str, Any], path: str, conditions: tuple[str, ...], check: FileChecker
) -> dict[str, dict[str, Any]] | None:
    """Per condition, the values of the fields given as tables keyed by condition."""
    out: dict[str, dict[str, Any]] = {c: {} for c in conditions}
    ok = True
    for key in _VARYING:
        value = table.get(key)
        if not isinstance(value, Mapping):
            continue
        field_path = join(path, key)
        for condition in value:
            if condition not in conditions:
                check.add(join(field_path, condition), unknown("condition", condition, conditions))
                ok = False
        for condition in conditions:
            if condition not in value:
                check.add(
                    field_path,
                    f"missing a value for condition '{condition}' "
                    "(a table here needs one entry per condition)",
                )
                ok = False
            else:
                out[condition][key] = value[condition]
    return out if ok else None


def _column(name: Any, path: str, columns: Mapping[str, _Column], check: FileChecker) -> str | None:
    text = check.string(name, path)
    if text is None:
        return None
    if text not in columns:
        check.add(path, unknown("item", text, list(columns)))
        return None
    return text


def _parse_steps(
    value: Any,
    columns: dict[str, _Column],
    conditions: tuple[str, ...],
    check: FileChecker,
) -> tuple[ScoringStep, ...]:
    steps: list[ScoringStep] = []
    for i, table in enumerate(check.tables(value, "scoring")):
        path = join("scoring", i)
        if "step" not in table:
            check.add(join(path, "step"), f"missing; expected one of {', '.join(STEPS)}")
            continue
        kind = check.choice(table["step"], join(path, "step"), STEPS)
        if kind is None:
            continue
        check.keys(table, path, _STEP_KEYS[kind])
        step = _parse_step(kind, table, path, columns, conditions, check)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _parse_step(
    kind: str,
    table: Mapping[str, Any],
    path: str,
    columns: dict[str, _Column],
    conditions: tuple[str, ...],
    check: FileChecker,
) -> ScoringStep | None:
    if kind == "composite":
        return _parse_composite(table, path, columns, check)
    if "item" not in table:
        check.add(join(path, "item"), "missing; this field is required")
        return None
    item = _column(table["item"], join(path, "item"), columns, check)
    if item is None:
        return None
    column = columns[item]
    if kind == "code":
        if column.kind != "choice":
            check.add(join(path, "item"), f"'{item}' is not an uncoded choice item; code needs one")
            return None
        one = _parse_one(table.get("one"), join(path, "one"), column, conditions, check)
        columns[item] = _Column("number")  # coded, even when broken: no follow-on errors
        return None if one is None else Code(item, one)
    if column.kind != "number":
        check.add(
            join(path, "item"),
            f"'{item}' is a choice item; code it 0/1 with a 'code' step before '{kind}'",
        )
        return None
    if kind == "reverse":
        if column.points is None:
            check.add(
                join(path, "item"),
                f"'{item}' is not a Likert item on its points; reverse needs one",
            )
            return None
        return Reverse(item, column.points)
    if kind == "drop":
        low = high = None
        if "at_or_below" in table:
            low = check.number(table["at_or_below"], join(path, "at_or_below"))
        if "at_or_above" in table:
            high = check.number(table["at_or_above"], join(path, "at_or_above"))
        if "at_or_below" not in table and "at_or_above" not in table:
            check.add(path, "a drop step needs at_or_below, at_or_above or both")
            return None
        if low is not None and high is not None and low >= high:
            check.add(
                join(path, "at_or_above"), f"must be above at_or_below ({low:g}), got {high:g}"
            )
            return None
        if ("at_or_below" in table and low is None) or ("at_or_above" in table and high is None):
            return None
        return Drop(item, low, high)
    columns[item] = _Column("number")
    return Sqrt(item) if kind == "sqrt" else Rank(item)


def _parse_one(
    value: Any,
    path: str,
    column: _Column,
    conditions: tuple[str, ...],
    check: FileChecker,
) -> dict[str, frozenset[str]] | None:
    assert column.options is not None
    if value is None:
        check.add(path, "missing; list the options coded 1 (or a table of them by condition)")
        return None
    if isinstance(value, Mapping):
        per_condition: dict[str, Any] = {}
        for condition in value:
            if condition not in conditions:
                check.add(join(path, condition), unknown("condition", condition, conditions))
                return None
        for condition in conditions:
            if condition not in value:
                check.add(path, f"missing the options coded 1 in condition '{condition}'")
                return None
            per_condition[condition] = (value[condition], join(path, condition), (condition,))
    else:
        per_condition = {c: (value, path, conditions) for c in conditions}
    out = {}
    for condition, (options, where, scope) in per_condition.items():
        parsed = check.strings(options, where, minimum=1)
        if parsed is None:
            return None
        known = sorted({o for c in scope for o in column.options[c]})
        for option in parsed:
            if option not in known:
                check.add(where, unknown("option", option, known))
                return None
        out[condition] = frozenset(parsed)
    return out


def _parse_composite(
    table: Mapping[str, Any], path: str, columns: dict[str, _Column], check: FileChecker
) -> Composite | None:
    for key in ("name", "items"):
        if key not in table:
            check.add(join(path, key), "missing; this field is required")
    if "name" not in table or "items" not in table:
        return None
    name = check.name(table["name"], join(path, "name"))
    items = check.strings(table["items"], join(path, "items"), minimum=2)
    if name is None or items is None:
        return None
    if name in columns or name in _RESERVED:
        check.add(join(path, "name"), f"'{name}' is already a column; a composite needs a new name")
        return None
    for j, item in enumerate(items):
        if _column(item, join(join(path, "items"), j), columns, check) is None:
            return None
        if columns[item].kind != "number":
            check.add(join(join(path, "items"), j), f"'{item}' is a choice item; code it 0/1 first")
            return None
    min_valid = len(items)
    if "min_valid" in table:
        parsed = check.integer(table["min_valid"], join(path, "min_valid"), minimum=1)
        if parsed is None:
            return None
        if parsed > len(items):
            check.add(join(path, "min_valid"), f"must be <= the {len(items)} items, got {parsed}")
            return None
        min_valid = parsed
    columns[name] = _Column("number")
    return Composite(name, tuple(items), min_valid)


def _parse_contrast(
    value: Any,
    columns: Mapping[str, _Column],
    conditions: tuple[str, ...],
    check: FileChecker,
) -> tuple[str, str, str] | None:
    if value is None:
        return None
    table = check.table(value, "contrast")
    if table is None:
        return None
    check.keys(table, "contrast", _CONTRAST_KEYS, required=_CONTRAST_KEYS)
    if any(key not in table for key in _CONTRAST_KEYS):
        return None
    score = None
    if columns:
        score = _column(table["score"], "contrast.score", columns, check)
        if score is not None and columns[score].kind != "number":
            check.add("contrast.score", f"'{score}' is an uncoded choice item; add a 'code' step")
            score = None
    picked = []
    for key in ("treatment", "control"):
        text = check.string(table[key], join("contrast", key))
        if text is not None and conditions and text not in conditions:
            check.add(join("contrast", key), unknown("condition", text, conditions))
            text = None
        picked.append(text)
    if picked[0] is not None and picked[0] == picked[1]:
        check.add("contrast.control", "must differ from contrast.treatment")
        return None
    if score is None or picked[0] is None or picked[1] is None:
        return None
    return (score, picked[0], picked[1])


def _parse_target(value: Any, check: FileChecker) -> Target | None:
    if value is None:
        return None
    table = check.table(value, "target")
    if table is None:
        return None
    check.keys(table, "target", _TARGET_KEYS, required=("d", "ci"))
    fields: dict[str, Any] = {}
    ok = True
    for key in _TARGET_KEYS:
        if key not in table:
            continue
        path = join("target", key)
        if key.endswith("ci") or key == "ci95":
            fields[key] = check.interval(table[key], path)
        elif key in ("n", "original_n"):
            fields[key] = check.integer(table[key], path, minimum=4)
        else:
            fields[key] = check.number(table[key], path)
        ok = ok and fields[key] is not None
    if "original_n" in table and "original_d" not in table:
        check.add("target.original_n", "given without target.original_d")
        ok = False
    if not ok or "d" not in fields or "ci" not in fields:
        return None
    return Target(**fields)
