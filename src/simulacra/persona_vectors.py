"""Persona vectors measured on a real model: ``simulacra vectors extract`` and ``axis``.

The recipe follows Chen et al. (2025), adapted to small local models:

1. every extraction question is answered under both system prompts of every
   contrasting pair (the style hint of the spec appended to the system prompt
   while *writing* the answer), sampled on the engine from a fixed seed;
2. each (system prompt, question, answer) is decoded again, teacher-forced, by
   the engine's hidden-state read (:meth:`Engine.continuation_states`), under
   the pair's system prompt alone, and the residual stream ``l_out-b`` is
   averaged over the answer's tokens at every requested block;
3. the persona vector is ``mean(positive) - mean(negative)`` per block
   (``mean_diff``, unnormalised) or the first principal component of the paired
   differences (``pca_diff``, unit norm).

The Assistant axis (Lu et al. 2026) uses the same two steps on a role set: a
role vector is the mean over the role's answers; the default assistant answers
under its neutral prompts; the axis is ``mean(default) - mean(role vectors)``
per block, reported with persona space (PC1-PC3) at each block.

The same spec, model, seed and answer length give the same vector.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.llm.cache import get_engine
from simulacra.llm.chat import Message, render_dialogue
from simulacra.llm.engine import Engine
from simulacra.llm.models import resolve_model
from simulacra.vectors import (
    AssistantAxis,
    ExtractionSpec,
    PersonaVector,
    RoleSet,
    assistant_axis,
    load_role_set,
    load_spec,
    mean_difference,
    pca_of_differences,
    read_control_vector,
    write_control_vector,
)

__all__ = [
    "AxisResult",
    "Sample",
    "answer_all",
    "cached_axis",
    "cached_vector",
    "extract_axis",
    "extract_vector",
    "response_means",
]

CHUNK = 16
"""Answers generated per engine call (keeps the shared KV cache small)."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Sample:
    """One answer to read: the system prompt it is read under, the question, the answer."""

    system: str
    question: str
    answer: str


def _prompt(engine: Engine, system: str, question: str) -> list[str]:
    """The chat prompt of one question under one system prompt (``""``: no system text)."""
    return render_dialogue(engine.chat, system, [Message("User", question)], "Assistant")


def answer_all(
    engine: Engine,
    requests: Sequence[tuple[str, str]],
    *,
    max_tokens: int,
    seed: int,
    temperature: float = 0.8,
) -> list[str]:
    """Sample one answer per ``(system prompt, question)``, in order.

    Request ``i`` is sampled from seed ``(seed, i)`` whatever the chunking, so the
    answers depend only on the requests, the seed and the model. Chunks that turn
    the cache over raise no warning (its advice is for scenario authors); the
    evictions still count in ``engine.stats``.
    """
    engine.reset()
    answers: list[str] = []
    with engine.recomputing_quietly():  # chunks turn the cache over on purpose
        for first in range(0, len(requests), CHUNK):
            chunk = requests[first : first + CHUNK]
            texts = engine.generate(
                [_prompt(engine, system, question) for system, question in chunk],
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.95,
                stop=engine.chat.stop,
                seeds=[seed * 1_000_003 + first + i for i in range(len(chunk))],
            )
            answers += [text.strip() or "..." for text in texts]
    return answers


def response_means(engine: Engine, samples: Sequence[Sample], layers: Sequence[int]) -> np.ndarray:
    """The mean residual over each answer's tokens: ``(n_samples, n_layers, n_embd)``."""
    engine.reset()
    parts = []
    with engine.recomputing_quietly():
        for first in range(0, len(samples), CHUNK):
            pairs = [
                (_prompt(engine, s.system, s.question), engine.chat.body(s.answer))
                for s in samples[first : first + CHUNK]
            ]
            parts.append(engine.continuation_states(pairs, layers))
    return np.concatenate(parts)


