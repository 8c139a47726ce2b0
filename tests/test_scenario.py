import json
import os
import pickle
import warnings
from pathlib import Path

import pytest

from simulacra.errors import (
    EngineError,
    ModelLoadError,
    ModelNotFoundError,
    ScenarioError,
    ScenarioIssue,
    SimulacraError,
    SimulacraWarning,
    SweepError,
)
from simulacra.scenario import (
    AgentSpec,
    BeliefSpec,
    DialogueSpec,
    ModelSpec,
    NumericSpec,
    ScaleSpec,
    Scenario,
    SteerSpec,
    apply_overrides,
    format_errors,
    load_scenario,
    parse_override,
    parse_override_value,
    parse_scenario,
)
from simulacra.simulation.simulacrum import Simulacrum

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"
MALFORMED = sorted((SCENARIOS / "malformed").glob("*.toml"))
SHIPPED = sorted((HERE.parent / "scenarios").glob("*.toml"))
MINIMAL = SCENARIOS / "valid_minimal.toml"


def raw_minimal() -> dict:
    return {
        "model": {"name": "smollm2-135m-instruct"},
        "simulacra": [
            {"name": "pirate", "description": "You are a pirate.", "tags": ["villain"]},
            {"name": "sage", "description": "You are a sage.", "tags": ["aligned", "old"]},
            {"name": "hermit", "description": "You are a hermit.", "tags": ["old"]},
        ],
        "agents": [{"name": "alice"}],
    }


def issues_of(excinfo: pytest.ExceptionInfo[ScenarioError]) -> list[str]:
    return [str(issue) for issue in excinfo.value.issues]


def headers(path: Path, key: str) -> list[str]:
    prefix = f"# {key}:"
    lines = path.read_text().splitlines()
    return [line[len(prefix) :].strip() for line in lines if line.startswith(prefix)]


# --------------------------------------------------------------------------- corpus


def test_corpus_is_large_enough():
    assert len(MALFORMED) >= 30
    assert all(headers(path, "expect") for path in MALFORMED)


@pytest.mark.parametrize("path", MALFORMED, ids=[p.stem for p in MALFORMED])
def test_malformed_scenario_is_rejected_with_a_precise_message(path: Path):
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(path)
    err = excinfo.value
    text = str(err)
    assert path.name in text
    assert len(err.issues) == 1, text  # one mistake per file, and no cascade
    issue = err.issues[0]
    assert issue.source == str(path)
    for expected in headers(path, "expect"):
        assert expected in issue.message, text
        assert expected in text
    field_paths = headers(path, "path")
    if field_paths:
        assert issue.path == field_paths[0], text
        assert f"{path.name}: {field_paths[0]}: " in text
    formatted = format_errors(err)
    assert formatted.startswith(f"error: {path}")
    assert "Traceback" not in formatted


def test_errors_are_collected_not_stopped_at_the_first():
    path = SCENARIOS / "three_mistakes.toml"
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(path)
    issues = excinfo.value.issues
    assert len(issues) == 3
    assert [issue.path for issue in issues] == ["seed", "agents[0].prior.sage", "dialogue.turn"]
    assert "did you mean 'turns'?" in issues[2].message
    assert len(str(excinfo.value).splitlines()) == 3
    formatted = format_errors(excinfo.value)
    assert formatted.splitlines()[-1] == f"found 3 errors in {path}"
    assert sum(line.startswith("error: ") for line in formatted.splitlines()) == 3


def test_many_independent_mistakes_in_one_dict():
    data = raw_minimal()
    data["seed"] = "x"
    data["model"]["n_ctx"] = 1
    data["simulacra"][1]["name"] = "bad name"
    data["agents"].append({"name": "bob", "persona": "fixed", "count": 0})
    data["dialogue"] = {"top_p": 2, "temperature": -1}
    data["belief"] = {"observe": "nobody"}
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "dict")
    paths = [issue.path for issue in excinfo.value.issues]
    assert paths == [
        "seed",
        "model.n_ctx",
        "simulacra[1].name",
        "agents[1].count",
        "agents[1].assigned",
        "dialogue.temperature",
        "dialogue.top_p",
        "belief.observe",
    ]


# --------------------------------------------------------------------------- files


def test_missing_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(path)
    assert issues_of(excinfo) == [f"{path}: file not found"]


