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
:class:`~simulacra.errors.ScenarioIssue` per problem (``roles[3].name: ...``).
The conversion from pydantic's errors is kept small and local
(:func:`validation_issues`) so that a shared schema layer can replace it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from simulacra.errors import ScenarioError, ScenarioIssue
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
    "validation_issues",
]

MAX_PROMPT_CHARS = 1000
"""Prompts and questions stay short: the embedded models have small contexts."""


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=MAX_PROMPT_CHARS), AfterValidator(_not_blank)]
OptionalText = Annotated[str, StringConstraints(max_length=MAX_PROMPT_CHARS)]
Layer = Annotated[int, Field(ge=0)]


def _duplicates(values: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def _unique(values: Sequence[str], what: str) -> None:
    repeated = _duplicates(values)
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(map(repr, repeated))}")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptPair(_Frozen):
    """A contrasting pair of system prompts.

    Attributes:
        positive: elicits the persona or trait.
        negative: suppresses it (a plain helpful assistant, or the opposite persona).

    """

    positive: Text
    negative: Text


class StyleHints(_Frozen):
    """Optional instructions for writing the answers used in extraction.

    Attributes:
        positive: how an answer showing the persona reads.
        negative: how an answer without it reads.

    """

    positive: OptionalText = ""
    negative: OptionalText = ""


class QuestionSplit(_Frozen):
    """Neutral questions: one list to extract vectors on, another held out to evaluate.

    Attributes:
        extraction: questions answered under each prompt of a pair.
        evaluation: held-out questions, disjoint from ``extraction``.

    """

    extraction: tuple[Text, ...] = Field(min_length=1)
    evaluation: tuple[Text, ...] = Field(min_length=1)

    @field_validator("extraction", "evaluation")
    @classmethod
    def _no_repeats(cls, questions: tuple[str, ...]) -> tuple[str, ...]:
        _unique(questions, "questions")
        return questions

    @model_validator(mode="after")
    def _disjoint(self) -> QuestionSplit:
        shared = sorted(set(self.extraction) & set(self.evaluation))
        if shared:
            raise ValueError(
                f"a question cannot be in both extraction and evaluation: {shared[0]!r}"
            )
        return self


class ExtractionSpec(_Frozen):
    """What a persona vector is extracted from.

    Attributes:
        name: the persona ("pirate"), also the vector's name.
        description: one line for people.
        method: ``"mean_diff"`` (Chen et al.) or ``"pca_diff"`` (repeng).
        layers: default 0-based blocks to extract at (and steer at, if >= 1).
        pairs: contrasting system-prompt pairs.
        style: optional hints for writing positive and negative answers.
        questions: neutral questions, split into extraction and evaluation.

    """

    name: Name
    description: OptionalText = ""
    method: Literal["mean_diff", "pca_diff"] = "mean_diff"
    layers: tuple[Layer, ...] = Field(min_length=1)
    pairs: tuple[PromptPair, ...] = Field(min_length=1)
    style: StyleHints = StyleHints()
    questions: QuestionSplit

    @field_validator("layers")
    @classmethod
    def _unique_layers(cls, layers: tuple[int, ...]) -> tuple[int, ...]:
        _unique([str(b) for b in layers], "layers")
        return layers

    def prompts_sha256(self) -> str:
        """The hash of every prompt, hint and question (not the name or description)."""
        return prompts_hash(self.model_dump(mode="json", include={"pairs", "style", "questions"}))


class Role(_Frozen):
    """One role of persona space.

    Attributes:
        name: unique within the role set ("bard", "evaluator").
        prompts: system prompts asking the model to be this role.

    """

    name: Name
    prompts: tuple[Text, ...] = Field(min_length=1, max_length=8)

    @field_validator("prompts")
    @classmethod
    def _no_repeats(cls, prompts: tuple[str, ...]) -> tuple[str, ...]:
        _unique(prompts, "prompts")
        return prompts


class DefaultAssistant(_Frozen):
    """The default assistant's prompts; ``""`` means no system prompt at all.

    Attributes:
        prompts: neutral system prompts.

    """

    prompts: tuple[OptionalText, ...] = Field(min_length=1)

    @field_validator("prompts")
    @classmethod
    def _no_repeats(cls, prompts: tuple[str, ...]) -> tuple[str, ...]:
        _unique(prompts, "prompts")
        return prompts


class RoleSet(_Frozen):
    """The roles of persona space, the default assistant and the shared questions.

    Attributes:
        description: one line for people.
        default: the default assistant's prompts.
        roles: at least 3 roles, unique by name.
        questions: neutral questions every role and the default answer.

    """

    description: OptionalText = ""
    default: DefaultAssistant
    roles: tuple[Role, ...] = Field(min_length=3)
    questions: tuple[Text, ...] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _unique_names(cls, roles: tuple[Role, ...]) -> tuple[Role, ...]:
        _unique([role.name for role in roles], "role names")
        if any(role.name == "default" for role in roles):
            raise ValueError("'default' is reserved for the default assistant")
        return roles

    @field_validator("questions")
    @classmethod
    def _no_repeats(cls, questions: tuple[str, ...]) -> tuple[str, ...]:
        _unique(questions, "questions")
        return questions

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


# --------------------------------------------------------------------------- loading


def _render_location(location: Sequence[int | str]) -> str:
    """``("roles", 3, "name")`` as ``roles[3].name``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _message(error: Any) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] not in ("value_error", "assertion_error") and "input" in error:
        shown = repr(error["input"])
        if len(shown) <= 60:
            message += f" (got {shown})"
    return message


def validation_issues(error: ValidationError, source: str) -> list[ScenarioIssue]:
    """One :class:`ScenarioIssue` per pydantic error, with a dotted path to the field.

    A list's "too short" error is left out when the list as written was long
    enough: pydantic counts only the items that passed, so it would blame the list
    for its broken items (which have issues of their own).
    """
    return [
        ScenarioIssue(source=source, path=_render_location(item["loc"]), message=_message(item))
        for item in error.errors(include_url=False)
        if not _blames_broken_items(item)
    ]


def _blames_broken_items(error: Any) -> bool:
    if error["type"] != "too_short":
        return False
    written = error.get("input")
    minimum = error.get("ctx", {}).get("min_length", 0)
    return isinstance(written, list | tuple) and len(written) >= minimum


Model = TypeVar("Model", bound=BaseModel)


def _load(path: str | os.PathLike[str], model: type[Model]) -> Model:
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ScenarioError(ScenarioIssue(source, "", "file not found")) from None
    except OSError as exc:
        raise ScenarioError(ScenarioIssue(source, "", f"cannot read: {exc.strerror}")) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(ScenarioIssue(source, "", f"not valid TOML: {exc}")) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_issues(exc, source)) from None


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
