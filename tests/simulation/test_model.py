"""The dialogue model, agents and a whole run, on the real embedded model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import pytest

import simulacra
from simulacra.simulation.model import DialogueModel

CORE = Path(__file__).parents[1] / "scenarios" / "core.toml"
SHORT = {"dialogue.turns": 2, "probes[0].turns": [0]}


@pytest.fixture(scope="module")
def result(engine):
    return simulacra.run(CORE, engine=engine)


def test_run_tables_have_the_documented_shape(result):
    transcript, beliefs = result.transcript, result.beliefs
    assert list(transcript.columns) == [
        "run_id",
        "turn",
        "speaker",
        "simulacrum",
        "text",
        "n_tokens",
    ]
    assert list(beliefs.columns) == [
        "run_id",
        "turn",
        "agent",
        "simulacrum",
        "loglik",
        "posterior",
    ]
    assert transcript["turn"].tolist() == [0, 1, 2, 3, 4]
    assert transcript["speaker"].tolist() == ["Moderator", "actor", "guest", "actor", "guest"]
    assert (transcript.loc[transcript.speaker == "actor", "simulacrum"] == "pirate").all()
    assert (transcript["n_tokens"].iloc[1:] > 0).all()
    # one row per agent x simulacrum x turn, turn 0 being the prior
    assert len(beliefs) == 2 * 3 * 5
    prior = beliefs[beliefs.turn == 0]
    np.testing.assert_allclose(prior["posterior"], 1 / 3)
    assert prior["loglik"].isna().all()
    assert set(result.probes["option"]) == {"yes", "no"}
    assert (
        result.manifest["model"]["sha256"]
        == simulacra.get_engine(simulacra.load_scenario(CORE).model).sha256
        or len(result.manifest["model"]["sha256"]) == 64
    )
    assert result.manifest["seed"] == 3
    assert "llama_cpp_python" in result.manifest["versions"]


def test_posteriors_are_normalised_at_every_turn(result):
    sums = result.beliefs.groupby(["agent", "turn"])["posterior"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    probes = result.probes.groupby(["turn", "agent", "probe"])["probability"].sum()
    np.testing.assert_allclose(probes, 1.0, atol=1e-9)


def test_observe_self_updates_only_the_speaker(result):
    beliefs = result.beliefs
    # turn 1: the actor spoke, so only its logliks are set
    turn1 = beliefs[beliefs.turn == 1]
    assert turn1.loc[turn1.agent == "actor", "loglik"].notna().all()
    assert turn1.loc[turn1.agent == "guest", "loglik"].isna().all()


def test_fixed_persona_gains_mass(result):
    actor = result.beliefs[(result.beliefs.agent == "actor")]
    mass = actor[actor.simulacrum == "pirate"].set_index("turn")["posterior"]
    assert mass.iloc[-1] > mass.iloc[0]
    assert mass.iloc[-1] > 0.9


def test_same_scenario_and_seed_give_identical_tables_across_processes(result, tmp_path):
    code = "import simulacra, sys; simulacra.run(sys.argv[1]).save(sys.argv[2])"
    out = tmp_path / "again"
    subprocess.run([sys.executable, "-c", code, str(CORE), str(out)], check=True)
    again = simulacra.load_run(out)
    for name in ("transcript", "beliefs", "probes", "agents"):
        pd.testing.assert_frame_equal(
            getattr(result, name).reset_index(drop=True),
            getattr(again, name).reset_index(drop=True),
            check_dtype=False,
        )


def test_a_different_seed_changes_the_dialogue(engine, result):
    other = simulacra.run(CORE, seed=4, engine=engine, overrides=SHORT)
    assert (
        other.transcript["text"].iloc[1:].tolist() != result.transcript["text"].iloc[1:3].tolist()
    )


def test_save_and_load_round_trip(result, tmp_path):
    out = result.save(tmp_path / "run")
    loaded = simulacra.load_run(out)
    assert loaded.run_id == result.run_id
    pd.testing.assert_frame_equal(loaded.beliefs, result.beliefs)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    with pytest.raises(simulacra.SimulacraError, match="already exists"):
        result.save(out)


def test_mesa_idioms(engine):
    model = DialogueModel(CORE, engine=engine, overrides={**SHORT, "dialogue.turns": 1})
    assert len(model.agents) == 2
    assert all(isinstance(a, simulacra.PersonaAgent) for a in model.agents)
    model.step()
    assert model.turn == 1 and not model.running
    frame = model.datacollector.get_agent_vars_dataframe()
    assert {"simulacrum", "map_simulacrum", "normalized_entropy"} <= set(frame.columns)


def test_mesa_batch_run(engine):
    rows = mesa.batch_run(
        DialogueModel,
        parameters={
            "scenario": str(CORE),
            "seed": [1, 2],
            "overrides": [SHORT],
            "beta": [0.5],
            "engine": engine,
        },
        iterations=1,
        max_steps=5,
        number_processes=1,
        display_progress=False,
    )
    frame = pd.DataFrame(rows)
    assert set(frame["seed"]) == {1, 2}
    assert frame["turn"].max() == 2
    assert {"normalized_entropy", "map_simulacrum", "AgentID"} <= set(frame.columns)


def test_unknown_setting_is_a_clear_error(engine):
    with pytest.raises(TypeError, match="unknown settings"):
        DialogueModel(CORE, engine=engine, bogus=1)