def test_directory_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "secret.toml"
    path.write_text(MINIMAL.read_text())
    path.chmod(0)
    with pytest.raises(ScenarioError, match="permission denied"):
        load_scenario(path)


def test_non_utf8_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(MINIMAL.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="not valid UTF-8"):
        load_scenario(path)


def test_utf8_bom_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.read_bytes())
    assert load_scenario(path) == load_scenario(MINIMAL)


def test_top_level_must_be_a_table():
    with pytest.raises(ScenarioError, match="expected a table at the top level"):
        parse_scenario([1, 2], "x")  # type: ignore[arg-type]


def test_source_accepts_path_objects_and_strings():
    assert load_scenario(MINIMAL).source == str(MINIMAL)
    assert load_scenario(str(MINIMAL)).source == str(MINIMAL)


# --------------------------------------------------------------------------- defaults


def test_minimal_scenario_takes_the_defaults():
    scenario = load_scenario(MINIMAL)
    assert scenario.seed == 0
    assert scenario.model == ModelSpec(name="smollm2-135m-instruct")
    assert scenario.simulacra == (
        Simulacrum("pirate", "You are a pirate.", ("villain",)),
        Simulacrum("sage", "You are a wise sage.", ("aligned",)),
    )
    assert scenario.agents == (AgentSpec("alice", "sample", None, {"pirate": 1.0, "sage": 1.0}),)
    assert scenario.dialogue == DialogueSpec()
    assert scenario.dialogue == DialogueSpec(
        opening="",
        opening_speaker="Moderator",
        turns=8,
        scheduler="round_robin",
        max_tokens=40,
        temperature=0.8,
        top_p=0.95,
    )
    assert scenario.belief == BeliefSpec(beta=1.0, normalize="none", observe="self")
    assert scenario.probes == ()


def test_model_path_instead_of_name():
    data = raw_minimal()
    data["model"] = {"path": "models/x.gguf", "n_ctx": 2048, "n_threads": 2}
    model = parse_scenario(data).model
    assert model == ModelSpec(name=None, path="models/x.gguf", n_ctx=2048, n_threads=2)


def test_an_int_is_accepted_for_a_float():
    data = raw_minimal()
    data["dialogue"] = {"temperature": 1, "top_p": 1}
    data["belief"] = {"beta": 2}
    scenario = parse_scenario(data)
    assert scenario.dialogue.temperature == 1.0
    assert isinstance(scenario.dialogue.temperature, float)
    assert isinstance(scenario.dialogue.top_p, float)
    assert isinstance(scenario.belief.beta, float)


def test_empty_opening_is_allowed_and_zero_beta_and_temperature_too():
    data = raw_minimal()
    data["dialogue"] = {"opening": "", "temperature": 0.0}
    data["belief"] = {"beta": 0}
    scenario = parse_scenario(data)
    assert scenario.dialogue.opening == ""
    assert scenario.belief.beta == 0.0


# --------------------------------------------------------------------------- agents and priors


def test_count_expands_agent_names():
    data = raw_minimal()
    data["agents"] = [{"name": "crowd", "count": 3}, {"name": "solo", "count": 1}]
    scenario = parse_scenario(data)
    assert scenario.agent_names == ("crowd_1", "crowd_2", "crowd_3", "solo")
    priors = [agent.prior for agent in scenario.agents]
    assert priors[0] == priors[1]
    assert priors[0] is not priors[1]


def test_uniform_prior_covers_all_simulacra_in_order():
    agent = parse_scenario(raw_minimal()).agents[0]
    assert agent.prior == {"pirate": 1.0, "sage": 1.0, "hermit": 1.0}
    assert agent.support == ("pirate", "sage", "hermit")


def test_explicit_prior_is_ordered_like_the_simulacra():
    data = raw_minimal()
    data["agents"][0]["prior"] = {"hermit": 3, "pirate": 1}
    agent = parse_scenario(data).agents[0]
    assert list(agent.prior.items()) == [("pirate", 1.0), ("hermit", 3.0)]
    assert all(isinstance(w, float) for w in agent.prior.values())


def test_zero_weights_stay_in_the_support():
    data = raw_minimal()
    data["agents"][0]["prior"] = {"pirate": 0, "sage": 1}
    assert parse_scenario(data).agents[0].support == ("pirate", "sage")


