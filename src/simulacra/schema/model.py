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

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
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
    "quote",
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
        kept = [
            InitErrorDetails(
                type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
                loc=tuple(e["loc"]),
                input=e.get("input"),
            )
            for e in error.errors(include_url=False)
        ]
        fail(problems, kept)
        raise
    fail(problems)
    return result


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


def _ordered(pair: Sequence[float]) -> Sequence[float]:
    if pair[0] > pair[1]:
        fail([((), f"expected low <= high, got [{pair[0]:g}, {pair[1]:g}]")])
    return pair


def ordered_pair(item: Any, what: str) -> Any:
    """The type of a ``[low, high]`` pair of ``item`` with low <= high.

    Args:
        item: the type of each bound (``int`` or ``float``).
        what: the bounds in words for the size message, e.g. "two numbers".
    """
    return Annotated[
        Array[item],
        Field(min_length=2, max_length=2),
        Expect(size=f"expected [low, high], {what}; got {{got}} entries"),
        AfterValidator(_ordered),
    ]
