"""The building blocks of a file kind: the base model, shared field types, checks.

:class:`SchemaModel` is the base of every table: unknown keys are errors, values
are never coerced (``turns = true`` and ``turns = "3"`` are errors; an integer is
accepted for a float; NaN and infinities are rejected), validated objects are
frozen, and field docstrings become the JSON Schema's descriptions.

Checks across fields are pydantic validators that call :func:`fail` with
problems located relative to the value they check. What earlier sections of a
file established is shared through :func:`facts`; a check whose inputs are
invalid is skipped, so that one mistake makes one issue.
"""

from __future__ import annotations

import difflib
import os
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

__all__ = [
    "NAME_PATTERN",
    "Array",
    "Count",
    "ExistingFile",
    "Expect",
    "FilePath",
    "Name",
    "NonNegative",
    "Problem",
    "SchemaModel",
    "Text",
    "Unique",
    "facts",
    "fail",
    "is_path",
    "kind_keys",
    "one_or_table",
    "placeholders",
    "quote",
    "unknown",
    "unknown_name",
    "with_problems",
]

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
"""What a name (of a simulacrum, an agent, a probe, a tag...) may contain."""


class SchemaModel(BaseModel):
    """Base of every table of a file kind: closed, strict, frozen, documented."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


T = TypeVar("T")
Array: TypeAlias = Annotated[tuple[T, ...], Strict(False)]
"""A TOML array, kept as a tuple; its items are validated strictly."""
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Text = Annotated[str, StringConstraints(pattern=r"\S")]
"""A string that is not blank."""
Count = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]


@dataclass(frozen=True)
class Expect:
    """Field metadata: the wording of messages about this field, where the default is vague.

    Attributes:
        type: what a value of the wrong type should be ("a table of weights by simulacrum").
        missing: the whole message when the required key is missing.
        noun: the subject of range messages ("weight" must be >= 0).
        size: the message for an array of the wrong length (``{min}``, ``{max}``, ``{got}``).
    """

    type: str = ""
    missing: str = ""
    noun: str = ""
    size: str = ""


Problem: TypeAlias = tuple[tuple[str | int, ...], str] | tuple[tuple[str | int, ...], str, Any]
"""A located problem: the location relative to the checked value, the message and,
optionally, related paths (absolute, or ``.key`` for a sibling of the location) whose
command-line overrides the message should name."""


def quote(value: object) -> str:
    """Quote a name for a message: ``'pirate'`` (numbers stay bare)."""
    return f"'{value}'" if isinstance(value, str) else str(value)


def unknown_name(kind: str, word: str, candidates: Sequence[str]) -> str:
    """Message for an unknown name, suggesting the closest candidate or listing them."""
    message = f"unknown {kind} {quote(word)}"
    close = difflib.get_close_matches(word, list(candidates), n=1)
    if close:
        return f"{message}; did you mean {quote(close[0])}?"
    if candidates:
        return f"{message}; expected one of {', '.join(map(quote, candidates))}"
    return message


def unknown(
    noun: str, names: Any, known: Iterable[str], *related: str, at: tuple[str | int, ...] = ()
) -> list[Problem]:
    """The references among ``names`` that are not ``known``, each with a "did you mean".

    A name that is not a string is left to the type check (raw data may hold one).

    Args:
        noun: what the names name ("agent").
        names: one name (located at ``at``), an array (at each index) or a table (at each key).
        known: the names that exist.
        related: paths whose command-line overrides the messages should name.
        at: where ``names`` is, relative to the checked value.
    """
    if isinstance(names, str):
        pairs = [(at, names)]
    else:
        pairs = [((*at, k if isinstance(names, Mapping) else i), k) for i, k in enumerate(names)]
    known, extra = list(known), (related,) if related else ()
    return [
        (loc, unknown_name(noun, n, known), *extra)
        for loc, n in pairs
        if isinstance(n, str) and n not in known
    ]


def placeholders(text: str, known: Sequence[str], noun: str = "placeholder") -> list[str]:
    """What is wrong with the ``{placeholders}`` of ``text``: a stray brace, or unknown names."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        return [f"has a stray brace ({exc}); write {{{{ or }}}} for a brace"]
    braced = [f"{{{name}}}" for name in known]
    return [unknown_name(noun, f"{{{n}}}", braced) for n in names if n not in known]


def _kept(error: ValidationError, at: tuple[str | int, ...] = ()) -> list[InitErrorDetails]:
    """A validation error's errors, to raise again (located under ``at``)."""
    return [
        InitErrorDetails(
            type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
            loc=(*at, *e["loc"]),
            input=e.get("input"),
        )
        for e in error.errors(include_url=False)
    ]


def fail(problems: Iterable[Problem], kept: Sequence[InitErrorDetails] = ()) -> None:
    """Raise the problems a check found, with errors ``kept`` from elsewhere; nothing if none.

    Called from a validator: pydantic prefixes each location with the checked
    value's own, so ``((1, "name"), "duplicate ...")`` raised while checking
    ``agents`` is reported at ``agents[1].name``.
    """
    details = [*kept]
    for loc, message, *related in problems:
        context = {"related": tuple(related[0])} if related else None
        error = PydanticCustomError("check", message, context)
        details.append(InitErrorDetails(type=error, loc=loc, input=None))
    if details:
        raise ValidationError.from_exception_data("check", details)