def _check_layers(layers: Sequence[int], n_layer: int, source: str, field: str) -> None:
    issues = [
        ScenarioIssue(
            source,
            f"{field}[{i}]",
            f"block {b} does not exist: the model has blocks 0 to {n_layer - 1}",
        )
        for i, b in enumerate(layers)
        if not 0 <= b < n_layer
    ]
    seen = [b for i, b in enumerate(layers) if b in layers[:i]]
    issues += [
        ScenarioIssue(source, field, f"block {b} is listed twice") for b in dict.fromkeys(seen)
    ]
    if issues:
        raise ScenarioError(issues)


def _architecture(engine: Engine) -> str:
    """The model's llama.cpp architecture (``general.architecture``), e.g. ``"llama"``."""
    return engine.metadata("general.architecture") or ""


def extract_vector(
    spec: ExtractionSpec,
    model: str | os.PathLike[str] | None = None,
    *,
    layers: Sequence[int] | None = None,
    source: str = "spec",
    max_tokens: int = 48,
    seed: int = 0,
    progress: Progress | None = None,
) -> PersonaVector:
    """Extract the persona vector a spec describes, on a real model.

    Args:
        spec: the validated extraction spec.
        model: a registry name, a GGUF path, or None for the embedded default.
        layers: blocks to extract at instead of the spec's (``--layer``: another
            model may have fewer blocks).
        source: the spec's file name, for messages.
        max_tokens: the longest answer generated.
        seed: the sampling seed of the answers.
        progress: called with a line of text at each stage.

    Returns:
        The vector at the spec's layers (or ``layers``), with the model's name, sha256 and
        architecture, the method and the spec's prompts hash.

    Raises:
        ScenarioError: if a layer of the spec (or of ``layers``) does not exist in
            the model, or ``layers`` lists one twice.

    """
    say = progress or (lambda _: None)
    engine = get_engine(model, n_ctx=4096)
    if layers is None:
        _check_layers(spec.layers, engine.n_layer, source, "layers")
    else:
        _check_layers(list(layers), engine.n_layer, source, "--layer")
        spec = spec.model_copy(update={"layers": tuple(int(b) for b in layers)})
    questions = spec.questions.extraction
    requests, samples_pos, samples_neg = [], [], []
    for pair in spec.pairs:
        for question in questions:
            requests.append((f"{pair.positive} {spec.style.positive}".strip(), question))
            requests.append((f"{pair.negative} {spec.style.negative}".strip(), question))
    say(f"answering {len(questions)} questions under {len(spec.pairs)} pairs of prompts")
    answers = answer_all(engine, requests, max_tokens=max_tokens, seed=seed)
    index = 0
    for pair in spec.pairs:
        for question in questions:
            samples_pos.append(Sample(pair.positive, question, answers[index]))
            samples_neg.append(Sample(pair.negative, question, answers[index + 1]))
            index += 2
    say(f"reading {2 * len(samples_pos)} answers at blocks {list(spec.layers)}")
    positive = response_means(engine, samples_pos, spec.layers)
    negative = response_means(engine, samples_neg, spec.layers)
    if spec.method == "mean_diff":
        directions = mean_difference(positive, negative)
    else:
        directions = pca_of_differences(positive, negative).directions
    return PersonaVector(
        directions,
        tuple(spec.layers),
        name=spec.name,
        method=spec.method,
        model_name=engine.model_info.name,
        model_sha256=engine.sha256,
        architecture=_architecture(engine),
        prompts_sha256=spec.prompts_sha256(),
        meta={
            "pairs": str(len(spec.pairs)),
            "questions": str(len(questions)),
            "max_tokens": str(max_tokens),
            "seed": str(seed),
        },
    )


@dataclass(frozen=True, eq=False)
class AxisResult:
    """The Assistant axis and persona space at each block.

    Attributes:
        vector: the contrast axis ``mean(default) - mean(roles)`` per block.
        analyses: persona space, PC1's separation of the default, per block.

    """

    vector: PersonaVector
    analyses: dict[int, AssistantAxis]