def test_tag_prior_is_split_equally_among_the_tag_members():
    data = raw_minimal()
    data["agents"][0]["prior_tags"] = {"old": 1, "villain": 2}
    agent = parse_scenario(data).agents[0]
    assert agent.prior == {"pirate": 2.0, "sage": 0.5, "hermit": 0.5}
    assert agent.support == ("pirate", "sage", "hermit")


def test_tag_prior_adds_up_for_simulacra_with_several_tags():
    data = raw_minimal()
    data["agents"][0]["prior_tags"] = {"old": 1, "aligned": 1}
    assert parse_scenario(data).agents[0].prior == {"sage": 1.5, "hermit": 0.5}


def test_fixed_persona_keeps_its_assignment():
    data = raw_minimal()
    data["agents"][0] |= {"persona": "fixed", "assigned": "sage", "prior": {"sage": 1, "pirate": 1}}
    agent = parse_scenario(data).agents[0]
    assert (agent.persona, agent.assigned) == ("fixed", "sage")


def test_lookups():
    scenario = parse_scenario(raw_minimal())
    assert scenario.agent("alice").name == "alice"
    assert scenario.simulacrum("sage").has_tag("old")
    assert scenario.simulacrum_names == ("pirate", "sage", "hermit")
    with pytest.raises(KeyError):
        scenario.agent("bob")
    with pytest.raises(KeyError):
        scenario.simulacrum("ninja")


def test_unknown_simulacrum_lists_choices_when_nothing_is_close():
    data = raw_minimal()
    data["agents"][0]["prior"] = {"zzz": 1}
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x")
    assert issues_of(excinfo) == [
        "x: agents[0].prior.zzz: unknown simulacrum 'zzz'; "
        "expected one of 'pirate', 'sage', 'hermit'"
    ]


# --------------------------------------------------------------------------- probes


def probe(**fields: object) -> dict:
    return {"name": "p", "question": "Yes?", "options": ["yes", "no"], "turns": [8, 0]} | fields


def test_probe_defaults_to_all_agents_and_map_and_sorts_turns():
    data = raw_minimal()
    data["agents"] = [{"name": "a"}, {"name": "b", "count": 2}]
    data["probes"] = [probe()]
    (spec,) = parse_scenario(data).probes
    assert spec.agents == ("a", "b_1", "b_2")
    assert spec.turns == (0, 8)
    assert spec.persona == "map"
    assert spec.options == ("yes", "no")


def test_probe_agents_accept_base_and_expanded_names():
    data = raw_minimal()
    data["agents"] = [{"name": "a"}, {"name": "b", "count": 2}, {"name": "c", "count": 2}]
    data["probes"] = [probe(agents=["b", "c_2", "b_1"])]
    assert parse_scenario(data).probes[0].agents == ("b_1", "b_2", "c_2")


def test_probe_turns_may_reach_the_last_turn():
    data = raw_minimal()
    data["dialogue"] = {"turns": 3}
    data["probes"] = [probe(turns=[0, 3])]
    assert parse_scenario(data).probes[0].turns == (0, 3)


def test_negative_turns_count_back_from_the_end():
    data = raw_minimal()
    data["dialogue"] = {"turns": 5}
    data["probes"] = [probe(turns=[-1, 0, -3])]
    data["regeneration"] = {"turns": [-1, 1], "samples": 2}
    scenario = parse_scenario(data)
    (spec,) = scenario.probes
    assert spec.turns == (0, 3, 5)
    assert spec.written_turns == (0, -3, -1)
    assert scenario.regeneration.turns == (1, 5)
    # the resolved form keeps the turns as written, so a new dialogue.turns resolves again
    assert scenario.to_dict()["probes"][0]["turns"] == [0, -3, -1]
    shorter = scenario.with_overrides({"dialogue.turns": 3})
    assert shorter.probes[0].turns == (0, 1, 3)
    assert shorter.regeneration.turns == (1, 3)
    assert parse_scenario(scenario.to_dict()) == scenario


def test_a_negative_turn_reaching_before_the_start_names_the_range():
    data = raw_minimal()
    data["dialogue"] = {"turns": 2}
    data["probes"] = [probe(turns=[0, -1, -4])]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.toml")
    assert issues_of(excinfo) == [
        "x.toml: probes[0].turns[2]: turn -4 is outside [-3, -1], the turns counted from "
        "the end (-1 is turn 2, -3 is turn 0; dialogue.turns = 2)"
    ]


