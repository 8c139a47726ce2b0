"""Checking a scenario's model before anything runs: what loading it would reject.

Parsing (:mod:`simulacra.scenario.loading`) checks the shape of ``[model]`` only.
:func:`check_model` goes to the disk, as loading the engine would: the registry
name resolves (an unknown name gets a "did you mean"), its package is installed
and its file matches the registry's sha256 (a mismatch says how to reinstall), or
the GGUF file named by ``model.path`` exists and is a GGUF file. A relative
``model.path`` has already been made absolute, against the scenario file's
directory, so the message names the file that was looked for.
"""

from __future__ import annotations

from simulacra.errors import ModelLoadError, ModelNotFoundError, ScenarioError, ScenarioIssue
from simulacra.llm.models import ResolvedModel, resolve_model
from simulacra.scenario.loading import Scenario

__all__ = ["check_model"]

_RELATIVE_HINT = " (a relative model.path is read from the scenario file's directory)"


def check_model(scenario: Scenario) -> ResolvedModel:
    """Resolve and verify a scenario's model file without loading it.

    Args:
        scenario: A validated scenario.

    Returns:
        The resolved model (its file, sha256 and chat format).

    Raises:
        ScenarioError: With one issue at ``model.name`` or ``model.path`` saying
            what is wrong and what to do.

    """
    spec = scenario.model
    field, value = ("model.path", spec.path) if spec.path is not None else ("model.name", spec.name)
    try:
        return resolve_model(value)
    except (ModelNotFoundError, ModelLoadError) as err:
        message = str(err)
        if field == "model.path" and "not found" in message:
            message += _RELATIVE_HINT
        raise ScenarioError(ScenarioIssue(scenario.source, field, message)) from None
