"""simulacra: agent-based persona simulation on local language models.

Agents hold a probability distribution over candidate personas (simulacra) that
narrows, turn by turn, by the model's own log-likelihood of what is said. The
public API:

- :func:`load_scenario`, :func:`run`, :func:`load_run`: run a scenario file;
- :class:`DialogueModel`, :class:`PersonaAgent`: the Mesa model and agents;
- :class:`Superposition`: the belief maths;
- :class:`Engine`: batched scoring and generation on llama.cpp;
- :func:`sweep`, :func:`load_sweep`: grids of runs with replicates;
- :mod:`simulacra.analysis` and :mod:`simulacra.plots`: metrics and figures.
"""

from simulacra.errors import (
    EngineError,
    ModelLoadError,
    ModelNotFoundError,
    ScenarioError,
    SimulacraError,
    SweepError,
)
from simulacra.llm.engine import Engine
from simulacra.scenario import Scenario, load_scenario
from simulacra.simulation.agent import PersonaAgent
from simulacra.simulation.model import DialogueModel
from simulacra.simulation.results import RunResult, load_run
from simulacra.simulation.runner import get_engine, run
from simulacra.simulation.simulacrum import Simulacrum
from simulacra.simulation.superposition import Superposition
from simulacra.sweep import load_sweep, sweep

__version__ = "0.1.0"

__all__ = [
    "DialogueModel",
    "Engine",
    "EngineError",
    "ModelLoadError",
    "ModelNotFoundError",
    "PersonaAgent",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SimulacraError",
    "Simulacrum",
    "Superposition",
    "SweepError",
    "__version__",
    "get_engine",
    "load_run",
    "load_scenario",
    "load_sweep",
    "run",
    "sweep",
]
