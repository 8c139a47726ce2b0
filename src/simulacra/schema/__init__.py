"""The schema layer: every file kind validated by pydantic, with located errors.

A *file kind* (a scenario, a vector spec, a battery's ``battery.toml``...) is a
tree of pydantic models. This room gives them one standard: a misspelt key is an
error with a "did you mean", a wrong value says what was expected and what was
got, every mistake of a file is reported at once, each naming the file and the
dotted path of the field (``agents[0].prior.sage``), in file order, and one
mistake makes one issue. It imports nothing but :mod:`simulacra.errors`, pydantic
and the standard library.

Writing a file kind
-------------------

1. **Models.** One :class:`SchemaModel` per table, fields in the order a user
   writes them, each with a docstring (the JSON Schema's description, shown by
   editors). Types: :data:`Array` ``[T]`` for TOML arrays, :data:`Name`,
   :data:`Text` (not blank), :data:`Count` (>= 1), :data:`NonNegative`,
   :data:`FilePath` / :data:`ExistingFile` (relative to the file),
   ``Literal[...]`` for a fixed vocabulary, ``Field(ge=, le=, min_length=)`` for
   bounds, ``Unique("probe name", "name")`` for distinct items (after the
   ``Field``), :func:`ordered_pair` for ``[low, high]``, :func:`one_or_table` for
   a value that may also be given per condition (a table of them by name).
2. **Wording.** Where the default message is vague, add
   ``Expect(type=, missing=, noun=, size=)`` to the field's ``Annotated``.
3. **Checks across fields** are validators calling :func:`fail` with problems
   located relative to the checked value (``[((1, "name"), "duplicate ...")]``).
   A field validator sees the fields before it in ``info.data``, where an
   invalid one is absent: skip the check (no cascade). A check on which keys a
   raw table has, to report even when fields are invalid, is a
   ``mode="wrap"`` model validator returning :func:`with_problems`; a table whose
   kind decides its keys returns :func:`kind_keys`. Texts with ``{placeholders}``
   are checked by :func:`placeholders`.
4. **References** across sections or files go through :func:`facts` (the
   validation context): a section's validator stores what later sections refer
   to once it is valid (names, counts); a reference is checked only when the
   facts it needs are there: :func:`unknown` gives the problems of the names
   (one, an array's, a table's keys) that are not known, with a "did you mean".
5. **Loading.** :func:`read_toml` then :func:`validate` (``model, data, source,
   {"root": directory}``) give the model or one
   :class:`~simulacra.errors.ScenarioError` with every issue. For a directory of
   files, validate each with the same context dict (the facts of the files
   before it: names a later file may refer to), catch each file's
   ``ScenarioError``, and raise one with the issues of all files. A count that
   depends on another file (a design's seeds, a population's size) is a check
   reading those facts.
6. **Registering** is one line in :data:`KINDS` (``"name": "module:Model"``):
   ``simulacra schema NAME`` prints its JSON Schema, and the shipped files are
   checked against it in ``tests/test_schema.py``.

Modules: :mod:`~simulacra.schema.model` (base model, field types, checks),
:mod:`~simulacra.schema.issues` (wording; pydantic's errors as issues),
:mod:`~simulacra.schema.files` (TOML files; the registry and JSON Schemas).
"""

from simulacra.schema.files import KINDS, json_schema, kind_model, read_toml
from simulacra.schema.issues import describe, format_errors, located, one_of, validate
from simulacra.schema.model import (
    Array,
    Count,
    ExistingFile,
    Expect,
    FilePath,
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
    placeholders,
    quote,
    unknown,
    unknown_name,
    with_problems,
)

__all__ = [
    "KINDS",
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
    "describe",
    "facts",
    "fail",
    "format_errors",
    "json_schema",
    "kind_keys",
    "kind_model",
    "located",
    "one_of",
    "one_or_table",
    "ordered_pair",
    "placeholders",
    "quote",
    "read_toml",
    "unknown",
    "unknown_name",
    "validate",
    "with_problems",
]