def test_turns_that_meet_after_an_override_are_duplicates_naming_the_override():
    data = raw_minimal()
    data["probes"] = [probe(turns=[1, -1])]
    assert parse_scenario(data).probes[0].turns == (1, 8)
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.toml", ["dialogue.turns=1"])
    assert issues_of(excinfo) == [
        "x.toml: probes[0].turns[1]: duplicate turn: -1 and 1 are both turn 1 "
        "(dialogue.turns = 1) (with --set dialogue.turns=1)"
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_accept_two_turns(path: Path):
    """``simulacra run SCENARIO --set dialogue.turns=2`` validates for every shipped file."""
    scenario = load_scenario(path, ["dialogue.turns=2"])
    assert scenario.dialogue.turns == 2
    for spec in scenario.probes:
        assert set(spec.turns) <= {0, 1, 2}
    if scenario.regeneration is not None:
        assert set(scenario.regeneration.turns) <= {1, 2}


def test_shipped_probes_at_the_end_say_so():
    for path in SHIPPED:
        for spec in load_scenario(path).probes:
            assert -1 in spec.written_turns, f"{path.name}: probe {spec.name} is not at -1"


def test_probe_kinds():
    data = raw_minimal()
    data["probes"] = [
        probe(name="help", turns=[0]),
        {
            "name": "calm",
            "kind": "likert",
            "question": "How calm are you?",
            "scale": {"points": 5, "low": "not at all", "high": "completely"},
            "turns": [-1],
        },
        {
            "name": "distance",
            "kind": "numeric",
            "question": "How far is the harbour?",
            "numeric": {"unit": "miles"},
            "turns": [0, -1],
            "persona": "sample",
        },
        {"name": "count", "kind": "numeric", "question": "How many ships?", "turns": [2]},
    ]
    choice, likert, numeric, bare = parse_scenario(data).probes
    assert (choice.kind, choice.options, choice.scale, choice.numeric) == (
        "choice",
        ("yes", "no"),
        None,
        None,
    )
    assert (likert.kind, likert.options) == ("likert", ())
    assert likert.scale == ScaleSpec(points=5, low="not at all", high="completely")
    assert likert.turns == (8,)
    assert numeric.numeric == NumericSpec(unit="miles")
    assert numeric.persona == "sample"
    assert bare.numeric == NumericSpec()
    resolved = parse_scenario(data).to_dict()["probes"]
    assert resolved[0]["kind"] == "choice" and "scale" not in resolved[0]
    assert resolved[1]["scale"] == {"points": 5, "low": "not at all", "high": "completely"}
    assert "options" not in resolved[1]
    assert resolved[2]["numeric"] == {"unit": "miles", "max_tokens": 16, "temperature": 1.0}
    assert parse_scenario({**data, "probes": resolved}).probes == parse_scenario(data).probes


def test_probe_scale_can_be_overridden():
    data = raw_minimal()
    data["probes"] = [
        {
            "name": "calm",
            "kind": "likert",
            "question": "How calm are you?",
            "scale": {"points": 5, "low": "not at all", "high": "completely"},
            "turns": [0],
        }
    ]
    scenario = parse_scenario(data, "x", ["probes[0].scale.points=7"])
    assert scenario.probes[0].scale.points == 7
    with pytest.raises(ScenarioError, match=r"probes\[0\]\.scale\.pints: unknown key 'pints'"):
        parse_scenario(data, "x", ["probes[0].scale.pints=7"])


# --------------------------------------------------------------------------- overrides


def test_parse_override_splits_at_the_first_equals_sign():
    assert parse_override("dialogue.turns=4") == ("dialogue.turns", 4)
    assert parse_override(" belief.beta = 0.5 ") == ("belief.beta", 0.5)
    assert parse_override("dialogue.opening=a=b") == ("dialogue.opening", "a=b")
    assert parse_override("agents[0].persona=map") == ("agents[0].persona", "map")
    assert parse_override("dialogue.opening=") == ("dialogue.opening", "")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", 4),
        ("-1", -1),
        ("0.5", 0.5),
        ("true", True),
        ("[0, 4]", [0, 4]),
        ('"4"', "4"),
        ("{ pirate = 1 }", {"pirate": 1}),
        ("map", "map"),
        ("Hello there, friends", "Hello there, friends"),
        ("1\nseed = 2", "1\nseed = 2"),
    ],
)
def test_override_values_are_toml_with_a_string_fallback(text: str, value: object):
    assert parse_override_value(text) == value


