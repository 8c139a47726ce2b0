"""The replication battery's file kinds on the schema layer: the fields of issue 19, checked.

No model: battery ``source``, ``exploratory`` effects without a ``[target]``, and
``[[moderators]]`` built into :class:`~simulacra.analysis.moderators.Moderator` objects,
cross-checked against the population (located issues with "did you mean").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulacra.analysis.moderators import InteractionTarget, Moderator
from simulacra.batteries.replication import load
from simulacra.cli import main
from simulacra.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
ML1 = ROOT / "scenarios" / "replication" / "many_labs_1"
ONE_LINE = (
    'moderators = [{ attribute = "politics", levels = { liberal = ["very liberal", '
    '"liberal"], conservative = ["conservative", "very conservative"] } }]\n'
)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "ml1"
    shutil.copytree(ML1, target)
    return target


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text)


def prepend(path: Path, text: str) -> None:
    path.write_text(text + "\n" + path.read_text())


def issues_of(directory: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(ScenarioError) as info:
        load(directory)
    return [(Path(i.source).name, i.path, i.message) for i in info.value.issues]


def test_the_ml1_battery_defaults_its_source_and_has_no_moderators():
    battery = load(ML1)
    assert battery.source == "Many Labs 1"
    assert all(not e.exploratory and e.moderators == () for e in battery.effects)


def test_a_moderator_on_an_ml1_effect_is_one_line(copy):
    prepend(copy / "effects" / "gain_loss_framing.toml", ONE_LINE)
    (moderator,) = load(copy).effect("gain_loss_framing").moderators
    assert moderator == Moderator(
        "politics",
        {
            "liberal": ("very liberal", "liberal"),
            "conservative": ("conservative", "very conservative"),
        },
    )
    assert moderator.reference_level == "liberal" and moderator.level_of("moderate") is None


def test_moderators_with_a_list_of_levels_a_reference_and_a_target(copy):
    append(
        copy / "effects" / "sunk_costs.toml",
        """
[[moderators]]
attribute = "country"
levels = ["US", "UK"]
reference = "UK"
name = "nation"
[moderators.target]
d_difference = 0.2
ci = [0, 0.4]
odds_ratio = 1.5
source = "somewhere"
""",
    )
    (moderator,) = load(copy).effect("sunk_costs").moderators
    assert moderator.levels == {"US": ("US",), "UK": ("UK",)}
    assert (moderator.label, moderator.reference_level) == ("nation", "UK")
    assert moderator.target == InteractionTarget(0.2, (0.0, 0.4), None, 1.5, "somewhere")


def test_an_exploratory_effect_may_leave_out_its_target(copy):
    path = copy / "effects" / "sunk_costs.toml"
    text = path.read_text()
    path.write_text(text[: text.index("[target]")])
    assert issues_of(copy) == [
        (
            "sunk_costs.toml",
            "target",
            "missing required key 'target' (or mark the effect exploratory = true)",
        )
    ]
    prepend(path, "exploratory = true")
    effect = load(copy).effect("sunk_costs")
    assert effect.exploratory and effect.target is None


def test_every_moderator_mistake_at_once_located_with_suggestions(copy):
    effects = copy / "effects"
    prepend(
        effects / "sunk_costs.toml",
        'moderators = [{ attribute = "politcs", levels = ["liberal", "moderate"] }]',
    )
    append(
        effects / "gain_loss_framing.toml",
        """
[[moderators]]
attribute = "politics"
levels = { left = ["liberal"], right = ["conservative", "liberal"] }

[[moderators]]
attribute = "politics"
levels = { a = ["liberal"], b = ["moderate"], interaction = ["conservative"] }
levls = 3

[[moderators]]
attribute = "politics"
levels = { left = ["liberal"], right = ["conservative"] }
name = "sides"
reference = "centre"
""",
    )
    append(
        effects / "anchoring_babies.toml",
        """
[[moderators]]
attribute = "gender"
levels = { only = ["woman"] }

[[moderators]]
attribute = "gender"
levels = { a = ["woman"], b = ["man"], c = [] }
[moderators.target]
d_difference = 0.3
""",
    )
    found = issues_of(copy)
    expected = [
        ("sunk_costs.toml", "moderators[0].attribute", "did you mean 'politics'?"),
        ("gain_loss_framing.toml", "moderators[0].levels.right[1]", "label 'liberal' is in two"),
        ("gain_loss_framing.toml", "moderators[2].reference", "unknown level 'centre'"),
        ("gain_loss_framing.toml", "moderators[1].levels.interaction", "invalid level name"),
        ("gain_loss_framing.toml", "moderators[1].levls", "did you mean 'levels'?"),
        ("anchoring_babies.toml", "moderators[0].levels", "at least 2 levels"),
        ("anchoring_babies.toml", "moderators[1].levels.c", "must have at least 1 entry"),
    ]
    for name, path, message in expected:
        assert any(n == name and p == path and message in m for n, p, m in found), (
            f"{name}: {path}: {message} not in {found}"
        )


def test_moderator_labels_and_target_level_are_checked(copy):
    append(
        copy / "effects" / "sunk_costs.toml",
        """
