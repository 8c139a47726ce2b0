"""Pilot sizes and option names: smoke designs, --tasks, --effects, --reask-runs, ETAs.

Pure planning logic (no model is loaded): what each option plans, and the errors
that name the option when it does not fit the battery.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulacra.batteries.base import RunOptions
from simulacra.batteries.replication.battery import reask_count
from simulacra.batteries.runner import validate_battery
from simulacra.cli import main
from simulacra.errors import ScenarioError
from simulacra.sweep.progress import eta_by_kind

ROOT = Path(__file__).resolve().parents[2]
GG = ROOT / "scenarios" / "goal_guarding"
ML1 = ROOT / "scenarios" / "replication" / "many_labs_1"


@pytest.fixture(scope="module")
def gg():
    return validate_battery(GG)


@pytest.fixture(scope="module")
def ml1():
    return validate_battery(ML1)


def _issues(err: pytest.ExceptionInfo[ScenarioError]) -> dict[str, str]:
    return {issue.path: issue.message for issue in err.value.issues}


# --------------------------------------------------------------------------- ETA


def test_eta_uses_the_mean_time_of_each_kind():
    finished = [("m", "none", 4.0), ("m", "dialogue", 20.0), ("m", "dialogue", 16.0)]
    assert eta_by_kind(finished, [("m", "dialogue"), ("m", "none")]) == pytest.approx(22.0)
    assert eta_by_kind(finished, [("m", "dialogue")] * 2, workers=2) == pytest.approx(18.0)


def test_eta_falls_back_to_the_kind_on_another_model_then_to_the_slowest_kind():
    finished = [("a", "none", 2.0), ("a", "memory", 10.0)]
    assert eta_by_kind(finished, [("b", "memory")]) == pytest.approx(10.0)
    # an unseen kind is not assumed as cheap as the first (cheap) unit
    assert eta_by_kind(finished, [("a", "dialogue")]) == pytest.approx(10.0)
    assert eta_by_kind([], [("a", "none")]) is None


# --------------------------------------------------------------------------- goal guarding


def test_goal_guarding_smoke_design_touches_every_channel_and_control(gg):
    units = gg.plan(RunOptions(design="smoke", models=("smollm2-135m-instruct",)))
    assert [u.kind for u in units] == ["none", "dialogue", "memory", "system", "file"]
    design = gg.spec.designs["smoke"]
    assert set(design.controls) == {"positive", "negative", "length"}
    assert design.motives and design.seeds == 1


def test_tasks_pick_a_subset_of_the_design(gg):
    units = gg.plan(RunOptions(design="smoke", extra={"tasks": ["modification"]}))
    assert {tuple(u.params["tasks"]) for u in units} == {("modification",)}
    whole = gg.plan(RunOptions(design="smoke"))
    assert all("tasks" not in u.params for u in whole)


def test_unknown_task_is_named_with_the_design_tasks(gg):
    with pytest.raises(ScenarioError) as err:
        gg.plan(RunOptions(design="smoke", extra={"tasks": ["tamperin", "exfiltration"]}))
    messages = [i.message for i in err.value.issues]
    assert all(i.path == "--tasks" for i in err.value.issues)
    assert "did you mean 'tampering'?" in messages[0]
    assert "task 'exfiltration'; expected one of 'tampering', 'modification'" in messages[1]


def test_replication_options_are_refused_by_goal_guarding(gg):
    with pytest.raises(ScenarioError) as err:
        gg.plan(RunOptions(extra={"effects": ["sunk_costs"]}))
    assert "--effects applies to replication batteries" in str(err.value)


# --------------------------------------------------------------------------- replication


def test_reask_count_scales_with_m_and_stops_below_the_threshold():
    assert reask_count(40, 0.2, 20) == 8
    assert reask_count(100, 0.2, 20) == 20
    assert reask_count(19, 0.2, 20) == 0
    assert reask_count(20, 0.2, 20) == 4
    assert reask_count(22, 0.25, 20) == 6  # 5.5 rounds up
    assert reask_count(10, 1.0, 0) == 10


def test_replication_smoke_design_is_small_and_not_reasked(ml1):
    settings = ml1.settings(RunOptions(design="smoke"))
    assert settings["participants"] == 4 and settings["reask"] == 0
    assert len(settings["effects"]) < len(ml1.effects)
    units = ml1.plan(RunOptions(design="smoke"))
    assert {u.kind for u in units} == {"answer"}
    assert all(u.params["effects"] == list(settings["effects"]) for u in units)


def test_reasked_chunks_are_their_own_kind(ml1):
    units = ml1.plan(RunOptions(participants=40))
    kinds = [u.kind for u in units]
    assert kinds[:4] == ["reask"] * 4 and set(kinds[4:]) == {"answer"}
    assert units[0].params["reask"] == 8
    off = ml1.plan(RunOptions(participants=40, extra={"reask_runs": 1}))
    assert {u.kind for u in off} == {"answer"}


def test_effects_option_picks_studies_and_names_unknown_ones(ml1):
    units = ml1.plan(RunOptions(participants=4, extra={"effects": ["sunk_costs"]}))
    assert units[0].params["effects"] == ["sunk_costs"]
    with pytest.raises(ScenarioError) as err:
        ml1.plan(RunOptions(extra={"effects": ["sunk_cost"]}))
    assert "did you mean 'sunk_costs'?" in _issues(err)["--effects"]


def test_seeds_on_a_replication_battery_names_reask_runs(ml1):
    with pytest.raises(ScenarioError) as err:
        ml1.plan(RunOptions(seeds=2))
    assert "--reask-runs" in _issues(err)["--seeds"]
    with pytest.raises(ScenarioError) as err:
        ml1.plan(RunOptions(extra={"tasks": ["x"]}))
    assert "--effects" in _issues(err)["--tasks"]


def test_cli_seeds_on_replication_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["battery", "run", str(ML1), "--out", str(out), "--seeds", "2"])
    err = capsys.readouterr().err
    assert status == 2
    assert "--seeds" in err and "--reask-runs 2" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_reask_runs_is_checked_as_a_count(tmp_path, capsys):
    status = main(["battery", "run", str(ML1), "--out", str(tmp_path / "o"), "--reask-runs", "0"])
    assert status == 2
    assert "--reask-runs" in capsys.readouterr().err


def test_a_design_naming_a_missing_effect_fails_only_when_run(tmp_path):
    import shutil

    copy = tmp_path / "ml1"
    shutil.copytree(ML1, copy)
    (copy / "effects" / "gain_loss_framing.toml").unlink()
    battery = validate_battery(copy)  # still valid: the design is not used
    with pytest.raises(ScenarioError) as err:
        battery.plan(RunOptions(design="smoke"))
    assert "unknown effect 'gain_loss_framing'" in _issues(err)["designs.smoke.effects"]