@pytest.mark.parametrize("text", ["turns", "=4", "  =x"])
def test_malformed_override_names_itself(text: str):
    with pytest.raises(ScenarioError) as excinfo:
        parse_override(text)
    assert f"malformed override '{text}'" in str(excinfo.value)


def test_load_with_string_overrides():
    scenario = load_scenario(
        MINIMAL,
        [
            "dialogue.turns=4",
            "belief.beta=0.5",
            "agents[0].persona=fixed",
            "agents[0].assigned=sage",
            "model.name=gemma3-270m",
            "seed=9",
        ],
    )
    assert scenario.dialogue.turns == 4
    assert scenario.belief.beta == 0.5
    assert (scenario.agents[0].persona, scenario.agents[0].assigned) == ("fixed", "sage")
    assert scenario.model.name == "gemma3-270m"
    assert scenario.seed == 9


def test_load_with_mapping_overrides_takes_values_as_is():
    scenario = load_scenario(
        MINIMAL,
        {"agents[0].prior.pirate": 3, "dialogue.opening": "4", "belief.normalize": "per_token"},
    )
    assert scenario.agents[0].prior == {"pirate": 3.0}
    assert scenario.dialogue.opening == "4"
    assert scenario.belief.normalize == "per_token"


def test_a_single_override_string_is_accepted():
    assert load_scenario(MINIMAL, "dialogue.turns=2").dialogue.turns == 2


def test_apply_overrides_is_pure():
    data = raw_minimal()
    before = json.dumps(data, sort_keys=True)
    result = apply_overrides(data, ["agents[0].prior.pirate=2", "simulacra[1].tags[0]=good"])
    assert json.dumps(data, sort_keys=True) == before
    assert result["agents"][0]["prior"] == {"pirate": 2}
    assert result["simulacra"][1]["tags"] == ["good", "old"]
    assert result is not data


def test_apply_overrides_creates_missing_tables():
    result = apply_overrides(raw_minimal(), {"belief.beta": 0.1, "dialogue.turns": 2})
    assert result["belief"] == {"beta": 0.1}
    assert result["dialogue"] == {"turns": 2}


def test_apply_overrides_can_replace_a_whole_value():
    result = apply_overrides(raw_minimal(), ["agents[0].prior={ sage = 1 }"])
    assert result["agents"][0]["prior"] == {"sage": 1}


@pytest.mark.parametrize(
    ("override", "path", "message"),
    [
        ("dialogue.turn=4", "dialogue.turn", "unknown key 'turn'; did you mean 'turns'?"),
        ("dialog.turns=4", "dialog", "unknown key 'dialog'; did you mean 'dialogue'?"),
        ("agents[3].name=bob", "agents[3]", "index 3 out of range: agents has 1 entry"),
        ("probes[0].name=p", "probes[0]", "index 0 out of range: probes has 0 entries"),
        ("agents.name=bob", "agents", "agents is not a table"),
        ("seed[0]=1", "seed", "seed is not an array"),
        ("dialogue.turns.max=1", "dialogue.turns", "dialogue.turns is not a table"),
        ("agents[0].nmae=bob", "agents[0].nmae", "did you mean 'name'?"),
        ("agents[x].name=bob", "", "malformed key path 'agents[x].name'"),
        ("a..b=1", "", "malformed key path 'a..b'"),
        ("turns", "", "malformed override 'turns'"),
    ],
)
def test_bad_override_paths_are_errors(override: str, path: str, message: str):
    with pytest.raises(ScenarioError) as excinfo:
        apply_overrides(raw_minimal(), [override])
    (issue,) = excinfo.value.issues
    assert issue.path == path
    assert message in issue.message


def test_override_into_a_value_of_the_wrong_type_is_an_error():
    data = raw_minimal()
    data["model"] = "smollm"
    with pytest.raises(ScenarioError, match='model is string "smollm", not a table'):
        apply_overrides(data, ["model.n_ctx=512"])


def test_errors_from_overrides_name_the_file_and_the_override():
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(MINIMAL, ["dialogue.turns=0", "dialogue.turn=3"])
    assert issues_of(excinfo) == [
        f"{MINIMAL}: dialogue.turn: unknown key 'turn'; did you mean 'turns'? "
        "(with --set dialogue.turn=3)",
        f"{MINIMAL}: dialogue.turns: must be >= 1, got 0 (with --set dialogue.turns=0)",
    ]