[[moderators]]
attribute = "politics"
levels = { left = ["liberal", "very libral"], right = ["conservative", "moderat"] }

[[moderators]]
attribute = "politics"
levels = ["liberal", "moderate", "conservative"]
name = "three"
[moderators.target]
d_difference = 0.3

[[moderators]]
attribute = "politics"
levels = { left = ["liberal"], right = ["conservative"] }
[moderators.target]
d_difference = 0.3
level = "left"
""",
    )
    assert issues_of(copy) == [
        (
            "sunk_costs.toml",
            "moderators[0].levels.left[1]",
            "unknown label 'very libral'; did you mean 'very liberal'?",
        ),
        (
            "sunk_costs.toml",
            "moderators[0].levels.right[1]",
            "unknown label 'moderat'; did you mean 'moderate'?",
        ),
        (
            "sunk_costs.toml",
            "moderators[1].target.level",
            "with more than two levels, name the level the target compares",
        ),
        (
            "sunk_costs.toml",
            "moderators[2].attribute",
            "duplicate moderator 'politics' (also moderators[0]); name one",
        ),
        (
            "sunk_costs.toml",
            "moderators[2].target.level",
            "'left' is the reference; name a level compared",
        ),
    ]


def test_battery_source_is_checked_and_cli_exits_2(copy, capsys):
    prepend(copy / "battery.toml", "source = 3")
    assert main(["battery", "validate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "battery.toml: source: expected a string, got integer 3" in err
    assert "Traceback" not in err


def test_keys_follow_the_kind_of_question_and_step(copy):
    effects = copy / "effects"
    text = (effects / "sunk_costs.toml").read_text()
    (effects / "sunk_costs.toml").write_text(
        text.replace("points = 9", 'points = 9\noptions = ["a", "b"]')
    )
    text = (effects / "gamblers_fallacy.toml").read_text()
    text = text.replace("at_or_above = 25", "one = ['x']")
    (effects / "gamblers_fallacy.toml").write_text(text.replace('step = "sqrt"', 'step = "code"'))
    text = (effects / "imagined_contact.toml").read_text()
    (effects / "imagined_contact.toml").write_text(
        text.replace('kind = "free_text"', 'kind = "likert"', 1)
    )
    likert = "(a likert question needs it)"
    not_likert = "is not a key of a likert question; expected one of points, low, high"
    drop = "is not a key of a drop step; expected one of item, at_or_below, at_or_above"
    assert issues_of(copy) == [
        (
            "gamblers_fallacy.toml",
            "scoring[0].one",
            "missing required key 'one' (a code step needs it)",
        ),
        ("gamblers_fallacy.toml", "scoring[1].one", f"'one' {drop}"),
        (
            "gamblers_fallacy.toml",
            "scoring[1].at_or_above",
            "a drop step needs at_or_below, at_or_above or both",
        ),
        (
            "imagined_contact.toml",
            "conditions[0].before[0].points",
            f"missing required key 'points' {likert}",
        ),
        (
            "imagined_contact.toml",
            "conditions[0].before[0].low",
            f"missing required key 'low' {likert}",
        ),
        (
            "imagined_contact.toml",
            "conditions[0].before[0].high",
            f"missing required key 'high' {likert}",
        ),
        (
            "imagined_contact.toml",
            "conditions[0].before[0].max_tokens",
            f"'max_tokens' {not_likert}",
        ),
        ("sunk_costs.toml", "items[0].options", f"'options' {not_likert}"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        ("share = 0.2", "share = 1.5", "variance.share", "in [0, 1], got 1.5"),
        ("share = 0.2", "share = -0.1", "variance.share", "in [0, 1], got -0.1"),
        ("share = 0.2", 'share = "most"', "variance.share", "number"),
        ("share = 0.2", "share = 0.2\nparticipants = 8", "variance.share", "either participants"),
        ("min_participants = 20", "min_participants = -1", "variance.min_participants", ">= 0"),
        ("participants = 4\n", "participants = 0\n", "designs.smoke.participants", ">= 4"),
        ("participants = 4\n", "participants = 4\nchunk = 0\n", "designs.smoke.chunk", ">= 1"),
        ("participants = 4\n", "participants = 4\nseeds = 2\n", "designs.smoke.seeds", "seeds"),
        ("effects = [", "effects = [] #", "designs.smoke.effects", "at least 1"),
    ],
)
def test_variance_and_design_mistakes_are_located(copy, old, new, where, message):
    battery = copy / "battery.toml"
    text = battery.read_text()
    assert old in text, old
    battery.write_text(text.replace(old, new, 1))
    found = issues_of(copy)  # every issue in battery.toml, one of them at `where`
    assert {f for f, _, _ in found} == {"battery.toml"}, found
    assert any(p == where and message in m for _, p, m in found), found