def extract_axis(
    role_set: RoleSet,
    model: str | os.PathLike[str] | None = None,
    *,
    layers: Sequence[int] | None = None,
    source: str = "roles",
    max_tokens: int = 48,
    seed: int = 0,
    questions: int | None = None,
    prompts: int | None = None,
    progress: Progress | None = None,
) -> AxisResult:
    """The Assistant axis of a role set, on a real model.

    Args:
        role_set: the validated role set.
        model: a registry name, a GGUF path, or None for the embedded default.
        layers: blocks to read (default: the middle block, ``n_layer // 2``).
        source: the role set's file name, for messages.
        max_tokens: the longest answer generated.
        seed: the sampling seed of the answers.
        questions: use only the first this many questions (default: all).
        prompts: use only the first this many prompts of each role (default: all).
        progress: called with a line of text at each stage.

    Returns:
        The axis (method ``assistant_axis``) and the analyses per block.

    Raises:
        ScenarioError: if a block does not exist in the model.

    """
    say = progress or (lambda _: None)
    engine = get_engine(model, n_ctx=4096)
    blocks = [engine.n_layer // 2] if layers is None else [int(b) for b in layers]
    _check_layers(blocks, engine.n_layer, source, "--layer")
    asked = list(role_set.questions[:questions])
    groups: list[tuple[str, list[str]]] = [("default", list(role_set.default.prompts))]
    groups += [(role.name, list(role.prompts[:prompts])) for role in role_set.roles]
    requests = [(p, q) for _, group in groups for p in group for q in asked]
    say(
        f"answering {len(asked)} questions for {len(groups) - 1} roles and the default "
        f"({len(requests)} answers)"
    )
    answers = iter(answer_all(engine, requests, max_tokens=max_tokens, seed=seed))
    samples = [[Sample(p, q, next(answers)) for p in group for q in asked] for _, group in groups]
    flat = response_means(engine, [s for group in samples for s in group], blocks)
    means, offset = [], 0
    for group in samples:
        means.append(flat[offset : offset + len(group)])
        offset += len(group)
    default = means[0]
    roles = np.stack([m.mean(axis=0) for m in means[1:]])
    analyses = {
        block: assistant_axis(roles[:, i], default[:, i], n_components=min(3, len(roles) - 1))
        for i, block in enumerate(blocks)
    }
    directions = np.stack([analyses[b].contrast for b in blocks]).astype(np.float32)
    first = analyses[blocks[0]]
    vector = PersonaVector(
        directions,
        tuple(blocks),
        name="assistant_axis",
        method="assistant_axis",
        model_name=engine.model_info.name,
        model_sha256=engine.sha256,
        architecture=_architecture(engine),
        prompts_sha256=role_set.prompts_sha256(),
        meta={
            "roles": str(len(groups) - 1),
            "questions": str(len(asked)),
            "max_tokens": str(max_tokens),
            "seed": str(seed),
            "pc_variance": ",".join(f"{v:.4f}" for v in first.space.explained_variance_ratio[:3]),
            "pc1_separates_default": str(first.separation.separates).lower(),
        },
    )
    return AxisResult(vector, analyses)


# --------------------------------------------------------------------------- cached


def _cache_file(cache_dir: str | os.PathLike[str], name: str, recipe: dict[str, object]) -> Path:
    """The file a recipe's vector is cached in: its name and a hash of the whole recipe."""
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{name}-{key}.gguf"


def _cached(
    path: Path, recipe: dict[str, object], make: Callable[[], PersonaVector], say: Progress
) -> PersonaVector:
    """Read ``path`` if it holds the recipe's vector, else make it and write it atomically."""
    if path.is_file():
        vector = read_control_vector(path)
        if (
            vector.model_sha256 == recipe["model_sha256"]
            and vector.prompts_sha256 == recipe["prompts_sha256"]
        ):
            say(f"using {path}")
            return vector
    vector = make()
    write_control_vector(vector, path, drop_layer_zero=True)
    say(f"wrote {path}")
    return read_control_vector(path)


def cached_vector(
    spec_path: str | os.PathLike[str],
    model: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str],
    *,
    max_tokens: int = 48,
    seed: int = 0,
    progress: Progress | None = None,
) -> PersonaVector:
    """The persona vector of an extraction spec on a model, extracted once per recipe.

    Batteries that steer along a persona's vector need it for every model they
    run; this extracts it the first time (:func:`extract_vector`) and keeps it in
    ``cache_dir`` under a name that hashes the whole recipe (model sha256, the
    spec's prompts hash, layers, method, answer length, seed). A later call with
    the same recipe reads the file back, so a resumed run steers with the very
    same directions; any change to the recipe gives a new file.

    Args:
        spec_path: the extraction spec (TOML).
        model: a registry name, a GGUF path, or None for the embedded default.
        cache_dir: the folder for the vector files (e.g. a run's ``vectors/``).
        max_tokens: the longest extraction answer.
        seed: the sampling seed of the extraction answers.
        progress: called with a line of text at each stage.

    Returns:
        The vector as read back from its GGUF file (layer 0 left out, as llama.cpp
        cannot steer it).

    Raises:
        ScenarioError: if the spec is invalid or names a block the model lacks.

    """
    say = progress or (lambda _: None)
    spec = load_spec(spec_path)
    recipe: dict[str, object] = {  # no engine is loaded unless the file must be made
        "kind": "vector",
        "model_sha256": resolve_model(model).sha256,
        "prompts_sha256": spec.prompts_sha256(),
        "layers": list(spec.layers),
        "method": spec.method,
        "max_tokens": max_tokens,
        "seed": seed,
    }
    path = _cache_file(cache_dir, spec.name, recipe)
    return _cached(
        path,
        recipe,
        lambda: extract_vector(
            spec, model, source=str(spec_path), max_tokens=max_tokens, seed=seed, progress=say
        ),
        say,
    )