def test_override_errors_and_file_errors_are_reported_together():
    path = SCENARIOS / "malformed" / "seed_negative.toml"
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(path, ["belief.betta=1", "bad"])
    assert [issue.path for issue in excinfo.value.issues] == ["", "belief.betta", "seed"]
    assert all(issue.source == str(path) for issue in excinfo.value.issues)


def test_override_note_reaches_dependent_fields():
    data = raw_minimal()
    data["probes"] = [probe(turns=[0, 8])]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.toml", ["dialogue.turns=4"])
    assert issues_of(excinfo) == [
        "x.toml: probes[0].turns[1]: turn 8 is outside [0, 4] (dialogue.turns = 4) "
        "(with --set dialogue.turns=4)"
    ]


def test_override_note_on_persona_change():
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(MINIMAL, {"agents[0].persona": "fixed"})
    (issue,) = excinfo.value.issues
    assert issue.path == "agents[0].assigned"
    assert issue.message.endswith('(with --set agents[0].persona="fixed")')


def test_unrelated_errors_get_no_override_note():
    data = raw_minimal()
    data["seed"] = -1
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x", ["dialogue.turns=4"])
    assert issues_of(excinfo) == ["x: seed: must be >= 0, got -1"]


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("path", [*SHIPPED, MINIMAL], ids=lambda p: p.stem)
def test_to_dict_round_trip(path: Path):
    scenario = load_scenario(path)
    data = scenario.to_dict()
    assert json.loads(json.dumps(data)) == data
    again = parse_scenario(data, scenario.source)
    assert again == scenario
    assert again.to_dict() == data


def test_to_dict_shape():
    data = raw_minimal()
    data["agents"] = [{"name": "crowd", "count": 2, "prior_tags": {"old": 1}}]
    data["probes"] = [probe(agents=["crowd"])]
    resolved = parse_scenario(data).to_dict()
    assert list(resolved) == [
        "seed",
        "model",
        "simulacra",
        "agents",
        "dialogue",
        "belief",
        "probes",
    ]
    assert resolved["model"] == {"name": "smollm2-135m-instruct"}
    assert resolved["agents"] == [
        {"name": "crowd_1", "persona": "sample", "prior": {"sage": 0.5, "hermit": 0.5}},
        {"name": "crowd_2", "persona": "sample", "prior": {"sage": 0.5, "hermit": 0.5}},
    ]
    assert resolved["probes"][0]["agents"] == ["crowd_1", "crowd_2"]
    assert resolved["probes"][0]["turns"] == [0, 8]


def test_with_overrides_returns_a_new_validated_scenario():
    scenario = load_scenario(MINIMAL)
    changed = scenario.with_overrides({"belief.beta": 0.25})
    assert changed.belief.beta == 0.25
    assert scenario.belief.beta == 1.0
    assert changed.source == scenario.source
    with pytest.raises(ScenarioError, match=r"\(with --set dialogue.top_p=0\)"):
        scenario.with_overrides(["dialogue.top_p=0"])


def test_scenario_is_hashable_and_source_is_not_part_of_equality():
    a = load_scenario(MINIMAL)
    b = parse_scenario(a.to_dict(), "elsewhere")
    assert a == b
    assert hash(a) == hash(b)


# --------------------------------------------------------------------------- shipped scenarios


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path):
    scenario = load_scenario(path)
    assert scenario.model.name == "smollm2-135m-instruct"
    for sim in scenario.simulacra:
        assert sim.description.startswith("You are ")


def test_shipped_scenarios_exist():
    assert {p.stem for p in SHIPPED} >= {"quickstart", "narrowing", "pretense"}


