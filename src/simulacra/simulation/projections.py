"""Projections: each utterance's activations on persona vectors, turn by turn.

With a ``[projections]`` table, every utterance is read once more, teacher-forced,
by the engine's hidden-state read (:meth:`Engine.continuation_states`): the
speaker's prompt (its cached prefix reused) followed by the utterance, under the
speaker's steering if it has any, as it was generated. At every block a vector
covers, the residual stream ``l_out-b`` is averaged over the utterance's tokens
and projected on the vector's unit direction at that block
(:func:`simulacra.vectors.project`). The Assistant axis, if given, is one more
vector, named ``assistant_axis``.

The table ``projections`` has one row per turn, vector and block:
``turn, agent, vector, layer, projection``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError, ScenarioIssue, VectorError
from simulacra.llm.chat import Prompt
from simulacra.llm.engine import Engine
from simulacra.scenario import ProjectionsSpec
from simulacra.vectors import PersonaVector, project, read_control_vector

__all__ = ["PROJECTION_COLUMNS", "Projector"]

PROJECTION_COLUMNS = ("turn", "agent", "vector", "layer", "projection")
"""The columns of the projections table (before ``run_id``)."""


@dataclass(frozen=True, eq=False)
class _Named:
    label: str
    vector: PersonaVector


def _read(path: Path | str, field: str, source: str, n_embd: int) -> PersonaVector:
    try:
        vector = read_control_vector(path)
    except VectorError as exc:
        raise ScenarioError(ScenarioIssue(source, field, str(exc))) from None
    if vector.n_embd != n_embd:
        raise ScenarioError(
            ScenarioIssue(
                source,
                field,
                f"{path} holds directions of width {vector.n_embd}, but the model's residual "
                f"stream is {n_embd} wide: expected a vector extracted from this model",
            )
        )
    return vector


class Projector:
    """Projects utterances on the scenario's vectors, reading them on the engine.

    Args:
        spec: the scenario's ``[projections]`` table.
        source: the scenario file, for messages.
        n_layer: the model's number of blocks (blocks beyond it are not read).
        n_embd: the model's width.

    Raises:
        ScenarioError: naming the field if a vector cannot be read or does not fit the model.

    """

    def __init__(self, spec: ProjectionsSpec, *, source: str, n_layer: int, n_embd: int) -> None:
        named = []
        for i, path in enumerate(spec.vectors):
            vector = _read(path, f"projections.vectors[{i}]", source, n_embd)
            named.append(_Named(vector.name, vector))
        if spec.axis is not None:
            named.append(
                _Named("assistant_axis", _read(spec.axis, "projections.axis", source, n_embd))
            )
        labels = [n.label for n in named]
        self.vectors = [
            _Named(n.label if labels.count(n.label) == 1 else f"{n.label}[{i}]", n.vector)
            for i, n in enumerate(named)
        ]
        blocks = {b for n in self.vectors for b in n.vector.layers}
        self.layers = tuple(sorted(b for b in blocks if b < n_layer))

    def rows(
        self, engine: Engine, turn: int, agent: str, prompt: Prompt, body: str
    ) -> list[dict[str, Any]]:
        """The projection rows of one utterance, read under the engine's current steering.

        Args:
            engine: the dialogue's engine (steered as the speaker was, by the caller).
            turn: the utterance's turn.
            agent: its speaker.
            prompt: the speaker's prompt, as the utterance was generated from it.
            body: the utterance as scored (``engine.chat.body(text)``).

        """
        if not self.layers or len(engine.tokenize(body)) == 0:
            return []
        means = engine.continuation_states([(prompt, body)], self.layers)[0]
        by_layer = dict(zip(self.layers, means, strict=True))
        rows = []
        for named in self.vectors:
            for layer, direction in zip(named.vector.layers, named.vector.directions, strict=True):
                if layer not in by_layer:
                    continue
                rows.append(
                    {
                        "turn": turn,
                        "agent": agent,
                        "vector": named.label,
                        "layer": layer,
                        "projection": float(project(by_layer[layer], direction)),
                    }
                )
        return rows
