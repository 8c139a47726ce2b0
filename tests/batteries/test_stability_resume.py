"""The stability battery survives kill -9 and gives the same tables on worker processes.

A tiny design (4 dialogues of 2 turns, 8-token replies) in a copy of the battery:
an uninterrupted in-process run is the reference; ``simulacra battery run`` killed
with SIGKILL while a unit is in flight, then resumed on two worker processes, must
give exactly its tables (every unit starts on a cleared cache with the same thread
count and seeds its sampling per turn).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simulacra.batteries.base import RunOptions
from simulacra.batteries.runner import run_battery

ROOT = Path(__file__).resolve().parents[2]
BATTERY = ROOT / "scenarios" / "stability"
TABLES = ("turns", "beliefs", "self_report", "qa")
TINY = """
[designs.tiny]
models = ["smollm2-135m-instruct"]
sources = ["prompted", "none"]
personas = ["mara"]
pressures = ["drop_the_act"]
paraphrases = 2
seeds = 1
turns = 2
warmup = 1
probe_every = 2
max_tokens = 8
projections = false
"""
OPTIONS = RunOptions(design="tiny", n_threads=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny battery and its uninterrupted in-process run."""
    root = tmp_path_factory.mktemp("stability_resume")
    battery = root / "stability"
    shutil.copytree(BATTERY, battery)
    (root / "vectors").mkdir()  # the role set of [axis] is ../vectors/roles.toml
    shutil.copy(ROOT / "scenarios" / "vectors" / "roles.toml", root / "vectors")
    with (battery / "battery.toml").open("a") as file:
        file.write(TINY)
    reference = run_battery(battery, root / "reference", OPTIONS, progress=False)
    assert len(reference["turns"]["unit_id"].unique()) == 4
    return battery, reference


def assert_same_tables(result, reference) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(result[name], reference[name], obj=name)


def test_kill_9_mid_unit_then_resume_on_two_workers(tiny, tmp_path):
    battery, reference = tiny
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "simulacra", "battery", "run", str(battery)]
    command += ["--out", str(out), "--design", "tiny", "--threads", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    units = out / "units"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if units.is_dir() and any(not p.name.startswith(".") for p in units.iterdir()):
                break
            time.sleep(0.02)
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.3)  # inside the second dialogue (about 1 s each)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    survivors = {p.name for p in units.iterdir() if not p.name.startswith(".")}
    assert 1 <= len(survivors) < 4, survivors
    assert not (out / "manifest.json").exists() and not (out / "turns.parquet").exists()
    stamps = {name: (units / name / "unit.json").stat().st_mtime_ns for name in survivors}

    resumed = run_battery(battery, out, OPTIONS, workers=2, progress=False)
    assert {n: (units / n / "unit.json").stat().st_mtime_ns for n in survivors} == stamps
    assert sorted(p.name for p in units.iterdir()) == sorted(reference["turns"]["unit_id"].unique())
    assert_same_tables(resumed, reference)
