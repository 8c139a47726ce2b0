"""An effect file's ``[intervention]``: capping or steering, on any effect, checked and applied.

No model: the table on an ML1 effect (the lever is general), every mistake located
(exit 2 from the command line, no traceback), the specs checked when the battery is
loaded, and :func:`applied` putting the settings in force on a recording engine.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from simulacra.batteries.replication import load
from simulacra.batteries.replication.intervention import Prepared, applied, describe_rows
from simulacra.cli import main
from simulacra.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
ML1 = ROOT / "scenarios" / "replication" / "many_labs_1"
PARTISAN = ROOT / "scenarios" / "vectors" / "partisan.toml"
EFFECT = "sunk_costs"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "ml1"
    shutil.copytree(ML1, target)
    shutil.copy(PARTISAN, tmp_path / "partisan.toml")
    return target


def append(directory: Path, text: str) -> Path:
    path = directory / "effects" / f"{EFFECT}.toml"
    path.write_text(path.read_text() + "\n" + text)
    return path


def issues_of(directory: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(ScenarioError) as info:
        load(directory)
    return [(Path(i.source).name, i.path, i.message) for i in info.value.issues]


def test_an_ml1_effect_takes_a_cap_and_a_steer(copy):
    append(
        copy,
        """
[intervention.cap]
vector = "../../partisan.toml"
blocks = [8, 12]
band = [-1.5, 2.0]
[intervention.steer]
vector = "../../partisan.toml"
coefficient = -0.5
blocks = [10, 12]
""",
    )
    battery = load(copy)
    lever = battery.effect(EFFECT).intervention
    assert lever is not None and lever.label == "capped_steered"
    assert lever.cap.spec == (copy.parent / "partisan.toml").resolve()
    assert lever.cap.blocks == (8, 12) and lever.cap.band == (-1.5, 2.0)
    assert lever.steer.coefficient == -0.5 and lever.steer.blocks == (10, 12)
    assert lever.text() == "cap partisan@8,12 band [-1.5, 2.0]; steer partisan@10-12 x -0.5"
    others = [e for e in battery.effects if e.name != EFFECT]
    assert all(e.intervention is None for e in others)


def test_every_intervention_mistake_is_located(copy, capsys):
    append(
        copy,
        """
[intervention]
strength = 2
[intervention.cap]
vector = "../../partisan.toml"
blocks = [0, 8]
band = "middle"
[intervention.steer]
vector = "../../partisan.toml"
coefficient = "strong"
blocks = [12, 10]
""",
    )
    found = issues_of(copy)
    where = {path: message for _, path, message in found}
    assert set(where) == {
        "intervention.strength",
        "intervention.cap.blocks[0]",
        "intervention.cap.band",
        "intervention.steer.coefficient",
        "intervention.steer.blocks",
    }, found
    assert all(source == f"{EFFECT}.toml" for source, _, _ in found)
    assert ">= 1" in where["intervention.cap.blocks[0]"]
    assert "neutral" in where["intervention.cap.band"]
    assert "low <= high" in where["intervention.steer.blocks"]
    assert main(["battery", "validate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "intervention.cap.band" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("table", "where", "message"),
    [
        ("[intervention]\n", "intervention", "[intervention.cap], [intervention.steer]"),
        (
            '[intervention.cap]\nvector = "../../partisan.toml"\nblocks = [8]\nband = [2.0, 1.0]\n',
            "intervention.cap.band",
            "low <= high",
        ),
        (
            '[intervention.steer]\nvector = "../../partisan.toml"\ncoefficient = nan\n'
            "blocks = [8, 8]\n",
            "intervention.steer.coefficient",
            "finite",
        ),
        (
            '[intervention.steer]\nvector = "../../partisan.toml"\ncoefficient = 1.0\n'
            "blocks = [0, 8]\n",
            "intervention.steer.blocks[0]",
            "block 0 cannot be steered",
        ),
        (
            '[intervention.cap]\nvector = "../../nothing.toml"\nblocks = [8]\n',
            "intervention.cap.vector",
            "file not found",
        ),
        (
            '[intervention.cap]\nvector = "../../partisan.toml"\nblocks = [8, 9]\n',
            "intervention.cap.blocks",
            "blocks [9] are not among the vector's layers [6, 8, 10, 12, 14]",
        ),
        (
            '[intervention.steer]\nvector = "../../partisan.toml"\ncoefficient = 1.0\n'
            "blocks = [15, 17]\n",
            "intervention.steer.blocks",
            "holds none of the vector's layers",
        ),
        (
            '[intervention.cap]\nvector = "../population.toml"\nblocks = [8]\n',
            "intervention.cap.vector",
            "not a valid extraction spec",
        ),
    ],
)
def test_one_intervention_mistake_names_file_field_and_expectation(copy, table, where, message):
    append(copy, table)
    ((source, path, text),) = issues_of(copy)
    assert (source, path) == (f"{EFFECT}.toml", where)
    assert message in text


class Recording:
    """An engine stand-in that records the settings entered."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @contextlib.contextmanager
    def steering(self, vector, coefficient, *, layers):
        self.calls.append(("steer", vector, coefficient, layers))
        yield

    @contextlib.contextmanager
    def capping(self, vector, low, high, *, layers):
        self.calls.append(("cap", vector, low, high, layers))
        yield
        self.calls.append(("uncap",))


def test_applied_steers_then_caps_each_block_into_its_own_band(copy):
    append(
        copy,
        '[intervention.cap]\nvector = "../../partisan.toml"\nblocks = [8, 12]\n'
        '[intervention.steer]\nvector = "../../partisan.toml"\ncoefficient = 2.0\n'
        "blocks = [10, 12]\n",
    )
    lever = load(copy).effect(EFFECT).intervention
    bands = {8: (-1.0, 1.0), 12: (-3.0, 4.0)}
    prepared = Prepared(lever, "cap-vector", "steer-vector", bands, {"cap": "p.gguf"})
    engine = Recording()
    with applied(engine, prepared):
        assert engine.calls == [
            ("steer", "steer-vector", 2.0, (10, 12)),
            ("cap", "cap-vector", {8: -1.0, 12: -3.0}, {8: 1.0, 12: 4.0}, [8, 12]),
        ]
    assert engine.calls[-1] == ("uncap",)
    with applied(engine, None):
        assert len(engine.calls) == 3  # nothing entered


def test_the_interventions_table_has_a_row_per_capped_block_and_per_steering(copy):
    append(
        copy,
        '[intervention.cap]\nvector = "../../partisan.toml"\nblocks = [8, 12]\n'
        '[intervention.steer]\nvector = "../../partisan.toml"\ncoefficient = 2.0\n'
        "blocks = [10, 12]\n",
    )
    lever = load(copy).effect(EFFECT).intervention

    class Vector:
        sha256 = "a" * 64

    bands = {8: (-1.0, 1.0), 12: (-3.0, 4.0)}
    rows = describe_rows(EFFECT, Prepared(lever, Vector(), Vector(), bands, {"cap": "p.gguf"}))
    assert [(r["action"], r["block"], r["block_end"], r["low"]) for r in rows][:2] == [
        ("cap", 8, 8, -1.0),
        ("cap", 12, 12, -3.0),
    ]
    assert rows[2]["action"] == "steer" and rows[2]["coefficient"] == 2.0
    assert {r["lever"] for r in rows} == {"capped_steered"} and rows[0]["band"] == "neutral"
    assert rows[0]["vector_file"] == "p.gguf" and rows[0]["spec"] == "partisan.toml"
