"""A scenario: the validated description of one simulation, and how to load it.

A scenario file (TOML, documented in ``docs/architecture.md``; ``simulacra schema
scenario`` prints its JSON Schema) names the model, the candidate simulacra, the
agents with their priors over those simulacra, the dialogue settings, the belief
update, the probes and, optionally, the turns at which utterances are regenerated
(the regeneration test) and the vectors activations are projected on.
:func:`load_scenario` reads one, applies command-line ``--set key=value``
overrides and validates it on the schema layer (:mod:`simulacra.schema`); every
problem found is reported at once in a single
:class:`~simulacra.errors.ScenarioError`, each with the file, the dotted path of
the field and what was expected.

The resolved :class:`Scenario` is fully explicit: agents are expanded by
``count`` (``alice_1`` .. ``alice_n``), priors are resolved to weights by
simulacrum name (tag priors expanded, uniform priors written out), and probes
list their agents by expanded name. :meth:`Scenario.to_dict` gives that
resolved form as a plain dict in the shape of the TOML file, which
:func:`parse_scenario` turns back into an equal scenario.

The rooms:

- :mod:`~simulacra.scenario.schema`: the file kind, one pydantic model per table,
  with the checks across tables;
- :mod:`~simulacra.scenario.specs`: the resolved agents, probes and regeneration test;
- :mod:`~simulacra.scenario.overrides`: ``--set key=value`` overrides;
- :mod:`~simulacra.scenario.loading`: the whole :class:`Scenario`, read, validated, resolved;
- :mod:`~simulacra.scenario.model_check`: the model file, checked before anything runs.
"""

from simulacra.scenario.loading import (
    Scenario,
    load_scenario,
    parse_scenario,
)
from simulacra.scenario.overrides import (
    Overrides,
    apply_overrides,
    parse_override,
    parse_override_value,
)
from simulacra.scenario.schema import (
    MIN_N_CTX,
    PROBE_KINDS,
    SCHEDULERS,
    BeliefSpec,
    DialogueSpec,
    ModelSpec,
    NumericSpec,
    ProjectionsSpec,
    ScaleSpec,
    ScenarioFile,
    SteerSpec,
    resolve_turn,
)
from simulacra.scenario.specs import AgentSpec, ProbeSpec, RegenerationSpec
from simulacra.schema import format_errors

__all__ = [
    "MIN_N_CTX",
    "PROBE_KINDS",
    "SCHEDULERS",
    "AgentSpec",
    "BeliefSpec",
    "DialogueSpec",
    "ModelSpec",
    "NumericSpec",
    "Overrides",
    "ProbeSpec",
    "ProjectionsSpec",
    "RegenerationSpec",
    "ScaleSpec",
    "Scenario",
    "ScenarioFile",
    "SteerSpec",
    "apply_overrides",
    "format_errors",
    "load_scenario",
    "parse_override",
    "parse_override_value",
    "parse_scenario",
    "resolve_turn",
]
