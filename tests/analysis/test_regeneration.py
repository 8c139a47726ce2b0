"""The regeneration test: pure metrics, the [regeneration] scenario table, and real runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis.regeneration import (
    REGENERATION_COLUMNS,
    SUMMARY_COLUMNS,
    commitment,
    label_entropy,
    summarize_regeneration,
)
from simulacra.errors import ScenarioError
from simulacra.scenario import RegenerationSpec, load_scenario, parse_scenario
from simulacra.simulation.model import DialogueModel
from simulacra.simulation.regeneration import regenerate
from simulacra.simulation.results import load_run
from simulacra.simulation.runner import run

SCENARIO = (Path(__file__).parent.parent / "scenarios" / "regen.toml").read_text()

REGEN = """
[regeneration]
turns = [1, 2]
samples = 3
"""


@pytest.fixture(scope="module")
def scenario_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("regen") / "regen.toml"
    path.write_text(SCENARIO + REGEN)
    return path


@pytest.fixture(scope="module")
def plain_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "regen.toml"
    path.write_text(SCENARIO)
    return path


# --------------------------------------------------------------------------- metrics


def test_label_entropy_and_commitment():
    assert label_entropy(["a"] * 5) == 0.0
    assert label_entropy(["a", "b"]) == pytest.approx(math.log(2))
    assert label_entropy(["a", "b", None, np.nan]) == pytest.approx(math.log(2))
    assert math.isnan(label_entropy([]))
    assert commitment(["a"] * 4, 4) == 1.0
    assert commitment(["a", "b", "c", "d"], 4) == pytest.approx(0.0)
    assert commitment(["a", "b"], 4) == pytest.approx(0.5)
    assert math.isnan(commitment([], 3))
    with pytest.raises(ValueError, match="K >= 2"):
        commitment(["a"], 1)
    with pytest.raises(ValueError, match="distinct labels"):
        commitment(["a", "b", "c"], 2)


def test_summarize_regeneration_groups_and_keeps_grid_columns():
    rows = []
    for beta, labels in ((0.1, ["a", "b", "c", "d"]), (1.0, ["a", "a", "a", "b"])):
        for i, label in enumerate(labels):
            rows.append(
                {
                    "run_id": f"r{beta}",
                    "belief.beta": beta,
                    "replicate": 0,
                    "turn": 2,
                    "agent": "x",
                    "sample": i,
                    "simulacrum": "a",
                    "text": "...",
                    "n_tokens": 1,
                    "label": label,
                    "belief_entropy": 0.25,
                    "n_simulacra": 4,
                }
            )
    table = pd.DataFrame(rows)
    out = summarize_regeneration(table)
    assert list(out.columns) == [
        "run_id",
        "belief.beta",
        "replicate",
        "turn",
        "agent",
        *SUMMARY_COLUMNS,
    ]
    spread, peaked = out.iloc[0], out.iloc[1]
    assert spread["commitment"] == pytest.approx(0.0)
    assert spread["label_accuracy"] == 0.25
    assert peaked["modal_label"] == "a" and peaked["modal_share"] == 0.75
    expected = 1 - (-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))) / math.log(4)
    assert peaked["commitment"] == pytest.approx(expected)
    assert peaked["belief_commitment"] == 0.75
    assert peaked["commitment_floor"] == pytest.approx(0.0)
    # with M < K the commitment cannot fall below 1 - log M / log K
    small = summarize_regeneration(table.iloc[:2].assign(n_simulacra=8))
    assert small["commitment_floor"].iloc[0] == pytest.approx(1 - math.log(2) / math.log(8))
    assert summarize_regeneration(table.iloc[:0]).empty
    with pytest.raises(ValueError, match="lacks column"):
        summarize_regeneration(table.drop(columns="label"))


# --------------------------------------------------------------------------- scenario


def test_regeneration_table_is_parsed_resolved_and_round_trips(scenario_path, plain_path):
    scenario = load_scenario(scenario_path)
    assert scenario.regeneration == RegenerationSpec((1, 2), 3, ("guest", "host"))
    data = scenario.to_dict()
    assert data["regeneration"] == {"turns": [1, 2], "samples": 3, "agents": ["guest", "host"]}
    assert parse_scenario(data) == scenario
    plain = load_scenario(plain_path)
    assert plain.regeneration is None
    assert "regeneration" not in plain.to_dict()
    added = plain.with_overrides(
        {"regeneration.turns": [2], "regeneration.samples": 4, "regeneration.agents": ["guest"]}
    )
    assert added.regeneration == RegenerationSpec((2,), 4, ("guest",))
    with pytest.raises(ScenarioError, match="missing required key 'turns'"):
        plain.with_overrides({"regeneration.samples": 4})
    with pytest.raises(ScenarioError, match=r"turn 3 is outside \[1, 2\]"):
        scenario.with_overrides({"regeneration.turns": [3]})


# --------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def runs(scenario_path, plain_path):
    return run(scenario_path), run(plain_path)


def test_regeneration_does_not_change_the_dialogue(runs):
    with_test, without = runs
    pd.testing.assert_frame_equal(with_test.transcript, without.transcript)
    pd.testing.assert_frame_equal(with_test.beliefs, without.beliefs)
    assert without.regeneration.empty


def test_regeneration_table_of_a_run(runs, tmp_path):
    result = runs[0]
    table = result.regeneration
    assert list(table.columns) == ["run_id", *REGENERATION_COLUMNS]
    assert len(table) == 2 * 2 * 3  # turns x agents x samples
    assert sorted(table["turn"].unique()) == [1, 2]
    guest = table[table["agent"] == "guest"]
    host = table[table["agent"] == "host"]
    assert set(guest["label"]) <= {"pirate", "toddler", "chemist"}
    assert set(host["label"]) <= {"chemist", "pirate"}
    assert (host["simulacrum"] == "chemist").all()  # a fixed agent regenerates as itself
    assert (guest["n_simulacra"] == 3).all() and (host["n_simulacra"] == 2).all()
    assert table["text"].str.len().gt(0).all()
    # belief_entropy is the agent's normalised entropy before the regenerated turn
    for (turn, agent), group in table.groupby(["turn", "agent"]):
        before = result.beliefs[(result.beliefs["turn"] == turn - 1)]
        probs = before.loc[before["agent"] == agent, "posterior"].to_numpy()
        h = -(probs * np.log(probs)).sum() / math.log(len(probs))
        assert group["belief_entropy"].iloc[0] == pytest.approx(h, abs=1e-9)
    summary = summarize_regeneration(table)
    assert len(summary) == 4
    assert summary["commitment"].between(0, 1).all()
    assert result.manifest["timings"]["regenerate_s"] > 0
    loaded = load_run(result.save(tmp_path / "run"))
    pd.testing.assert_frame_equal(loaded.regeneration, table)


def test_regenerate_api_leaves_the_model_untouched_and_is_seeded(plain_path):
    model = DialogueModel(plain_path)
    model.step()
    guest = model.persona_agents[0]
    history = list(model.history)
    probs = guest.superposition.probs.copy()
    rng_state = model.rng.bit_generator.state
    first = regenerate(model, guest, 3, seed=11)
    again = regenerate(model, guest, 3, seed=11)
    assert model.history == history
    np.testing.assert_array_equal(guest.superposition.probs, probs)
    assert model.rng.bit_generator.state == rng_state
    pd.testing.assert_frame_equal(first, again)
    assert (first["turn"] == 2).all() and list(first["sample"]) == [0, 1, 2]