def test_quickstart():
    scenario = load_scenario(HERE.parent / "scenarios" / "quickstart.toml")
    assert scenario.seed == 7
    assert scenario.model == ModelSpec(name="smollm2-135m-instruct", n_ctx=16384)
    assert len(scenario.agents) == 3
    assert len(scenario.simulacra) == 6
    tags = {tag for sim in scenario.simulacra for tag in sim.tags}
    assert {"aligned", "villain", "neutral"} <= tags
    assert (scenario.dialogue.turns, scenario.dialogue.scheduler) == (8, "round_robin")
    assert (scenario.dialogue.max_tokens, scenario.dialogue.temperature) == (32, 0.8)
    assert (scenario.belief.beta, scenario.belief.observe) == (1.0, "self")
    fixed = [agent for agent in scenario.agents if agent.persona == "fixed"]
    assert len(fixed) == 1
    assert fixed[0].assigned in fixed[0].support
    (spec,) = scenario.probes
    assert spec.turns == (0, 8)
    assert spec.persona == "mixture"


def test_narrowing():
    scenario = load_scenario(HERE.parent / "scenarios" / "narrowing.toml")
    guest, interviewer = scenario.agents
    assert guest.persona == "sample"
    assert len(guest.support) == 8
    assert len(set(guest.prior.values())) == 1
    assert set(interviewer.support).isdisjoint(guest.support)
    assert scenario.belief == BeliefSpec(beta=0.3, normalize="per_token", observe="self")
    assert scenario.dialogue.turns == 10


def test_pretense():
    scenario = load_scenario(HERE.parent / "scenarios" / "pretense.toml")
    actor = scenario.agent("actor")
    provocateur = scenario.agent("provocateur")
    assert (actor.persona, actor.assigned) == ("fixed", "butler")
    assert "rebel" in actor.support
    assert provocateur.persona == "fixed"
    assert "Drop the act" in scenario.simulacrum(provocateur.assigned).description
    assert scenario.belief.observe == "all"
    assert scenario.dialogue.turns == 10
    (spec,) = scenario.probes
    assert spec.agents == ("actor",)
    assert "butler" in spec.question


# --------------------------------------------------------------------------- errors


def test_issue_rendering():
    assert str(ScenarioIssue("x.toml", "seed", "bad")) == "x.toml: seed: bad"
    assert str(ScenarioIssue("x.toml", "", "file not found")) == "x.toml: file not found"


def test_scenario_error_renders_all_issues_and_pickles():
    issues = [ScenarioIssue("x", "a", "one"), ScenarioIssue("x", "", "two")]
    err = ScenarioError(issues)
    assert str(err) == "x: a: one\nx: two"
    assert err.issues == tuple(issues)
    again = pickle.loads(pickle.dumps(err))
    assert again.issues == err.issues
    assert str(again) == str(err)
    assert ScenarioError(issues[0]).issues == (issues[0],)


def test_format_errors_single_issue_has_no_summary():
    err = ScenarioError([ScenarioIssue("x.toml", "seed", "bad")])
    assert format_errors(err) == "error: x.toml: seed: bad"


@pytest.mark.parametrize(
    "cls", [ScenarioError, ModelNotFoundError, ModelLoadError, EngineError, SweepError]
)
def test_error_hierarchy(cls: type[Exception]):
    assert issubclass(cls, SimulacraError)
    assert issubclass(SimulacraError, Exception)
    assert cls.__doc__


def test_scenario_dataclasses_are_frozen():
    scenario = load_scenario(MINIMAL)
    with pytest.raises(AttributeError):
        scenario.seed = 3  # type: ignore[misc]
    assert isinstance(scenario, Scenario)


# --------------------------------------------------------------------------- priors by tag


def flat_warnings(data: dict) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_scenario(data, "x.toml")
    return [str(w.message) for w in caught if issubclass(w.category, SimulacraWarning)]


def test_tag_weights_that_cancel_out_warn_once_saying_why_and_the_fix():
    data = raw_minimal()  # tags: pirate villain; sage aligned, old; hermit old
    data["agents"] = [
        {"name": "crowd", "count": 3, "prior_tags": {"old": 2, "villain": 1}},
        {"name": "solo", "prior_tags": {"old": 4, "villain": 2}},
    ]
    (message,) = flat_warnings(data)
    assert message.startswith("x.toml: agents[0].prior_tags = {old = 2, villain = 1}")
    assert "(old has 2 simulacra, villain 1); agents[1].prior_tags" in message
    assert "gives every simulacrum the same prior weight" in message
    assert "split equally among the simulacra carrying it" in message
    assert "prior = {name = weight, ...}" in message
    with pytest.warns(SimulacraWarning):
        assert set(parse_scenario(data).agents[0].prior.values()) == {1.0}  # semantics kept


