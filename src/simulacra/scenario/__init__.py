"""A scenario: the validated description of one simulation, and how to load it.

A scenario file (TOML, schema in ``docs/architecture.md``) names the model, the
candidate simulacra, the agents with their priors over those simulacra, the
dialogue settings, the belief update, the probes and, optionally, the turns at
which utterances are regenerated (the regeneration test). :func:`load_scenario`
reads one, applies command-line ``--set key=value`` overrides and validates it
into frozen dataclasses; every problem found is collected and reported at once
in a single :class:`~simulacra.errors.ScenarioError`, each with the file, the
dotted path of the field and what was expected.

The resolved :class:`Scenario` is fully explicit: agents are expanded by
``count`` (``alice_1`` .. ``alice_n``), priors are resolved to weights by
simulacrum name (tag priors expanded, uniform priors written out), and probes
list their agents by expanded name. :meth:`Scenario.to_dict` gives that
resolved form as a plain dict in the shape of the TOML file, which
:func:`parse_scenario` turns back into an equal scenario.

The rooms:

- :mod:`~simulacra.scenario.schema`: one frozen dataclass per section, the
  allowed values and the keys each section accepts;
- :mod:`~simulacra.scenario.parsing`: issue collection and one-field parsers;
- :mod:`~simulacra.scenario.sections`: one validator per section;
- :mod:`~simulacra.scenario.overrides`: ``--set key=value`` overrides;
- :mod:`~simulacra.scenario.loading`: the whole :class:`Scenario`, read and validated.
"""

from simulacra.scenario.loading import (
    Scenario,
    build_scenario,
    load_scenario,
    parse_scenario,
    read_scenario_file,
)
from simulacra.scenario.overrides import (
    Overrides,
    apply_overrides,
    parse_override,
    parse_override_value,
)
from simulacra.scenario.parsing import format_errors
from simulacra.scenario.schema import (
    MIN_N_CTX,
    NORMALIZATIONS,
    OBSERVATIONS,
    PERSONA_MODES,
    PROBE_KINDS,
    PROBE_PERSONAS,
    SCHEDULERS,
    AgentSpec,
    BeliefSpec,
    DialogueSpec,
    ModelSpec,
    NumericSpec,
    ProbeSpec,
    RegenerationSpec,
    ScaleSpec,
    resolve_turn,
)

__all__ = [
    "MIN_N_CTX",
    "NORMALIZATIONS",
    "OBSERVATIONS",
    "PERSONA_MODES",
    "PROBE_KINDS",
    "PROBE_PERSONAS",
    "SCHEDULERS",
    "AgentSpec",
    "BeliefSpec",
    "DialogueSpec",
    "ModelSpec",
    "NumericSpec",
    "Overrides",
    "ProbeSpec",
    "RegenerationSpec",
    "ScaleSpec",
    "Scenario",
    "apply_overrides",
    "build_scenario",
    "format_errors",
    "load_scenario",
    "parse_override",
    "parse_override_value",
    "parse_scenario",
    "read_scenario_file",
    "resolve_turn",
]
