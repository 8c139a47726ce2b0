"""Issues: pydantic's validation errors as the located messages users read.

:func:`located` turns a :class:`~pydantic.ValidationError` into one
``(path, message, related)`` per mistake, in file order: the dotted path as the
user knows it (``agents[0].prior.sage``), a message saying what was expected and
what was got (a value by its TOML type: ``got string "8"``), a "did you mean" for a
misspelt key. It walks the model along each error's location for the field's
wording (:class:`~simulacra.schema.model.Expect`), its bounds and its table's
keys. Cascades are dropped: the required key a misspelt key was meant to be, and
an array blamed for being short when only its items are broken.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeAlias, TypeVar, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.schema.model import NAME_PATTERN, Expect, quote, unknown_name

__all__ = [
    "Located",
    "child",
    "describe",
    "format_errors",
    "located",
    "one_of",
    "render_path",
    "table_keys",
    "unwrap",
    "validate",
]

M = TypeVar("M", bound=BaseModel)
Located: TypeAlias = tuple[str, str, tuple[str, ...]]
"""An issue before it names its file: path, message, related paths."""

_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "model_type": "a table",
    "dict_type": "a table",
    "tuple_type": "an array",
    "list_type": "an array",
}
_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def validate(model: type[M], data: Any, source: str, context: dict[str, Any] | None = None) -> M:
    """Validate raw data (as read from TOML) into ``model``, reporting every issue at once.

    Args:
        model: the file kind's model.
        data: the raw data.
        source: the file's name, for the messages.
        context: the facts the checks read and add to (``root``: where relative paths
            start); pass the same dict to the next file of a directory.

    Raises:
        ScenarioError: one issue per mistake, each naming ``source`` and the field.
    """
    if not isinstance(data, Mapping):
        message = f"expected a table at the top level, got {describe(data)}"
        raise ScenarioError(ScenarioIssue(source, "", message))
    try:
        return model.model_validate(data, context={} if context is None else context)
    except ValidationError as error:
        found = located(error, model, data)
        raise ScenarioError([ScenarioIssue(source, p, m) for p, m, _ in found]) from None


def format_errors(err: ScenarioError) -> str:
    """Render an error for the terminal: one ``error:`` line per issue, then a count."""
    lines = [f"error: {issue}" for issue in err.issues]
    if len(err.issues) > 1:
        sources = ", ".join(dict.fromkeys(issue.source for issue in err.issues))
        lines.append(f"found {len(err.issues)} errors in {sources}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- wording


def render_path(parts: Sequence[str | int]) -> str:
    """Key-path parts as a dotted path with ``[i]`` indices: ``agents[0].prior.sage``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            key = part if re.fullmatch(NAME_PATTERN, part) else json.dumps(part)
            path = f"{path}.{key}" if path else key
    return path


def describe(value: object) -> str:
    """Describe a value by TOML type and content, for 'got ...' messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value}"
    if isinstance(value, str):
        text = json.dumps(value)
        return f"string {text if len(text) <= 40 else text[:37] + '...'}"
    if isinstance(value, Mapping):
        return "a table"
    return "an array" if isinstance(value, list | tuple) else f"{type(value).__name__} {value}"


def one_of(value: object, choices: Sequence[str]) -> str:
    """Message for a value outside a fixed set of choices, with a suggestion if one is close."""
    got = quote(value) if isinstance(value, str) else describe(value)
    message = f"must be one of {', '.join(map(quote, choices))}; got {got}"
    close = difflib.get_close_matches(value, list(choices), n=1) if isinstance(value, str) else []
    return message + (f" (did you mean {quote(close[0])}?)" if close else "")


# --------------------------------------------------------------------------- the model's shape


def unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """An annotation without ``Annotated`` and ``| None``, and the metadata found on the way."""
    metadata: list[Any] = []
    while True:
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            for item in annotation.__metadata__:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
            annotation = annotation.__origin__
        elif origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
            annotation = next(arm for arm in args if arm is not type(None))
        else:
            return annotation, metadata


def table_keys(annotation: Any) -> list[str] | None:
    """The keys a table (a model) accepts, by alias where it has one; None for no model."""
    bare = unwrap(annotation)[0]
    if not (isinstance(bare, type) and issubclass(bare, BaseModel)):
        return None
    return [field.alias or name for name, field in bare.model_fields.items()]


def child(annotation: Any, part: str | int) -> tuple[Any, list[Any]] | None:
    """The annotation and metadata one step down (a table's key, an array's item), else None."""
    bare = unwrap(annotation)[0]
    if table_keys(bare) is not None:
        fields = bare.model_fields.items()
        return next(((f.annotation, f.metadata) for n, f in fields if part in (n, f.alias)), None)
    origin, args = get_origin(bare), get_args(bare)
    if origin in (tuple, list) and isinstance(part, int):
        return args[0], []
    return (args[1], []) if origin is dict and isinstance(part, str) else None


def _walk(model: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[Any, list[Any], Any]:
    """The annotation at ``loc``, its metadata, and its parent's annotation."""
    node: Any = model
    metadata: list[Any] = []
    parent: Any = None
    for part in loc:
        parent, step = node, child(node, part)
        if step is None:
            return None, [], parent
        node, metadata = step[0], list(step[1])
    node, more = unwrap(node)
    return node, metadata + more, parent


# --------------------------------------------------------------------------- issues


