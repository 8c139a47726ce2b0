"""The command line: exit codes, error messages, no tracebacks, run directories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulacra.cli import main

HERE = Path(__file__).parent
MALFORMED = sorted((HERE / "scenarios" / "malformed").glob("*.toml"))
CORE = HERE / "scenarios" / "core.toml"


def expected_message(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path} has no '# expect:' header")


def test_the_malformed_corpus_is_large():
    assert len(MALFORMED) >= 25


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_validate_rejects_each_malformed_file(path, capsys):
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected_message(path) in err
    assert path.name in err
    assert "Traceback" not in err


@pytest.mark.parametrize("path", MALFORMED[:5], ids=lambda p: p.stem)
def test_run_rejects_malformed_files_before_loading_a_model(path, capsys, tmp_path):
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert expected_message(path) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_validate_accepts_the_shipped_scenarios(capsys):
    shipped = sorted((HERE.parent / "scenarios").glob("*.toml"))
    assert main(["validate", *map(str, shipped)]) == 0
    assert capsys.readouterr().out.count(": ok") == len(shipped)


def test_bad_override_is_reported_with_its_origin(capsys):
    assert main(["validate", str(CORE), "--set", "dialogue.turns=0"]) == 2
    err = capsys.readouterr().err
    assert "dialogue.turns" in err and "--set dialogue.turns=0" in err


def test_a_real_process_prints_no_traceback():
    bad = MALFORMED[0]
    proc = subprocess.run(
        [sys.executable, "-m", "simulacra", "validate", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and expected_message(bad) in proc.stderr


def test_missing_scenario_file(capsys, tmp_path):
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_run_writes_a_run_directory(tmp_path, capsys, engine):
    out = tmp_path / "run"
    args = ["run", str(CORE), "--out", str(out), "--set", "dialogue.turns=2"]
    args += ["--set", "probes[0].turns=[0]"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "turn   1/2" in captured.err and "actor (as pirate)" in captured.err
    # the turn-0 probes are announced before they run (no silent start)
    assert "turn 0: asking 1 probe(s) before the first utterance" in captured.err
    assert captured.err.index("turn 0: asking") < captured.err.index("turn   1/2")
    assert "normalised entropy" in captured.out
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json", "transcript.parquet", "beliefs.parquet", "agents.parquet"} <= names
    assert main(args) == 2, "an existing --out is refused"
    assert "already exists" in capsys.readouterr().err


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct (default)" in out and "sha256" in out