def cached_axis(
    roles_path: str | os.PathLike[str],
    model: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str],
    *,
    layers: Sequence[int] | None = None,
    max_tokens: int = 48,
    seed: int = 0,
    questions: int | None = None,
    prompts: int | None = None,
    progress: Progress | None = None,
) -> PersonaVector:
    """The Assistant axis of a role set on a model, extracted once per recipe.

    The same caching as :func:`cached_vector`, for :func:`extract_axis`; the
    recipe also holds the blocks and how many questions and prompts per role
    were used.

    Args:
        roles_path: the role set (TOML).
        model: a registry name, a GGUF path, or None for the embedded default.
        cache_dir: the folder for the axis files.
        layers: blocks to read (default: the middle block).
        max_tokens: the longest answer generated.
        seed: the sampling seed of the answers.
        questions: use only the first this many questions (default: all).
        prompts: use only the first this many prompts of each role (default: all).
        progress: called with a line of text at each stage.

    Returns:
        The axis as read back from its GGUF file.

    Raises:
        ScenarioError: if the role set is invalid or a block does not exist.

    """
    say = progress or (lambda _: None)
    role_set = load_role_set(roles_path)
    if layers is None:
        blocks = [get_engine(model, n_ctx=4096).n_layer // 2]
    else:
        blocks = [int(b) for b in layers]
    recipe: dict[str, object] = {  # no engine is loaded unless the file must be made
        "kind": "axis",
        "model_sha256": resolve_model(model).sha256,
        "prompts_sha256": role_set.prompts_sha256(),
        "layers": blocks,
        "max_tokens": max_tokens,
        "seed": seed,
        "questions": questions,
        "prompts": prompts,
    }
    path = _cache_file(cache_dir, "assistant_axis", recipe)
    return _cached(
        path,
        recipe,
        lambda: (
            extract_axis(
                role_set,
                model,
                layers=blocks,
                source=str(roles_path),
                max_tokens=max_tokens,
                seed=seed,
                questions=questions,
                prompts=prompts,
                progress=say,
            ).vector
        ),
        say,
    )
