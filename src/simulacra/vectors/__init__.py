"""Persona vectors: directions in a language model's residual stream.

A persona vector is one direction per layer along which a persona or trait
(a pirate, a physicist, the default assistant) shows in the residual stream.
This package holds the pure core: the :class:`PersonaVector` value, extraction
from contrasting activations (:func:`mean_difference`,
:func:`pca_of_differences`), persona space and the Assistant axis
(:func:`assistant_axis`), projections and capping (:func:`project`,
:func:`cap_projection`), llama.cpp's control-vector GGUF files
(:func:`read_control_vector`, :func:`write_control_vector`) and the TOML files
that describe an extraction (:func:`load_spec`, :func:`load_role_set`).

It knows nothing about dialogues, agents or scenarios, and runs no model:
capturing activations and steering live in :mod:`simulacra.llm.activations` and
:mod:`simulacra.llm.steering`.
"""

from simulacra.vectors.axis import (
    AssistantAxis,
    AxisSeparation,
    PersonaSpace,
    assistant_axis,
    assistant_axis_by_layer,
    contrast_axis,
    persona_space,
)
from simulacra.vectors.extraction import (
    PrincipalDirections,
    mean_difference,
    pca_of_differences,
    prompts_hash,
)
from simulacra.vectors.gguf import (
    encode_control_vector,
    read_control_vector,
    read_gguf_metadata,
    write_control_vector,
)
from simulacra.vectors.persona_vector import METHODS, PersonaVector, directions_sha256
from simulacra.vectors.projection import cap_projection, capping_correction, project, unit_vector
from simulacra.vectors.spec import ExtractionSpec, RoleSet, load_role_set, load_spec

__all__ = [
    "METHODS",
    "AssistantAxis",
    "AxisSeparation",
    "ExtractionSpec",
    "PersonaSpace",
    "PersonaVector",
    "PrincipalDirections",
    "RoleSet",
    "assistant_axis",
    "assistant_axis_by_layer",
    "cap_projection",
    "capping_correction",
    "contrast_axis",
    "directions_sha256",
    "encode_control_vector",
    "load_role_set",
    "load_spec",
    "mean_difference",
    "pca_of_differences",
    "persona_space",
    "project",
    "prompts_hash",
    "read_control_vector",
    "read_gguf_metadata",
    "unit_vector",
    "write_control_vector",
]