def with_problems(handler: Callable[[Any], Any], data: Any, problems: Sequence[Problem]) -> Any:
    """In a ``mode="wrap"`` model validator: validate ``data``, and report ``problems`` along.

    For checks on the raw table (which keys it has) that must be reported even
    when some of its fields are invalid.
    """
    try:
        result = handler(data)
    except ValidationError as error:
        fail(problems, _kept(error))
        raise
    fail(problems)
    return result


def kind_keys(
    handler: Callable[[Any], Any],
    data: Any,
    tag: str,
    keys: Mapping[str, Sequence[str]],
    required: Mapping[str, Sequence[str]],
    noun: str,
) -> Any:
    """In a ``mode="wrap"`` model validator: a table whose ``tag`` (its kind) decides its keys.

    A key of another kind is one issue (not also an unknown key); a key the kind
    requires is reported missing.

    Args:
        handler: the wrap validator's handler.
        data: the raw table.
        tag: the key naming the kind ("kind", "step").
        keys: the keys each kind may have (keys of no kind are the model's own concern).
        required: the keys each kind needs.
        noun: what the table is ("question": "a likert question" in messages).
    """
    kind = data.get(tag) if isinstance(data, Mapping) else None
    if kind not in keys:
        return handler(data)
    own = keys[kind]
    stray = [key for key in data if key not in own and any(key in k for k in keys.values())]
    what = f"a {kind} {noun}"
    problems: list[Problem] = [
        ((key,), f"{quote(key)} is not a key of {what}; expected one of {', '.join(own)}")
        for key in stray
    ]
    problems += [
        ((key,), f"missing required key {quote(key)} ({what} needs it)")
        for key in required.get(kind, ())
        if key not in data
    ]
    return with_problems(handler, {k: v for k, v in data.items() if k not in stray}, problems)


def facts(info: ValidationInfo) -> dict[str, Any]:
    """What earlier sections of the file established (the validation context), to read or add to.

    Without a context (a model validated on its own) this is a fresh dict: the
    checks that need the facts are skipped.
    """
    return info.context if isinstance(info.context, dict) else {}


@dataclass(frozen=True)
class Unique:
    """Array metadata: its items, or each item's ``key`` field, must be distinct.

    Place it after ``Field(min_length=...)`` in ``Annotated``, so that the length
    is checked even when an item is invalid.
    """

    noun: str
    key: str | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return core_schema.with_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        return handler(schema) | ({"uniqueItems": True} if self.key is None else {})

    def _check(self, items: tuple[Any, ...], info: ValidationInfo) -> tuple[Any, ...]:
        first: dict[Any, int] = {}
        problems: list[Problem] = []
        for index, item in enumerate(items):
            value = item if self.key is None else getattr(item, self.key)
            if value in first:
                loc = (index,) if self.key is None else (index, self.key)
                also = f"{info.field_name or ''}[{first[value]}]"
                problems.append((loc, f"duplicate {self.noun} {quote(value)} (also {also})"))
            first.setdefault(value, index)
        fail(problems)
        return items


def _by_key(adapter: TypeAdapter[Any], value: Any) -> Any:
    """``value`` validated by ``adapter``; a table's values each, errors located under the key."""
    pairs = value.items() if isinstance(value, Mapping) else [((), value)]
    out, kept = {}, []
    for key, item in pairs:
        try:
            out[key] = adapter.validate_python(item)
        except ValidationError as error:
            kept += _kept(error, key if isinstance(key, tuple) else (key,))
    fail([], kept)
    return out if isinstance(value, Mapping) else out[()]


def one_or_table(inner: Any) -> Any:
    """The type of a value, or of a table of values by name (by condition, by level)."""
    adapter = TypeAdapter(inner, config=ConfigDict(strict=True, allow_inf_nan=False))
    one = adapter.json_schema()
    schema = {"anyOf": [one, {"type": "object", "additionalProperties": one}]}
    return Annotated[Any, AfterValidator(lambda v: _by_key(adapter, v)), WithJsonSchema(schema)]


def _from_file(path: str, info: ValidationInfo) -> str:
    root = facts(info).get("root")
    return path if root is None else os.path.abspath(os.path.join(root, os.path.expanduser(path)))


def _existing(path: str) -> str:
    if not os.path.isfile(path):
        message = f"file not found: {path} (a relative path is read from the file's directory)"
        raise PydanticCustomError("file", message)
    return path


FilePath = Annotated[Text, AfterValidator(_from_file)]
"""A path, made absolute against the ``root`` fact (the file's directory); as written without."""
ExistingFile = Annotated[FilePath, AfterValidator(_existing)]
"""A :data:`FilePath` naming an existing file."""


def is_path(metadata: Iterable[Any]) -> bool:
    """Tell whether a field's metadata makes it a :data:`FilePath`."""
    return any(getattr(item, "func", None) is _from_file for item in metadata)


def ordered_pair(item: Any, what: str, names: tuple[str, str] = ("low", "high")) -> Any:
    """The type of a ``[low, high]`` pair of ``item`` with low <= high.

    Args:
        item: the type of each bound (``int`` or ``float``, possibly bounded).
        what: the bounds in words for the size message, e.g. "two numbers".
        names: what the bounds are called in messages.
    """
    low, high = names

    def ordered(pair: Sequence[float]) -> Sequence[float]:
        if pair[0] > pair[1]:
            fail([((), f"expected {low} <= {high}, got [{pair[0]:g}, {pair[1]:g}]")])
        return pair

    return Annotated[
        Array[item],
        Field(min_length=2, max_length=2),
        Expect(size=f"expected [{low}, {high}], {what}; got {{got}} entries"),
        AfterValidator(ordered),
    ]
