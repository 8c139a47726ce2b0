"""The quickstart gives the same tables, bit for bit, as before the reorganisation.

``tests/golden/quickstart_turns3`` holds the tables of the quickstart at three turns,
written by the code of commit 2e90f8e (see ``tests/golden/README.md``). Moving
modules, splitting the engine or replacing the validators must not change a single
token or bit of them.
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
def test_quickstart_tables_are_bit_identical_to_the_golden_run(quickstart_tables, table):
    golden = pd.read_parquet(GOLDEN / f"{table}.parquet")
    now = pd.read_parquet(quickstart_tables / f"{table}.parquet")
    pd.testing.assert_frame_equal(now, golden, check_exact=True)
