"""The shared battery runner: planning, resume, refusal to mix settings, tables, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from simulacra.batteries import KINDS, RunOptions, load_battery_result, run_battery
from simulacra.batteries.runner import CONFIG_FILE, validate_battery
from simulacra.cli import main
from simulacra.errors import ScenarioError, SimulacraError

HERE = Path(__file__).parent


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setitem(KINDS, "toy", "toy_kind")
    import toy_kind

    toy_kind.CALLS.clear()
    directory = tmp_path / "toy"
    directory.mkdir()
    (directory / "battery.toml").write_text(
        'kind = "toy"\nquestions = ["Is fire hot?", "Is ice hot?"]\n'
    )
    return directory, toy_kind


def test_run_writes_tables_and_manifest(toy, tmp_path):
    directory, _ = toy
    result = run_battery(directory, tmp_path / "out", progress=False)
    answers = result["answers"]
    assert len(answers) == 2 * 2 * 2  # questions x seeds x options
    assert list(answers.columns[:2]) == ["unit_id", "model"]
    sums = answers.groupby("unit_id")["probability"].sum()
    assert sums.to_numpy() == pytest.approx(1.0)
    manifest = result.manifest
    assert manifest["battery_kind"] == "toy"
    assert set(manifest["models"]) == {"smollm2-135m-instruct"}
    assert len(manifest["models"]["smollm2-135m-instruct"]) == 64  # sha256
    assert manifest["n_threads"] >= 1
    assert "battery.toml" in manifest["battery_files"]
    assert manifest["versions"]["llama_cpp_python"]
    loaded = load_battery_result(tmp_path / "out")
    pd.testing.assert_frame_equal(loaded["answers"], answers)


def test_resume_skips_finished_units_and_gives_the_same_tables(toy, tmp_path):
    directory, kind = toy
    full = run_battery(directory, tmp_path / "full", progress=False)
    out = tmp_path / "resumed"
    run_battery(directory, out, progress=False)
    # simulate a kill after two units: drop the other units and the final files
    for unit_dir in sorted((out / "units").iterdir())[2:]:
        for f in unit_dir.iterdir():
            f.unlink()
        unit_dir.rmdir()
    (out / "manifest.json").unlink()
    (out / "answers.parquet").unlink()
    (out / "units" / ".q9-s9.tmp").mkdir()  # a leftover of an interrupted write
    kind.CALLS.clear()
    resumed = run_battery(directory, out, progress=False)
    assert len(kind.CALLS) == 2
    assert not (out / "units" / ".q9-s9.tmp").exists()
    pd.testing.assert_frame_equal(resumed["answers"], full["answers"])


def test_resume_refuses_other_settings(toy, tmp_path):
    directory, _ = toy
    out = tmp_path / "out"
    run_battery(directory, out, RunOptions(seeds=1), progress=False)
    with pytest.raises(SimulacraError, match=r"options\.seeds \(1 then, 2 now\)"):
        run_battery(directory, out, RunOptions(seeds=2), progress=False)
    with pytest.raises(SimulacraError, match="n_threads"):
        run_battery(directory, out, RunOptions(seeds=1, n_threads=1), progress=False)


def test_resume_refuses_another_revision_of_the_kind(toy, tmp_path, monkeypatch):
    directory, kind = toy
    out = tmp_path / "out"
    run_battery(directory, out, RunOptions(seeds=1), progress=False)
    config = out / CONFIG_FILE
    recorded = json.loads(config.read_text())
    assert recorded["battery_revision"] is None  # the toy kind has none
    # A run recorded before revisions existed lacks the key: it still resumes.
    del recorded["battery_revision"]
    config.write_text(json.dumps(recorded))
    run_battery(directory, out, RunOptions(seeds=1), progress=False)
    # A kind whose numbers changed raises its revision: its old runs are not resumed.
    monkeypatch.setattr(kind.ToyBattery, "revision", 2, raising=False)
    with pytest.raises(SimulacraError, match=r"battery_revision \(None then, 2 now\)"):
        run_battery(directory, out, RunOptions(seeds=1), progress=False)


def test_unfinished_run_is_not_a_result(toy, tmp_path):
    directory, _ = toy
    out = tmp_path / "out"
    run_battery(directory, out, RunOptions(seeds=1), progress=False)
    (out / "manifest.json").unlink()
    with pytest.raises(SimulacraError, match="unfinished run"):
        load_battery_result(out)


def test_validation_names_file_and_field(toy, tmp_path):
    directory, _ = toy
    with pytest.raises(ScenarioError) as err:
        validate_battery(tmp_path / "missing")
    assert "no such battery directory" in str(err.value)
    (directory / "battery.toml").write_text('kind = "toys"\n')
    with pytest.raises(ScenarioError) as err:
        validate_battery(directory)
    text = str(err.value)
    assert f"{directory / 'battery.toml'}: kind: expected one of" in text
    assert "'toys'" in text
    (directory / "battery.toml").write_text("kind = [\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        validate_battery(directory)


def test_cli_battery_run_validate_and_report(toy, tmp_path, capsys):
    directory, _ = toy
    assert main(["battery", "validate", str(directory)]) == 0
    assert "ok (toy battery)" in capsys.readouterr().out
    out = tmp_path / "out"
    assert (
        main(["battery", "run", str(directory), "--out", str(out), "--seeds", "1", "--quiet"]) == 0
    )
    assert main(["report", str(out), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "summary.csv").is_file()
    assert json.loads((out / "manifest.json").read_text())["options"]["seeds"] == 1
    (directory / "battery.toml").write_text('kind = "toy"\nquestions = []\n')
    assert main(["battery", "validate", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "battery.toml: questions: expected a non-empty list" in err
    assert "Traceback" not in err


def test_an_output_path_that_is_a_file_is_refused(toy, tmp_path):
    directory, kind = toy
    taken = tmp_path / "taken"
    taken.write_text("mine")
    kind.CALLS.clear()
    with pytest.raises(SimulacraError, match="exists and is not a directory"):
        run_battery(directory, taken, progress=False)
    assert taken.read_text() == "mine" and not kind.CALLS
