"""The quickstart gives the same tables as before the reorganisation.

``tests/golden/quickstart_turns3`` holds the tables of the quickstart at three turns,
written by the code of commit 2e90f8e (see ``tests/golden/README.md``). Moving
modules, splitting the engine or replacing the validators must not change a single
token, text, label or engine score of them. Floating-point columns are compared to
1e-12 relative (1e-15 absolute): posteriors and probabilities pass through numpy's
``exp``/``log``, whose vectorised kernels change in the last bit between numpy
releases (numpy 2.4.6 moved a posterior by 8.7e-19 and a probability by 1.1e-16 against
the golden tables' numpy), and CI installs the newest numpy.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simulacra.scenario import load_scenario
from simulacra.simulation.runner import run

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "quickstart_turns3"


@pytest.fixture(scope="module")
def quickstart_tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.toml", ["dialogue.turns=3"])
    out = tmp_path_factory.mktemp("quickstart") / "run"
    run(scenario, seed=scenario.seed).save(out)
    return out


@pytest.mark.parametrize("table", ["transcript", "beliefs", "probes", "agents"])
def test_quickstart_tables_match_the_golden_run(quickstart_tables, table):
    golden = pd.read_parquet(GOLDEN / f"{table}.parquet")
    now = pd.read_parquet(quickstart_tables / f"{table}.parquet")
    pd.testing.assert_frame_equal(now, golden, check_exact=False, rtol=1e-12, atol=1e-15)
    exact = [c for c in golden.columns if golden[c].dtype.kind != "f"]
    pd.testing.assert_frame_equal(now[exact], golden[exact], check_exact=True)
