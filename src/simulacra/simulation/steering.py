"""Steered agents: a scenario's ``[agents.steer]`` as an engine steering setting.

An agent with ``[agents.steer]`` speaks (and scores its own beliefs) with a
control vector added to the model's residual stream: the GGUF file named by
``vector`` (relative to the scenario), multiplied by ``coefficient``, at the
blocks ``layers = [start, end]`` (inclusive). :func:`agent_steering` reads the
file once per run and checks it against the model; the engine applies it inside
``Engine.steering(setting)``. The manifest records, per steered agent, the file,
the vector's identity, the coefficient, the blocks and the setting's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulacra.errors import ScenarioError, ScenarioIssue, VectorError, warn
from simulacra.llm.steering import SteeringSetting
from simulacra.scenario import SteerSpec
from simulacra.vectors import PersonaVector, read_control_vector

__all__ = ["AgentSteering", "agent_steering"]


@dataclass(frozen=True, eq=False)
class AgentSteering:
    """One agent's steering: the vector read from its file and the engine setting.

    Attributes:
        agent: the agent's name.
        path: the vector file.
        vector: the persona vector read from it.
        coefficient: the multiple of the vector added.
        setting: the engine's steering setting (vector identity, coefficient, blocks).

    """

    agent: str
    path: str
    vector: PersonaVector
    coefficient: float
    setting: SteeringSetting

    def to_dict(self) -> dict[str, Any]:
        """What a run's manifest records of this steering."""
        return {
            "agent": self.agent,
            "vector": self.path,
            "name": self.vector.name,
            "method": self.vector.method,
            "vector_sha256": self.vector.sha256,
            "vector_model_sha256": self.vector.model_sha256,
            "coefficient": self.coefficient,
            "layers": list(self.setting.layers),
            "key": self.setting.key,
        }


def agent_steering(
    spec: SteerSpec,
    *,
    agent: str,
    field: str,
    source: str,
    n_layer: int,
    n_embd: int,
    model_sha256: str,
) -> AgentSteering:
    """Read an agent's steering vector and build its setting, checked against the model.

    Args:
        spec: the agent's ``[agents.steer]`` table.
        agent: the agent's name.
        field: the dotted field of the table, for messages (``agents[0].steer``).
        source: the scenario file, for messages.
        n_layer: the model's number of blocks.
        n_embd: the model's width.
        model_sha256: the model file's sha256 (a vector from another file is warned about).

    Returns:
        The steering.

    Raises:
        ScenarioError: naming the file and field if the vector cannot be read, its
            width is not the model's, or the blocks cannot be steered.

    """
    try:
        vector = read_control_vector(spec.vector)
    except VectorError as exc:
        raise ScenarioError(ScenarioIssue(source, f"{field}.vector", str(exc))) from None
    if vector.n_embd != n_embd:
        raise ScenarioError(
            ScenarioIssue(
                source,
                f"{field}.vector",
                f"{spec.vector} holds directions of width {vector.n_embd}, but the model's "
                f"residual stream is {n_embd} wide: expected a vector extracted from this model",
            )
        )
    start, end = spec.layers
    if end > n_layer - 1:
        raise ScenarioError(
            ScenarioIssue(
                source,
                f"{field}.layers",
                f"expected blocks within 1 to {n_layer - 1} (the model has {n_layer}), "
                f"got [{start}, {end}]",
            )
        )
    covered = [b for b in vector.layers if start <= b <= end]
    if not covered:
        raise ScenarioError(
            ScenarioIssue(
                source,
                f"{field}.layers",
                f"the vector has no direction in blocks [{start}, {end}]: it covers "
                f"{list(vector.layers)}",
            )
        )
    if vector.model_sha256 and vector.model_sha256 != model_sha256:
        warn(
            f"{source}: {field}.vector: {spec.vector} was extracted from another model file "
            f"(sha256 {vector.model_sha256[:12]}...), not the one this run loads"
        )
    setting = SteeringSetting.of(vector, spec.coefficient, n_layer=n_layer, layers=(start, end))
    return AgentSteering(agent, str(spec.vector), vector, float(spec.coefficient), setting)
