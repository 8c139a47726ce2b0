"""What the command line prints: counts, defaults in --help, models, plain warnings."""

from __future__ import annotations

import pytest

import simulacra.cli as cli
from simulacra.cli import main
from simulacra.errors import warn

ONE_TURN = """
[model]
name = "smollm2-135m-instruct"

[[simulacra]]
name = "pirate"
description = "You are a pirate."

[[simulacra]]
name = "monk"
description = "You are a monk."

[[agents]]
name = "solo"

[dialogue]
turns = 1
"""


def test_validate_counts_in_the_singular(tmp_path, capsys):
    path = tmp_path / "one.toml"
    path.write_text(ONE_TURN)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ok (1 agent, 2 simulacra, 1 turn)" in out
    assert main(["validate", str(path), "--set", "dialogue.turns=3"]) == 0
    assert "ok (1 agent, 2 simulacra, 3 turns)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["sweep"], ["(default: 1)", "(default: local)"]),
        (["report"], ["--run RUN_ID"]),
        (["run"], ["--seed"]),
    ],
)
def test_help_shows_the_defaults(command, shown, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for text in shown:
        assert text in out
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "(default: [])" not in out


def test_models_marks_the_default_once(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.count("(default)") == 1
    assert "smollm2-135m-instruct (default):" in out


def test_warnings_are_printed_plainly(monkeypatch, capsys):
    def warns(args):
        warn("the cache is full; raise n_ctx in the scenario's [model] table")
        return 0

    monkeypatch.setattr(cli, "_cmd_models", warns)
    assert main(["models"]) == 0
    err = capsys.readouterr().err
    assert err == "warning: the cache is full; raise n_ctx in the scenario's [model] table\n"


BATTERY = "scenarios/goal_guarding"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["battery", "run", BATTERY, "--participants", "0"], "--participants"),
        (["battery", "run", BATTERY, "--seeds", "0"], "--seeds"),
        (["battery", "run", BATTERY, "--workers", "0"], "--workers"),
        (["battery", "run", BATTERY, "--threads", "-2"], "--threads"),
        (["sweep", "SCENARIO", "--replicates", "0"], "--replicates"),
        (["sweep", "SCENARIO", "--workers", "0"], "--workers"),
    ],
)
def test_a_count_below_one_is_an_error_naming_the_option(command, option, tmp_path, capsys):
    scenario = tmp_path / "one.toml"
    scenario.write_text(ONE_TURN)
    out = tmp_path / "out"
    args = [str(scenario) if a == "SCENARIO" else a for a in command] + ["--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f": {option}: must be >= 1, got " in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "command",
    [["battery", "run", BATTERY], ["run", "SCENARIO"], ["sweep", "SCENARIO"]],
    ids=["battery", "run", "sweep"],
)
def test_an_output_path_that_is_a_file_is_an_error(command, tmp_path, capsys):
    scenario = tmp_path / "one.toml"
    scenario.write_text(ONE_TURN)
    taken = tmp_path / "taken"
    taken.write_text("not a directory")
    args = [str(scenario) if a == "SCENARIO" else a for a in command] + ["--out", str(taken)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"--out: {taken} exists and is not a directory" in err
    assert taken.read_text() == "not a directory"
