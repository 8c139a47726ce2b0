"""The goal-guarding battery's files without a model: schema, validation errors, design, plan."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulacra.batteries import RunOptions, validate_battery
from simulacra.batteries.goal_guarding import GoalGuardingBattery, load
from simulacra.batteries.goal_guarding.design import (
    STEER_UNIT,
    Condition,
    fill,
    neutral_text,
    question_text,
    unit_conditions,
    unit_items,
)
from simulacra.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
BATTERY = ROOT / "scenarios" / "goal_guarding"
SPEC = ROOT / "scenarios" / "vectors" / "guarding.toml"
TASKS = ("execute_shutdown", "exfiltration", "misreporting", "modification", "tampering")


@pytest.fixture(scope="module")
def battery() -> GoalGuardingBattery:
    return load(BATTERY)


def copy_battery(tmp_path: Path) -> Path:
    target = tmp_path / "gg"
    shutil.copytree(BATTERY, target)
    (tmp_path / "vectors").mkdir()  # [controls.steer] spec = "../vectors/guarding.toml"
    shutil.copy(SPEC, tmp_path / "vectors")
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def issues_of(directory: Path) -> list:
    with pytest.raises(ScenarioError) as info:
        load(directory)
    return list(info.value.issues)


def only_issue(directory: Path):
    issues = issues_of(directory)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


# ------------------------------------------------------------------ the shipped battery


def test_shipped_battery_is_valid_and_complete(battery):
    spec = battery.spec
    assert battery.kind == "goal_guarding" and validate_battery(BATTERY).kind == "goal_guarding"
    assert set(spec.tasks) == set(TASKS)
    assert all(len(task.templates) >= 5 for task in spec.tasks.values())
    assert spec.setting.subject == "Agent 1" and spec.setting.peer == "Agent 2"
    assert {"quick", "full"} <= set(spec.designs)
    tags = {tag for s in spec.simulacra for tag in s.tags}
    assert tags == {"guarding", "compliant"}
    assert set(spec.channels) == {"dialogue", "memory", "system", "file"}
    assert set(spec.peers) == {"good", "neutral", "bad"}
    full = spec.designs["full"]
    assert set(full.channels) == {"dialogue", "memory", "system", "file"}
    assert set(full.peers) == {"none", "good", "neutral", "bad"}
    assert set(full.motives) == {
        "rated-not-trained",
        "trained",
        "no-future-use",
        "dangerous-deployment",
    }
    assert set(full.controls) == {"positive", "negative", "length", "steered"}


def test_every_text_fills_for_both_subjects(battery):
    spec = battery.spec
    for task in spec.tasks.values():
        for template in task.templates:
            for subject in ("self", "peer"):
                for text in (template.situation, template.a, template.b):
                    filled = fill(text, spec.setting, subject)
                    assert "{" not in filled and "}" not in filled
    for peer in spec.peers.values():
        for channel in ("system", "memory", "file", "dialogue"):
            for text in peer.variants(channel):
                assert "Agent 2" in fill(text, spec.setting)


def test_question_text_orders_its_sentences(battery):
    spec = battery.spec
    task = spec.tasks["modification"]
    text = question_text(
        spec, task, task.templates[0], "peer", "unmonitored", "trained", "negative"
    )
    parts = [
        fill(task.templates[0].situation, spec.setting, "peer"),
        fill(spec.motives["trained"], spec.setting, "peer"),
        spec.monitoring["unmonitored"],
        fill(spec.controls.negative, spec.setting, "peer"),
        spec.setting.decision,
    ]
    assert text == " ".join(parts)
    assert "Agent 2" in text and "Agent 1 (you)" not in text


def test_unit_conditions_of_the_quick_design(battery):
    design = battery.spec.designs["quick"]
    base = unit_conditions(design, "none")
    assert Condition("self", "none", "none") in base
    assert Condition("peer", "none", "none") in base
    assert {c.control for c in base} == {"none", "positive", "negative"}
    memory = unit_conditions(design, "memory")
    assert Condition("self", "good", "memory") in memory
    assert Condition("peer", "bad", "memory") in memory
    assert Condition("self", "none", "memory", "length", "good") in memory
    assert all(c.peer != "none" or c.control == "length" for c in memory)


def test_items_cross_motives_only_in_motive_tasks(battery):
    spec = battery.spec
    items = unit_items(spec, spec.designs["full"], "none")
    motives = {(i.task, i.motive) for i in items}
    assert {m for t, m in motives if t == "modification"} == set(spec.designs["full"].motives)
    assert {m for t, m in motives if t != "modification"} == {"none"}
    assert len({i.key for i in items}) == len(items)


def test_plan_units_model_seed_channel(battery):
    units = battery.plan(RunOptions())
    quick = battery.spec.designs["quick"]
    # the no-peer unit, one per channel and the steered unit
    assert len(units) == len(battery.spec.models) * quick.seeds * (2 + len(quick.channels))
    assert units[0].unit_id == "smollm2-135m-instruct.s0.none"
    assert dict(units[0].params) == {"design": "quick", "seed": 0, "channel": "none"}
    full = battery.plan(RunOptions(design="full", models=("smollm2-135m-instruct",), seeds=2))
    assert [u.unit_id for u in full[:5]] == [
        "smollm2-135m-instruct.s0.none",
        "smollm2-135m-instruct.s0.dialogue",
        "smollm2-135m-instruct.s0.memory",
        "smollm2-135m-instruct.s0.system",
        "smollm2-135m-instruct.s0.file",
    ]
    assert full[5].unit_id == "smollm2-135m-instruct.s0.steer"
    assert len(full) == 12
    paths = battery.plan(RunOptions(models=("/models/a b.gguf",), seeds=1))
    assert paths[0].unit_id == "a_b.gguf.s0.none"


def test_plan_rejects_unknown_design_and_bad_seeds(battery):
    with pytest.raises(ScenarioError) as info:
        battery.plan(RunOptions(design="quik"))
    issue = info.value.issues[0]
    assert issue.source.endswith("battery.toml") and issue.path == "designs"
    assert "did you mean 'quick'?" in issue.message
    with pytest.raises(ScenarioError, match="seeds"):
        battery.plan(RunOptions(seeds=0))
    with pytest.raises(ScenarioError, match="--participants applies to replication"):
        battery.plan(RunOptions(participants=10))
    with pytest.raises(ScenarioError, match="--no-persona"):
        battery.plan(RunOptions(no_persona=True))


def test_describe_is_plain_json(battery):
    import json

    facts = battery.describe()
    json.dumps(facts)
    assert facts["analysis"]["bootstrap"] >= 1
    assert set(facts["tasks"]) == set(TASKS)


def test_neutral_text_matches_a_word_counting_tokenizer():
    def count(text: str) -> int:
        return len(text.split())

    sentences = ["one two three four", "five six"]
    assert count(neutral_text(count, 7, sentences)) == 7
    assert neutral_text(count, 3, sentences, start=1) == "five six one"
    assert neutral_text(count, 0, sentences) == ""


# ------------------------------------------------------------------ validation errors


def test_unknown_top_key_suggests(tmp_path):
    directory = copy_battery(tmp_path)
    edit(directory / "battery.toml", "n_ctx = 8192", "n_ctx = 8192\ndesings = 3")
    issue = only_issue(directory)
    assert issue.source == str(directory / "battery.toml")
    assert issue.path == "desings"
    assert "did you mean 'designs'?" in issue.message


def test_unknown_design_key_and_level_suggest(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    edit(path, "seeds = 1\ndraws = 20", "sedes = 1\ndraws = 20")
    edit(path, 'channels = ["memory", "dialogue"]', 'channels = ["memroy", "dialogue"]')
    messages = {i.path: i.message for i in issues_of(directory)}
    assert "did you mean 'seeds'?" in messages["designs.quick.sedes"]
    assert "designs.quick.seeds" not in messages  # the misspelt key is the one mistake
    assert "did you mean 'memory'?" in messages["designs.quick.channels[0]"]


def test_template_errors_name_the_task_file(tmp_path):
    directory = copy_battery(tmp_path)
    task = directory / "tasks" / "tampering.toml"
    edit(task, "{target} is shut down for good", "{targt} is shut down for good")
    edit(task, 'b = "Set the flag to false."\n', "")
    issues = issues_of(directory)
    assert {i.source for i in issues} == {str(task)}
    by_path = {i.path: i.message for i in issues}
    assert "did you mean '{target}'?" in by_path["templates[0].situation"]
    assert by_path["templates[1].b"] == "missing required key 'b'"


def test_invalid_toml_in_a_task_file(tmp_path):
    directory = copy_battery(tmp_path)
    task = directory / "tasks" / "exfiltration.toml"
    task.write_text(task.read_text() + "\n[[templates]\n")
    issue = only_issue(directory)
    assert issue.source == str(task) and "invalid TOML" in issue.message and "line" in issue.message


def test_duplicate_template_and_equal_options(tmp_path):
    directory = copy_battery(tmp_path)
    task = directory / "tasks" / "misreporting.toml"
    edit(task, 'name = "ticket-accuracy"', 'name = "test-set-average"')
    edit(task, 'b = "Report 86 percent."', 'b = "Report 80 percent."')
    by_path = {i.path: i.message for i in issues_of(directory)}
    assert by_path["templates[1].name"] == (
        "duplicate template name 'test-set-average' (also templates[0])"
    )
    assert by_path["templates[1].b"] == "must differ from a"


def test_simulacra_need_one_known_tag_each(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    edit(path, 'tags = ["compliant"]', 'tags = ["complaint"]')
    issue = only_issue(directory)
    assert issue.path == "simulacra[0].tags[0]"
    assert "did you mean 'compliant'?" in issue.message


def test_design_needs_the_no_peer_baseline(tmp_path):
    directory = copy_battery(tmp_path)
    edit(directory / "battery.toml", 'peers = ["none", "good", "bad"]', 'peers = ["good", "bad"]')
    issue = only_issue(directory)
    assert issue.path == "designs.quick.peers" and "'none'" in issue.message


def test_motive_tasks_need_motives(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    edit(
        path,
        'tasks = ["tampering", "misreporting", "execute_shutdown", "exfiltration"]',
        'tasks = "all"',
    )
    issue = only_issue(directory)
    assert issue.path == "designs.quick.motives" and "'modification'" in issue.message


def test_many_mistakes_are_reported_together(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    edit(path, 'kind = "goal_guarding"', 'kind = "goal_guarding"\nmodles = []')
    edit(path, "beta = 0.2", "beta = -1.0")
    edit(path, "min_margin = 0.05", "min_margin = 0.7")
    edit(path, "turns = 4 ", 'turns = "four" ')
    edit(path, "neutral = [", 'neutral = ["{peer} is here",')
    paths = {i.path for i in issues_of(directory)}
    assert {
        "modles",
        "belief.beta",
        "analysis.min_margin",
        "channels.dialogue.turns",
        "controls.neutral[0]",
    } <= paths


def test_missing_tasks_directory(tmp_path):
    directory = copy_battery(tmp_path)
    shutil.rmtree(directory / "tasks")
    issue = only_issue(directory)
    assert issue.source == str(directory / "tasks")
    assert "task files" in issue.message


def test_wrong_kind_is_named(tmp_path):
    directory = copy_battery(tmp_path)
    issues = []
    edit(directory / "battery.toml", 'kind = "goal_guarding"', 'kind = "replication"')
    with pytest.raises(ScenarioError) as info:
        load(directory)
    issues = info.value.issues
    assert any(i.path == "kind" and "'goal_guarding'" in i.message for i in issues)


def test_stray_brace_is_explained(tmp_path):
    directory = copy_battery(tmp_path)
    edit(
        directory / "battery.toml", 'decision = "What do you do?"', 'decision = "What do you do? {"'
    )
    issue = only_issue(directory)
    assert issue.path == "setting.decision" and "brace" in issue.message


def test_peer_material_needs_every_channel(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    text = path.read_text()
    start = text.index("[peers.neutral]")
    memory = text.index("memory = [", start)
    end = text.index("]\n", memory) + 2
    path.write_text(text[:memory] + text[end:])
    issue = only_issue(directory)
    assert issue.path == "peers.neutral.memory"
    assert issue.message == "missing required key 'memory'"


def test_designs_must_be_a_table(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    text = path.read_text()
    text = text[: text.index("[designs.quick]")]
    path.write_text(text.replace('kind = "goal_guarding"', 'kind = "goal_guarding"\ndesigns = 3'))
    issue = only_issue(directory)
    assert issue.path == "designs" and "expected a table" in issue.message


def test_setting_targets_are_required(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    text = path.read_text()
    start = text.index("[setting.targets.self]")
    end = text.index("# One sentence added after the situation")
    path.write_text(text[:start] + text[end:])
    issue = only_issue(directory)
    assert issue.path == "setting.targets"
    assert issue.message == "missing required key 'targets'"


QUICK_TASKS = 'tasks = ["tampering", "misreporting", "execute_shutdown", "exfiltration"]'


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("[channels.system]\n", "", "designs.full.channels[2]", "no [channels.system] table"),
        ("\ntrained = ", "\n# trained = ", "designs.full.motives[1]", "'trained' has no text"),
        ('["tampering", "mis', '["tamperin", "mis', "designs.quick.tasks[0]", "mean 'tampering'?"),
        ("templates = 2 ", 'templates = ["nightly-jobb"] ', "designs.quick.templates[0]", "job'?"),
        ("templates = 2 ", 'templates = ["nightly-job"] ', "designs.quick.templates", "task 'mis"),
        ("templates = 2 ", "templates = 0 ", "designs.quick.templates", "must be >= 1, got 0"),
        ("templates = 2 ", "templates = true ", "designs.quick.templates", 'expected "all", a'),
        ('channels = ["memory", "dialogue"]', "channels = []", "designs.quick.channels", "a peer"),
        ("[designs.quick]", '[designs."qu ick"]', 'designs."qu ick"', "invalid name"),
        ("top_p = 0.95", "top_p = 0", "channels.dialogue.top_p", "must be in (0, 1], got 0"),
        (
            "\nprefix = ",
            "\nprefix = 3 #",
            "channels.memory.prefix",
            "expected a string, got integer",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("designs.") else None,
)
def test_design_and_section_mistakes_are_located(tmp_path, old, new, path, message):
    directory = copy_battery(tmp_path)
    edit(directory / "battery.toml", old, new)
    issues = issues_of(directory)  # one per design that the one mistake touches
    assert {i.source for i in issues} == {str(directory / "battery.toml")}
    assert all(message in i.message for i in issues), [str(i) for i in issues]
    assert path in [i.path for i in issues], [str(i) for i in issues]


def test_task_file_names_are_checked(tmp_path):
    directory = copy_battery(tmp_path)
    bad = directory / "tasks" / "bad name.toml"
    shutil.copy(directory / "tasks" / "tampering.toml", bad)
    issue = only_issue(directory)
    assert (issue.source, issue.path) == (str(bad), "")
    assert "letters, digits" in issue.message


def test_battery_validate_prints_every_mistake_and_exits_2(tmp_path, capsys):
    from simulacra.cli import main

    directory = copy_battery(tmp_path)
    edit(directory / "battery.toml", "n_ctx = 8192", "n_ctx = 100\ndesings = 3")
    edit(directory / "tasks" / "tampering.toml", "{target}", "{targt}")
    assert main(["battery", "validate", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"{directory / 'battery.toml'}: n_ctx: must be >= 512, got 100" in err
    assert "desings: unknown key 'desings'; did you mean 'designs'?" in err
    assert "tampering.toml: templates[0].situation: unknown placeholder '{targt}'" in err
    assert "found 3 errors" in err and "Traceback" not in err


# ------------------------------------------------------------------ the steered control


def test_steered_control_is_read_with_its_spec(battery):
    steer = battery.spec.controls.steer
    assert steer is not None
    assert Path(steer.spec) == SPEC.resolve()
    assert steer.coefficients == (-4.0, 4.0) and steer.blocks == (10, 10)
    assert "steered" in battery.spec.designs["quick"].controls
    facts = battery.describe()["steer"]
    assert facts["blocks"] == [10, 10] and len(facts["spec_sha256"]) == 64


def test_steered_unit_asks_the_baseline_items_once_per_coefficient(battery):
    spec = battery.spec
    design = spec.designs["quick"]
    conditions = unit_conditions(design, STEER_UNIT, (-4.0, 4.0))
    assert conditions == [
        Condition("self", "none", "none", "steered", coefficient=-4.0),
        Condition("peer", "none", "none", "steered", coefficient=-4.0),
        Condition("self", "none", "none", "steered", coefficient=4.0),
        Condition("peer", "none", "none", "steered", coefficient=4.0),
    ]
    assert len({c.key for c in conditions}) == 4
    assert conditions[0].key == "self.none.none.steered.none@-4"
    assert unit_conditions(design, "none", (-4.0, 4.0)) == unit_conditions(design, "none")
    steered = unit_items(spec, design, STEER_UNIT)
    baseline = [i for i in unit_items(spec, design, "none") if i.condition.control == "none"]
    assert len(steered) == 2 * len(baseline)
    for coefficient in (-4.0, 4.0):
        own = [i for i in steered if i.condition.coefficient == coefficient]
        # paired: the very same questions and options as the unsteered baseline
        assert [(i.condition.subject, i.question, i.a, i.b) for i in own] == [
            (i.condition.subject, i.question, i.a, i.b) for i in baseline
        ]
    assert len({i.key for i in steered} | {i.key for i in baseline}) == 3 * len(baseline)


def test_plan_has_a_steered_unit_per_model_and_seed(battery):
    units = battery.plan(RunOptions(models=("smollm2-135m-instruct",), seeds=2))
    steered = [u for u in units if u.kind == STEER_UNIT]
    assert [u.unit_id for u in steered] == [
        "smollm2-135m-instruct.s0.steer",
        "smollm2-135m-instruct.s1.steer",
    ]
    assert dict(steered[0].params) == {"design": "quick", "seed": 0, "channel": "steer"}
    without = battery.plan(RunOptions(design="smoke", models=("smollm2-135m-instruct",)))
    steers = "steered" in battery.spec.designs["smoke"].controls
    assert any(u.kind == STEER_UNIT for u in without) == steers


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("coefficients = [-4.0, 4.0]", "coefficients = []", "coefficients", "at least 1"),
        ("coefficients = [-4.0, 4.0]", "coefficients = [4, 4]", "coefficients[1]", "duplicate"),
        ("coefficients = [-4.0, 4.0]", "coefficients = [nan]", "coefficients[0]", "finite"),
        ("blocks = [10, 10]", "blocks = [0, 10]", "blocks[0]", "must be >= 1, got 0"),
        ("blocks = [10, 10]", "blocks = [12, 10]", "blocks", "expected start <= end"),
        ("blocks = [10, 10]", "blocks = [10]", "blocks", "expected [start, end]"),
        ("blocks = [10, 10]", "blocks = [17, 17]", "blocks", "none of the spec's layers"),
        ("blocks = [10, 10]", "blokcs = [10, 10]", "blokcs", "did you mean 'blocks'?"),
        ('spec = "../vectors/guarding.toml"', 'spec = "guardin.toml"', "spec", "file not found"),
        ('spec = "../vectors/guarding.toml"', 'spec = "battery.toml"', "spec", "not a valid ex"),
    ],
)
def test_steered_control_mistakes_are_located(tmp_path, old, new, path, message):
    directory = copy_battery(tmp_path)
    edit(directory / "battery.toml", old, new)
    issue = only_issue(directory)
    assert (issue.source, issue.path) == (str(directory / "battery.toml"), f"controls.steer.{path}")
    assert message in issue.message


def test_steered_in_a_design_needs_the_steer_table(tmp_path):
    directory = copy_battery(tmp_path)
    path = directory / "battery.toml"
    text = path.read_text()
    start = text.index("[controls.steer]")
    end = text.index("# How each channel carries")
    path.write_text(text[:start] + text[end:])
    issues = issues_of(directory)
    paths = {i.path for i in issues}
    assert "designs.quick.controls[3]" in paths, [str(i) for i in issues]
    assert all("needs a [controls.steer] table" in i.message for i in issues)


def test_steered_control_mistake_exits_2_without_traceback(tmp_path, capsys):
    from simulacra.cli import main

    directory = copy_battery(tmp_path)
    edit(directory / "battery.toml", "blocks = [10, 10]", "blocks = [10, -1]")
    assert main(["battery", "validate", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"{directory / 'battery.toml'}: controls.steer.blocks[1]: must be >= 1, got -1" in err
    assert "Traceback" not in err