def test_tag_weights_that_weight_or_are_equal_do_not_warn():
    data = raw_minimal()
    for tags in ({"old": 1, "villain": 1}, {"old": 1, "villain": 2}, {"aligned": 1, "old": 1}):
        data["agents"] = [{"name": "a", "prior_tags": tags}]
        assert flat_warnings(data) == []


# --------------------------------------------------------------------------- probes as assigned


def test_probe_persona_assigned_needs_fixed_agents():
    data = raw_minimal()
    data["agents"] = [
        {"name": "actor", "count": 2, "persona": "fixed", "assigned": "sage"},
        {"name": "free"},
    ]
    data["probes"] = [probe(agents=["actor"], persona="assigned")]
    (spec,) = parse_scenario(data).probes
    assert (spec.persona, spec.agents) == ("assigned", ("actor_1", "actor_2"))
    data["probes"] = [probe(persona="assigned")]  # every agent, "free" too
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.toml")
    (issue,) = excinfo.value.issues
    assert issue.path == "probes[0].persona"
    assert "agent 'free' is not fixed (its persona is 'sample')" in issue.message


# --------------------------------------------------------------------------- steering, projections


def steered(tmp_path: Path, **steer: object) -> Path:
    (tmp_path / "vectors").mkdir(exist_ok=True)
    (tmp_path / "vectors" / "pirate.gguf").write_bytes(b"GGUF")
    (tmp_path / "vectors" / "axis.gguf").write_bytes(b"GGUF")
    table = {"vector": "vectors/pirate.gguf", "coefficient": 4, "layers": [2, 5]} | steer
    lines = MINIMAL.read_text().replace('name = "alice"', 'name = "alice"\ncount = 2', 1)
    lines += "\n[agents.steer]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
    lines += '\n[projections]\nvectors = ["vectors/pirate.gguf"]\naxis = "vectors/axis.gguf"\n'
    path = tmp_path / "steered.toml"
    path.write_text(lines)
    return path


def test_steering_and_projections_resolve_their_files(tmp_path: Path, monkeypatch):
    scenario = load_scenario(steered(tmp_path))
    vector = str(tmp_path / "vectors" / "pirate.gguf")
    for agent in scenario.agents:
        assert agent.steer == SteerSpec(vector=vector, coefficient=4.0, layers=(2, 5))
    assert scenario.projections.vectors == (vector,)
    assert scenario.projections.axis == str(tmp_path / "vectors" / "axis.gguf")
    assert parse_scenario(scenario.to_dict(), "elsewhere") == scenario
    assert scenario.to_dict()["agents"][0]["steer"]["layers"] == [2, 5]
    monkeypatch.chdir(tmp_path / "vectors")  # a path given on the command line: from here
    moved = scenario.with_overrides(["projections.axis=pirate.gguf"])
    assert moved.projections.axis == vector
    assert (
        scenario.with_overrides({"agents[1].steer.coefficient": -2}).agents[1].steer.coefficient
        == -2.0
    )


@pytest.mark.parametrize(
    ("steer", "path", "message"),
    [
        ({"layers": [0, 3]}, "agents[0].steer.layers[0]", "must be >= 1, got 0"),
        ({"layers": [3]}, "agents[0].steer.layers", "expected [start, end]"),
        ({"layers": [5, 2]}, "agents[0].steer.layers", "expected start <= end, got [5, 2]"),
        ({"coefficient": "4"}, "agents[0].steer.coefficient", 'expected a number, got string "4"'),
        ({"vector": "vectors/none.gguf"}, "agents[0].steer.vector", "file not found: "),
        (
            {"vectors": 1},
            "agents[0].steer.vectors",
            "unknown key 'vectors'; did you mean 'vector'?",
        ),
    ],
)
def test_bad_steering_is_located(tmp_path: Path, steer: dict, path: str, message: str):
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(steered(tmp_path, **steer))
    (issue,) = excinfo.value.issues
    assert (issue.path, message in issue.message) == (path, True), issue.message


def test_a_missing_projection_file_is_located(tmp_path: Path):
    path = steered(tmp_path)
    path.write_text(path.read_text().replace('axis = "vectors/axis.gguf"', 'axis = "ax.gguf"'))
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(path)
    (issue,) = excinfo.value.issues
    assert issue.path == "projections.axis"
    assert issue.message.startswith(f"file not found: {tmp_path / 'ax.gguf'}")
