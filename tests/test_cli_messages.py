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