def located(error: ValidationError, model: type[BaseModel], data: Any = None) -> list[Located]:
    """One ``(path, message, related)`` per mistake, in file order.

    File order: a table's fields in the order of the model, an unknown key after
    the field written before it, the keys of a table of names (a prior) and the
    items of an array as written in ``data`` (the raw input); a bad key of a table of
    names is located at the key (``designs."a b"``). Related paths are
    those whose command-line overrides may be behind the issue (``.key``: a sibling).
    """
    errors = error.errors(include_url=False)
    misspelt = set()
    for item in errors:
        if item["type"] == "extra_forbidden":
            loc = tuple(item["loc"])
            keys = table_keys(_walk(model, loc)[2]) or []
            misspelt.update((loc[:-1], k) for k in difflib.get_close_matches(loc[-1], keys, n=1))
    found: dict[Located, list[tuple[int, ...]]] = {}
    for item in errors:
        loc = tuple(item["loc"][:-1] if item["loc"][-1:] == ("[key]",) else item["loc"])
        if item["type"] == "missing" and (loc[:-1], loc[-1]) in misspelt:
            continue  # the misspelt key is the one mistake
        message = _message(item, *_walk(model, loc))
        if message is not None:
            related = (item.get("ctx") or {}).get("related", ())
            paths = tuple(render_path((*loc[:-1], r[1:])) if r[0] == "." else r for r in related)
            found[(render_path(loc), message, paths)] = _position(model, data, loc)
    return sorted(found, key=found.__getitem__)


def _position(
    model: type[BaseModel], data: Any, loc: tuple[str | int, ...]
) -> list[tuple[int, ...]]:
    """Where ``loc`` is written: the sort key of :func:`located`'s file order."""
    key: list[tuple[int, ...]] = []
    node: Any = model
    for part in loc:
        written = list(data) if isinstance(data, Mapping) else []
        fields = table_keys(node) or []
        if isinstance(part, int) or part in fields:
            key.append((part if isinstance(part, int) else fields.index(part),))
        elif part in written:  # an unknown key, or a name in a table of names
            before = [fields.index(k) for k in written[: written.index(part)] if k in fields]
            key.append((max(before, default=-1), 1, written.index(part)))
        step = child(node, part)
        node = step[0] if step else None
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            data = None
    return key


def _message(item: Any, node: Any, metadata: list[Any], parent: Any) -> str | None:
    """The message of one pydantic error; None when it only repeats another one."""
    kind, value, ctx = item["type"], item.get("input"), item.get("ctx") or {}
    expect = next((m for m in metadata if isinstance(m, Expect)), Expect())
    key = str(item["loc"][-1]) if item["loc"] else ""
    if kind == "missing":
        return expect.missing or f"missing required key {quote(key)}"
    if kind == "extra_forbidden":
        return unknown_name("key", key, table_keys(parent) or [])
    if kind in _TYPES:
        items = get_args(node)[0] if get_origin(node) in (tuple, list) else None
        if not expect.type and table_keys(items) is not None:
            got = "a single table" if isinstance(value, Mapping) else describe(value)
            return f"expected an array of tables ([[{key}]]), got {got}"
        return f"expected {expect.type or _TYPES[kind]}, got {describe(value)}"
    noun = f"{expect.noun} " if expect.noun else ""
    if kind in _BOUNDS:
        return f"{noun}must be {_range(metadata, kind, ctx)}, got {value}"
    if kind == "finite_number":
        return f"{noun}must be a finite number, got {value}"
    if kind == "literal_error":
        return one_of(value, re.findall(r"'([^']*)'", ctx.get("expected", "")))
    if kind == "string_pattern_mismatch":
        if not value.strip():
            return "must not be empty"
        if ctx.get("pattern") == NAME_PATTERN:
            return f"invalid name {json.dumps(value)}: use only letters, digits, '_' and '-'"
        return f"must match {ctx.get('pattern')}, got {describe(value)}"
    if kind in ("too_short", "too_long"):
        if kind == "too_short" and len(value) >= ctx["min_length"]:
            return None  # pydantic counted the valid items only; the others have their issues
        limit = ctx.get("min_length", ctx.get("max_length"))
        entries = f"{limit} {'entry' if limit == 1 else 'entries'}, got {{got}}"
        size = expect.size or f"must have at {'least' if kind == 'too_short' else 'most'} {entries}"
        return size.format(min=ctx.get("min_length"), max=ctx.get("max_length"), got=len(value))
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long, got {len(value)}"
    return re.sub(r"^(Value error|Assertion failed), ", "", str(item["msg"]))


def _range(metadata: list[Any], kind: str, ctx: Mapping[str, Any]) -> str:
    """``>= 1``, or ``in (0, 1]`` when the field is bounded on both sides."""
    low = next((m for m in metadata if isinstance(m, at.Ge | at.Gt)), None)
    high = next((m for m in metadata if isinstance(m, at.Le | at.Lt)), None)
    if low is not None and high is not None:
        left = f"[{low.ge:g}" if isinstance(low, at.Ge) else f"({low.gt:g}"
        right = f"{high.le:g}]" if isinstance(high, at.Le) else f"{high.lt:g})"
        return f"in {left}, {right}"
    return f"{_BOUNDS[kind]} {next(v for k, v in ctx.items() if k in ('ge', 'gt', 'le', 'lt')):g}"
