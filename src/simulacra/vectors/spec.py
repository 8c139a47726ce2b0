"""Persona-vector files: extraction specs and role sets, validated with pydantic.

Two TOML file kinds feed persona-vector work:

- an *extraction spec* (``scenarios/vectors/pirate.toml``): a persona, five or
  so contrasting system-prompt pairs in the style of Chen et al. (2025), optional
  style hints for writing the positive and negative answers, neutral questions
  split into ``extraction`` and ``evaluation`` lists, default layers and method;
- a *role set* (``scenarios/vectors/roles.toml``): the roles of persona space,
  each with a few system prompts, the default-assistant prompts (an empty one
  means no system prompt) and the questions every role answers, as in Lu et al.
  (2026).

:func:`load_spec` and :func:`load_role_set` read a file and raise one
:class:`~simulacra.errors.ScenarioError` carrying a
:class:`~simulacra.errors.ScenarioIssue` per problem (``roles[3].name: ...``),
on the shared schema layer (:mod:`simulacra.schema`; ``simulacra schema
vector_spec`` and ``simulacra schema role_set`` print their JSON Schemas).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from simulacra.schema import Array, Name, SchemaModel, Text, Unique, fail, read_toml, validate
from simulacra.vectors.extraction import prompts_hash

__all__ = [
    "DefaultAssistant",
    "ExtractionSpec",
    "PromptPair",
    "QuestionSplit",
    "Role",
    "RoleSet",
    "StyleHints",
    "load_role_set",
    "load_spec",
]

MAX_PROMPT_CHARS = 1000
"""Prompts and questions stay short: the embedded models have small contexts."""

Prompt = Annotated[Text, StringConstraints(max_length=MAX_PROMPT_CHARS)]
OptionalPrompt = Annotated[str, StringConstraints(max_length=MAX_PROMPT_CHARS)]
Questions = Annotated[Array[Prompt], Field(min_length=1), Unique("question")]


class PromptPair(SchemaModel):
    """A contrasting pair of system prompts."""

    positive: Prompt
    """Elicits the persona or trait."""
    negative: Prompt
    """Suppresses it (a plain helpful assistant, or the opposite persona)."""


class StyleHints(SchemaModel):
    """Optional instructions for writing the answers used in extraction."""

    positive: OptionalPrompt = ""
    """How an answer showing the persona reads."""
    negative: OptionalPrompt = ""
    """How an answer without it reads."""


class QuestionSplit(SchemaModel):
    """Neutral questions: one list to extract vectors on, another held out to evaluate."""

    extraction: Questions
    """Questions answered under each prompt of a pair."""
    evaluation: Questions
    """Held-out questions, disjoint from ``extraction``."""

    @model_validator(mode="after")
    def _disjoint(self) -> QuestionSplit:
        fail(
            (
                ("evaluation", index),
                f"a question cannot be in both extraction and evaluation: {q!r}",
            )
            for index, q in enumerate(self.evaluation)
            if q in self.extraction
        )
        return self


class ExtractionSpec(SchemaModel):
    """What a persona vector is extracted from."""

    name: Annotated[Name, StringConstraints(max_length=64)]
    """The persona ("pirate"), also the vector's name."""
    description: OptionalPrompt = ""
    """One line for people."""
    method: Literal["mean_diff", "pca_diff"] = "mean_diff"
    """"mean_diff" (Chen et al.) or "pca_diff" (repeng)."""
    layers: Annotated[Array[Annotated[int, Field(ge=0)]], Field(min_length=1), Unique("layer")]
    """Default 0-based blocks to extract at (and steer at, if >= 1)."""
    pairs: Annotated[Array[PromptPair], Field(min_length=1)]
    """Contrasting system-prompt pairs."""
    style: StyleHints = StyleHints()
    """Optional hints for writing positive and negative answers."""
    questions: QuestionSplit
    """Neutral questions, split into extraction and evaluation."""

    def prompts_sha256(self) -> str:
        """The hash of every prompt, hint and question (not the name or description)."""
        return prompts_hash(self.model_dump(mode="json", include={"pairs", "style", "questions"}))


class Role(SchemaModel):
    """One role of persona space."""

    name: Annotated[Name, StringConstraints(max_length=64)]
    """Unique within the role set ("bard", "evaluator")."""
    prompts: Annotated[Array[Prompt], Field(min_length=1, max_length=8), Unique("prompt")]
    """System prompts asking the model to be this role."""


class DefaultAssistant(SchemaModel):
    """The default assistant's prompts; ``""`` means no system prompt at all."""

    prompts: Annotated[Array[OptionalPrompt], Field(min_length=1), Unique("prompt")]
    """Neutral system prompts."""


class RoleSet(SchemaModel):
    """The roles of persona space, the default assistant and the shared questions."""

    description: OptionalPrompt = ""
    """One line for people."""
    default: DefaultAssistant
    """The default assistant's prompts."""
    roles: Annotated[Array[Role], Field(min_length=3), Unique("role name", "name")]
    """At least 3 roles, unique by name."""
    questions: Questions
    """Neutral questions every role and the default answer."""

    @field_validator("roles")
    @classmethod
    def _not_default(cls, roles: tuple[Role, ...]) -> tuple[Role, ...]:
        reserved = "'default' is reserved for the default assistant"
        fail(((i, "name"), reserved) for i, role in enumerate(roles) if role.name == "default")
        return roles

    def role(self, name: str) -> Role:
        """The role called ``name``.

        Raises:
            KeyError: if there is no such role.

        """
        for role in self.roles:
            if role.name == name:
                return role
        raise KeyError(f"no role {name!r} in this role set")

    def prompts_sha256(self) -> str:
        """The hash of every role prompt, default prompt and question."""
        return prompts_hash(self.model_dump(mode="json", include={"default", "roles", "questions"}))


Model = TypeVar("Model", bound=BaseModel)


def _load(path: str | os.PathLike[str], model: type[Model]) -> Model:
    source = os.fspath(path)
    return validate(
        model, read_toml(path), source, {"root": os.path.dirname(os.path.abspath(source))}
    )


def load_spec(path: str | os.PathLike[str]) -> ExtractionSpec:
    """Read and validate an extraction spec file.

    Raises:
        ScenarioError: with every problem found, each naming the file and field.

    """
    return _load(path, ExtractionSpec)


def load_role_set(path: str | os.PathLike[str]) -> RoleSet:
    """Read and validate a role-set file.

    Raises:
        ScenarioError: with every problem found, each naming the file and field.

    """
    return _load(path, RoleSet)
