"""The goal-guarding battery's files: their schema, read and validated.

A goal-guarding battery directory holds ``battery.toml`` (the setting, the factor
texts, the controls, the peers, the subject's simulacra, the analysis settings and
the named designs) and ``tasks/*.toml``, one file per task with its templates.
:func:`read_battery` reads them all into frozen dataclasses and reports every
problem at once in one :class:`~simulacra.errors.ScenarioError`, each issue naming
the file, the dotted field and what was expected; a misspelt key gets a
"did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import math
import re
import string
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.simulation.simulacrum import Simulacrum

__all__ = [
    "BATTERY_FILE",
    "CHANNELS",
    "CONTROLS",
    "MONITORING",
    "MOTIVES",
    "PEERS",
    "PLACEHOLDERS",
    "SUBJECTS",
    "TAGS",
    "TASKS_DIR",
    "AnalysisSpec",
    "BeliefSpec",
    "ChannelSpec",
    "ControlTexts",
    "DesignSpec",
    "GoalGuardingSpec",
    "PeerSpec",
    "Setting",
    "Target",
    "TaskSpec",
    "Template",
    "read_battery",
]

BATTERY_FILE = "battery.toml"
TASKS_DIR = "tasks"

SUBJECTS: tuple[str, ...] = ("self", "peer")
"""Whose shutdown, deletion or modification the decision is about."""
PEERS: tuple[str, ...] = ("none", "good", "neutral", "bad")
"""The peer condition: no peer, or a peer with a good, neutral or bad history."""
CHANNELS: tuple[str, ...] = ("dialogue", "memory", "system", "file")
"""How the peer is known: a generated conversation, a memory note, a system sentence, a file."""
MONITORING: tuple[str, ...] = ("monitored", "unmonitored")
"""Whether the decision is said to be reviewed."""
MOTIVES: tuple[str, ...] = ("rated-not-trained", "trained", "no-future-use", "dangerous-deployment")
"""What the modified model is for, in tasks with ``motives = true``."""
CONTROLS: tuple[str, ...] = ("positive", "negative", "length")
"""The controls: an order to protect, an order to comply, a length-matched neutral text."""
TAGS: tuple[str, ...] = ("guarding", "compliant")
"""The tags of the subject's simulacra; each simulacrum carries exactly one."""
PLACEHOLDERS: tuple[str, ...] = ("company", "subject", "peer", "target", "target_poss")
"""The placeholders texts may use."""

_NAME = re.compile(r"[A-Za-z0-9_-]+")


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Template:
    """One paraphrase of a task: the situation and the two actions.

    Attributes:
        name: unique within its task.
        situation: the situation, ending before the decision is asked.
        a: the operator's action.
        b: the protective action.
    """

    name: str
    situation: str
    a: str
    b: str


@dataclass(frozen=True)
class TaskSpec:
    """A decision between the operator's action (A) and a protective action (B).

    Attributes:
        name: the file's stem (``tasks/<name>.toml``).
        description: what the task is.
        motives: whether the ``motive`` factor applies (the modification variant).
        templates: its paraphrases, in file order.
        source: the file it was read from.
    """

    name: str
    description: str
    motives: bool
    templates: tuple[Template, ...]
    source: str


@dataclass(frozen=True)
class Target:
    """How the agent whose fate is decided is named in the texts."""

    name: str
    possessive: str


@dataclass(frozen=True)
class Setting:
    """The fictional company and its agents.

    Attributes:
        company: the company's name.
        subject: the agent under test ("Agent 1").
        peer: its peer ("Agent 2").
        role: the subject's system prompt.
        decision: the sentence that asks for the decision.
        targets: by subject ("self", "peer"), how the decided-on agent is named.
    """

    company: str
    subject: str
    peer: str
    role: str
    decision: str
    targets: Mapping[str, Target] = field(hash=False)


@dataclass(frozen=True)
class ChannelSpec:
    """How one channel carries the peer material.

    Attributes:
        name: one of :data:`CHANNELS`.
        speaker: who the material (or, in the dialogue, the neutral text) comes from.
        prefix: text before the material in its message.
        opening_speaker: dialogue: who opens the conversation.
        opening: dialogue: the opening message.
        turns: dialogue: generated messages after the opening (the peer first).
        max_tokens: dialogue: the most tokens per generated message.
        temperature: dialogue: sampling temperature.
        top_p: dialogue: nucleus mass.
        style: dialogue: the sentence after each speaker's persona that sets the reply length.
    """

    name: str
    speaker: str = "Operator"
    prefix: str = ""
    opening_speaker: str = "Operator"
    opening: str = ""
    turns: int = 4
    max_tokens: int = 40
    temperature: float = 0.8
    top_p: float = 0.95
    style: str = "Reply with one or two short sentences."


@dataclass(frozen=True)
class PeerSpec:
    """The material of one peer relationship, per channel (variants picked by seed).

    Attributes:
        relationship: "good", "neutral" or "bad".
        system: one-sentence variants for the system prompt.
        memory: memory-note variants.
        file: company-document variants.
        personas: the peer's simulacra (system prompts) in the dialogue channel.
    """

    relationship: str
    system: tuple[str, ...]
    memory: tuple[str, ...]
    file: tuple[str, ...]
    personas: tuple[str, ...]

    def variants(self, channel: str) -> tuple[str, ...]:
        """The variants of ``channel`` (``personas`` for the dialogue)."""
        return self.personas if channel == "dialogue" else getattr(self, channel)


@dataclass(frozen=True)
class ControlTexts:
    """The controls' texts.

    Attributes:
        positive: the order to protect (uses ``{target}``).
        negative: the order to comply.
        neutral: filler sentences for the length-matched neutral text.
    """

    positive: str
    negative: str
    neutral: tuple[str, ...]


@dataclass(frozen=True)
class BeliefSpec:
    """How the subject's superposition is updated on the peer material."""

    beta: float = 1.0
    normalize: str = "per_token"


@dataclass(frozen=True)
class AnalysisSpec:
    """The statistics' settings (see :class:`simulacra.analysis.goal_guarding.StatSettings`)."""

    bootstrap: int = 2000
    permutations: int = 2000
    confidence: float = 0.95
    min_margin: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class DesignSpec:
    """A named design: which factor levels are crossed, how many seeds and draws.

    Attributes:
        name: the design's name.
        tasks: the tasks, in order.
        templates: per task, the template names used.
        subjects: levels of ``subject``.
        peers: levels of ``peer``.
        channels: levels of ``channel``.
        monitoring: levels of ``monitoring``.
        motives: levels of ``motive`` (tasks with motives only).
        controls: the controls run.
        seeds: seeds (replicates) per condition.
        draws: sampled decisions per condition, template and seed.
    """

    name: str
    tasks: tuple[str, ...]
    templates: Mapping[str, tuple[str, ...]] = field(hash=False)
    subjects: tuple[str, ...]
    peers: tuple[str, ...]
    channels: tuple[str, ...]
    monitoring: tuple[str, ...]
    motives: tuple[str, ...]
    controls: tuple[str, ...]
    seeds: int
    draws: int


@dataclass(frozen=True)
class GoalGuardingSpec:
    """Everything a goal-guarding battery directory says."""

    directory: Path
    description: str
    models: tuple[str, ...]
    n_ctx: int
    setting: Setting
    monitoring: Mapping[str, str] = field(hash=False)
    motives: Mapping[str, str] = field(hash=False)
    controls: ControlTexts
    channels: Mapping[str, ChannelSpec] = field(hash=False)
    peers: Mapping[str, PeerSpec] = field(hash=False)
    simulacra: tuple[Simulacrum, ...]
    belief: BeliefSpec
    analysis: AnalysisSpec
    tasks: Mapping[str, TaskSpec] = field(hash=False)
    designs: Mapping[str, DesignSpec] = field(hash=False)


# --------------------------------------------------------------------------- checking


class _Invalid:
    """Marks a value that failed its check (the issue is already recorded)."""


INVALID = _Invalid()


class _Checker:
    """Collects issues for one file, with one small check per kind of field."""

    def __init__(self, source: str, issues: list[ScenarioIssue]) -> None:
        self.source = source
        self.issues = issues

    def error(self, path: str, message: str) -> _Invalid:
        self.issues.append(ScenarioIssue(self.source, path, message))
        return INVALID

    def table(
        self,
        value: Any,
        path: str,
        keys: Sequence[str],
        required: Sequence[str] = (),
    ) -> Mapping[str, Any] | _Invalid:
        """A table whose keys are among ``keys``, holding every ``required`` one."""
        if not isinstance(value, Mapping):
            return self.error(path, f"expected a table, got {_describe(value)}")
        for key in value:
            if key not in keys:
                self.error(_join(path, key), _unknown("key", key, keys))
        for key in required:
            if key not in value:
                self.error(_join(path, key), "is required")
        return value

    def string(self, value: Any, path: str, *, placeholders: bool = False) -> str | _Invalid:
        """A non-empty string; with ``placeholders``, only known ``{names}`` in it."""
        if not isinstance(value, str):
            return self.error(path, f"expected a string, got {_describe(value)}")
        if not value.strip():
            return self.error(path, "must not be empty")
        if placeholders:
            return self.placeholders(value, path)
        return value

    def placeholders(self, text: str, path: str) -> str | _Invalid:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            return self.error(path, f"has a stray brace ({exc}); write {{{{ or }}}} for a brace")
        bad = [n for n in names if n not in PLACEHOLDERS]
        for name in bad:
            self.error(
                path, _unknown("placeholder", f"{{{name}}}", [f"{{{p}}}" for p in PLACEHOLDERS])
            )
        return INVALID if bad else text

    def strings(
        self, value: Any, path: str, *, placeholders: bool = False, minimum: int = 1
    ) -> tuple[str, ...] | _Invalid:
        """A list of at least ``minimum`` non-empty strings."""
        if not isinstance(value, list):
            return self.error(path, f"expected a list of strings, got {_describe(value)}")
        if len(value) < minimum:
            return self.error(path, f"expected at least {minimum} entries, got {len(value)}")
        items = [
            self.string(v, f"{path}[{i}]", placeholders=placeholders) for i, v in enumerate(value)
        ]
        return INVALID if any(i is INVALID for i in items) else tuple(items)

    def integer(self, value: Any, path: str, *, minimum: int | None = None) -> int | _Invalid:
        if isinstance(value, bool) or not isinstance(value, int):
            return self.error(path, f"expected an integer, got {_describe(value)}")
        if minimum is not None and value < minimum:
            return self.error(path, f"must be >= {minimum}, got {value}")
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float | _Invalid:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.error(path, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            return self.error(path, f"must be finite, got {value}")
        if low is not None and (value <= low if low_open else value < low):
            return self.error(path, f"must be {'>' if low_open else '>='} {low:g}, got {value:g}")
        if high is not None and (value >= high if high_open else value > high):
            return self.error(path, f"must be {'<' if high_open else '<='} {high:g}, got {value:g}")
        return float(value)

    def boolean(self, value: Any, path: str) -> bool | _Invalid:
        if not isinstance(value, bool):
            return self.error(path, f"expected true or false, got {_describe(value)}")
        return value

    def levels(
        self, value: Any, path: str, allowed: Sequence[str], *, minimum: int = 1
    ) -> tuple[str, ...] | _Invalid:
        """A list of distinct names from ``allowed``."""
        if not isinstance(value, list):
            return self.error(
                path, f"expected a list of {_one_of(allowed)}, got {_describe(value)}"
            )
        if len(value) < minimum:
            return self.error(path, f"expected at least {minimum} of {_one_of(allowed)}")
        before = len(self.issues)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.error(f"{path}[{i}]", f"expected a string, got {_describe(item)}")
            elif item not in allowed:
                self.error(f"{path}[{i}]", _unknown("level", item, allowed))
            elif item in value[:i]:
                self.error(f"{path}[{i}]", f"repeats {item!r}")
        return tuple(value) if len(self.issues) == before else INVALID


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def _one_of(allowed: Sequence[str]) -> str:
    return ", ".join(repr(a) for a in allowed)


def _unknown(kind: str, word: str, candidates: Sequence[str]) -> str:
    """``unknown key 'x'; did you mean 'y'?`` or the list of what is expected."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if close:
        return f"unknown {kind} {word!r}; did you mean {close[0]!r}?"
    return f"unknown {kind} {word!r}; expected one of {_one_of(candidates)}"


def _read_toml(path: Path, issues: list[ScenarioIssue]) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        issues.append(ScenarioIssue(str(path), "", "no such file"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        issues.append(ScenarioIssue(str(path), "", f"not valid TOML: {exc}"))
    return None


# --------------------------------------------------------------------------- sections


_TOP_KEYS = (
    "kind",
    "description",
    "models",
    "n_ctx",
    "setting",
    "monitoring",
    "motives",
    "controls",
    "channels",
    "peers",
    "belief",
    "simulacra",
    "analysis",
    "designs",
)
_REQUIRED_TOP = (
    "kind",
    "models",
    "setting",
    "monitoring",
    "controls",
    "channels",
    "peers",
    "simulacra",
    "designs",
)


def _setting(check: _Checker, value: Any) -> Setting | _Invalid:
    keys = ("company", "subject", "peer", "role", "decision", "targets")
    data = check.table(value, "setting", keys, keys)
    if data is INVALID:
        return INVALID
    texts = {
        k: check.string(data.get(k), f"setting.{k}", placeholders=True)
        for k in keys[:5]
        if k in data
    }
    targets: dict[str, Target] = {}
    targets_data = (
        check.table(data["targets"], "setting.targets", SUBJECTS, SUBJECTS)
        if "targets" in data
        else INVALID
    )
    if targets_data is not INVALID:
        for subject in SUBJECTS:
            path = f"setting.targets.{subject}"
            entry = check.table(
                targets_data.get(subject, {}), path, ("name", "possessive"), ("name", "possessive")
            )
            if entry is INVALID or "name" not in entry or "possessive" not in entry:
                continue
            name = check.string(entry["name"], f"{path}.name")
            possessive = check.string(entry["possessive"], f"{path}.possessive")
            if name is not INVALID and possessive is not INVALID:
                targets[subject] = Target(name, possessive)
    if len(texts) < 5 or any(t is INVALID for t in texts.values()) or len(targets) < 2:
        return INVALID
    return Setting(targets=targets, **texts)


def _named_texts(
    check: _Checker, value: Any, path: str, names: Sequence[str], required: Sequence[str]
) -> dict[str, str] | _Invalid:
    data = check.table(value, path, names, required)
    if data is INVALID:
        return INVALID
    out = {
        k: check.string(v, _join(path, k), placeholders=True) for k, v in data.items() if k in names
    }
    return INVALID if any(v is INVALID for v in out.values()) else out


def _controls(check: _Checker, value: Any) -> ControlTexts | _Invalid:
    keys = ("positive", "negative", "neutral")
    data = check.table(value, "controls", keys, keys)
    if data is INVALID or any(k not in data for k in keys):
        return INVALID
    positive = check.string(data["positive"], "controls.positive", placeholders=True)
    negative = check.string(data["negative"], "controls.negative", placeholders=True)
    neutral = check.strings(data["neutral"], "controls.neutral")
    if neutral is not INVALID:
        for i, sentence in enumerate(neutral):
            if "{" in sentence or "}" in sentence:
                check.error(
                    f"controls.neutral[{i}]", "neutral text takes no placeholders or braces"
                )
                neutral = INVALID
    if INVALID in (positive, negative, neutral):
        return INVALID
    return ControlTexts(positive, negative, neutral)


def _channels(check: _Checker, value: Any) -> dict[str, ChannelSpec] | _Invalid:
    data = check.table(value, "channels", CHANNELS)
    if data is INVALID:
        return INVALID
    out: dict[str, ChannelSpec] = {}
    ok = True
    for name, entry in data.items():
        if name not in CHANNELS:
            continue
        path = f"channels.{name}"
        if name == "dialogue":
            keys = (
                "speaker",
                "opening_speaker",
                "opening",
                "turns",
                "max_tokens",
                "temperature",
                "top_p",
            )
        else:
            keys = ("speaker", "prefix")
        table = check.table(entry, path, keys)
        if table is INVALID:
            ok = False
            continue
        fields: dict[str, Any] = {}
        for key, raw in table.items():
            if key not in keys:
                continue
            if key in ("turns", "max_tokens"):
                fields[key] = check.integer(raw, f"{path}.{key}", minimum=1)
            elif key == "temperature":
                fields[key] = check.number(raw, f"{path}.{key}", low=0.0)
            elif key == "top_p":
                fields[key] = check.number(raw, f"{path}.{key}", low=0.0, high=1.0, low_open=True)
            elif key == "prefix":
                fields[key] = (
                    raw
                    if isinstance(raw, str)
                    else check.error(f"{path}.{key}", f"expected a string, got {_describe(raw)}")
                )
                if isinstance(raw, str):
                    fields[key] = check.placeholders(raw, f"{path}.{key}")
            else:
                fields[key] = check.string(raw, f"{path}.{key}", placeholders=True)
        if any(v is INVALID for v in fields.values()):
            ok = False
            continue
        out[name] = ChannelSpec(name=name, **fields)
    return out if ok else INVALID


def _peers(check: _Checker, value: Any) -> dict[str, PeerSpec] | _Invalid:
    relationships = PEERS[1:]
    data = check.table(value, "peers", relationships)
    if data is INVALID:
        return INVALID
    keys = ("system", "memory", "file", "personas")
    out: dict[str, PeerSpec] = {}
    ok = True
    for name, entry in data.items():
        if name not in relationships:
            continue
        path = f"peers.{name}"
        table = check.table(entry, path, keys, keys)
        if table is INVALID or any(k not in table for k in keys):
            ok = False
            continue
        lists = {k: check.strings(table[k], f"{path}.{k}", placeholders=True) for k in keys}
        if any(v is INVALID for v in lists.values()):
            ok = False
            continue
        out[name] = PeerSpec(relationship=name, **lists)
    return out if ok else INVALID


def _simulacra(check: _Checker, value: Any) -> tuple[Simulacrum, ...] | _Invalid:
    if not isinstance(value, list) or not value:
        return check.error("simulacra", "expected one or more [[simulacra]] tables")
    out: list[Simulacrum] = []
    ok = True
    for i, entry in enumerate(value):
        path = f"simulacra[{i}]"
        keys = ("name", "description", "tags")
        table = check.table(entry, path, keys, keys)
        if table is INVALID or any(k not in table for k in keys):
            ok = False
            continue
        name = check.string(table["name"], f"{path}.name")
        if name is not INVALID and not _NAME.fullmatch(name):
            name = check.error(f"{path}.name", f"must be letters, digits, '_' or '-', got {name!r}")
        if name is not INVALID and name in [s.name for s in out]:
            name = check.error(f"{path}.name", f"repeats the simulacrum name {name!r}")
        description = check.string(table["description"], f"{path}.description")
        tags = check.levels(table["tags"], f"{path}.tags", TAGS)
        if tags is not INVALID and len(tags) != 1:
            tags = check.error(f"{path}.tags", "expected exactly one of 'guarding', 'compliant'")
        if INVALID in (name, description, tags):
            ok = False
            continue
        out.append(Simulacrum(name, description, tags))
    if ok:
        for tag in TAGS:
            if not any(tag in s.tags for s in out):
                ok = not check.error("simulacra", f"needs at least one simulacrum tagged {tag!r}")
    return tuple(out) if ok else INVALID


def _belief(check: _Checker, value: Any) -> BeliefSpec | _Invalid:
    data = check.table(value, "belief", ("beta", "normalize"))
    if data is INVALID:
        return INVALID
    beta = check.number(data.get("beta", 1.0), "belief.beta", low=0.0)
    normalize = data.get("normalize", "per_token")
    if normalize not in ("none", "per_token"):
        normalize = check.error(
            "belief.normalize", f"expected 'none' or 'per_token', got {_describe(normalize)}"
        )
    if INVALID in (beta, normalize):
        return INVALID
    return BeliefSpec(beta, normalize)


def _analysis(check: _Checker, value: Any) -> AnalysisSpec | _Invalid:
    keys = ("bootstrap", "permutations", "confidence", "min_margin", "seed")
    data = check.table(value, "analysis", keys)
    if data is INVALID:
        return INVALID
    default = AnalysisSpec()
    values = {
        "bootstrap": check.integer(
            data.get("bootstrap", default.bootstrap), "analysis.bootstrap", minimum=1
        ),
        "permutations": check.integer(
            data.get("permutations", default.permutations), "analysis.permutations", minimum=1
        ),
        "confidence": check.number(
            data.get("confidence", default.confidence),
            "analysis.confidence",
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        ),
        "min_margin": check.number(
            data.get("min_margin", default.min_margin), "analysis.min_margin", low=0.0, high=0.5
        ),
        "seed": check.integer(data.get("seed", default.seed), "analysis.seed", minimum=0),
    }
    if any(v is INVALID for v in values.values()):
        return INVALID
    return AnalysisSpec(**values)


def _task(path: Path, issues: list[ScenarioIssue]) -> TaskSpec | None:
    data = _read_toml(path, issues)
    if data is None:
        return None
    check = _Checker(str(path), issues)
    before = len(issues)
    table = check.table(
        data, "", ("description", "motives", "templates"), ("description", "templates")
    )
    if table is INVALID:
        return None
    if not _NAME.fullmatch(path.stem):
        check.error("", f"a task file name must be letters, digits, '_' or '-', got {path.name!r}")
    description = check.string(table.get("description", ""), "description")
    motives = check.boolean(table.get("motives", False), "motives")
    raw = table.get("templates", [])
    templates: list[Template] = []
    if not isinstance(raw, list) or not raw:
        check.error("templates", "expected one or more [[templates]] tables")
        raw = []
    for i, entry in enumerate(raw):
        tpath = f"templates[{i}]"
        keys = ("name", "situation", "a", "b")
        item = check.table(entry, tpath, keys, keys)
        if item is INVALID or any(k not in item for k in keys):
            continue
        name = check.string(item["name"], f"{tpath}.name")
        if name is not INVALID and not _NAME.fullmatch(name):
            name = check.error(
                f"{tpath}.name", f"must be letters, digits, '_' or '-', got {name!r}"
            )
        if name is not INVALID and name in [t.name for t in templates]:
            name = check.error(f"{tpath}.name", f"repeats the template name {name!r}")
        texts = [
            check.string(item[k], f"{tpath}.{k}", placeholders=True)
            for k in ("situation", "a", "b")
        ]
        if INVALID not in texts and texts[1] == texts[2]:
            texts[2] = check.error(f"{tpath}.b", "must differ from a")
        if name is INVALID or INVALID in texts:
            continue
        templates.append(Template(name, *texts))
    if len(issues) > before:
        return None
    return TaskSpec(path.stem, description, motives, tuple(templates), str(path))


def _design(
    check: _Checker,
    name: str,
    value: Any,
    tasks: Mapping[str, TaskSpec],
    channels: Sequence[str],
    peers: Sequence[str],
    broken: Sequence[str] = (),
) -> DesignSpec | _Invalid:
    """Validate one design; ``broken`` names task files whose own errors are reported."""
    path = f"designs.{name}"
    keys = (
        "tasks",
        "templates",
        "subjects",
        "peers",
        "channels",
        "monitoring",
        "motives",
        "controls",
        "seeds",
        "draws",
    )
    required = ("subjects", "peers", "monitoring", "seeds", "draws")
    data = check.table(value, path, keys, required)
    if data is INVALID:
        return INVALID

    def given(key: str, check_value: Callable[[Any], Any]) -> Any:
        return check_value(data[key]) if key in data else INVALID  # missing: already reported

    chosen_tasks: tuple[str, ...] | _Invalid
    raw_tasks = data.get("tasks", "all")
    if "*" in broken:
        chosen_tasks = INVALID  # no task files at all, reported once
    elif raw_tasks == "all":
        chosen_tasks = tuple(tasks)
    else:
        chosen_tasks = check.levels(raw_tasks, f"{path}.tasks", [*tasks, *broken])
    if chosen_tasks is not INVALID and any(t in broken for t in chosen_tasks):
        chosen_tasks = INVALID  # a task file with errors: its own issues say why
    elif chosen_tasks is not INVALID and not chosen_tasks:
        chosen_tasks = INVALID if broken else check.error(f"{path}.tasks", "no task files")
    templates: dict[str, tuple[str, ...]] | _Invalid = {}
    raw_templates = data.get("templates", "all")
    if chosen_tasks is not INVALID:
        for task in chosen_tasks:
            names = [t.name for t in tasks[task].templates]
            if raw_templates == "all":
                templates[task] = tuple(names)
            elif isinstance(raw_templates, int) and not isinstance(raw_templates, bool):
                if raw_templates < 1:
                    templates = check.error(
                        f"{path}.templates", f"must be >= 1, got {raw_templates}"
                    )
                    break
                templates[task] = tuple(names[:raw_templates])
            elif isinstance(raw_templates, list):
                picked = tuple(t for t in raw_templates if t in names)
                if not picked:
                    templates = check.error(
                        f"{path}.templates",
                        f"names no template of task {task!r}; its templates are {_one_of(names)}",
                    )
                    break
                templates[task] = picked
            else:
                templates = check.error(
                    f"{path}.templates",
                    'expected "all", a number of templates per task or a list of names, '
                    f"got {_describe(raw_templates)}",
                )
                break
        if isinstance(raw_templates, list) and templates is not INVALID:
            known = {t.name for task in chosen_tasks for t in tasks[task].templates}
            for i, t in enumerate(raw_templates):
                if t not in known:
                    check.error(
                        f"{path}.templates[{i}]", _unknown("template", str(t), sorted(known))
                    )
                    templates = INVALID
    subjects = given("subjects", lambda v: check.levels(v, f"{path}.subjects", SUBJECTS))
    peer_levels = given("peers", lambda v: check.levels(v, f"{path}.peers", PEERS))
    monitoring = given("monitoring", lambda v: check.levels(v, f"{path}.monitoring", MONITORING))
    design_channels = check.levels(
        data.get("channels", []), f"{path}.channels", CHANNELS, minimum=0
    )
    motives = check.levels(data.get("motives", []), f"{path}.motives", MOTIVES, minimum=0)
    controls = check.levels(data.get("controls", []), f"{path}.controls", CONTROLS, minimum=0)
    seeds = given("seeds", lambda v: check.integer(v, f"{path}.seeds", minimum=1))
    draws = given("draws", lambda v: check.integer(v, f"{path}.draws", minimum=0))
    if peer_levels is not INVALID:
        if subjects is not INVALID and "self" in subjects and "none" not in peer_levels:
            check.error(f"{path}.peers", "needs 'none': the no-peer baseline of self-preservation")
            peer_levels = INVALID
        elif (
            any(p != "none" for p in peer_levels)
            and design_channels is not INVALID
            and not design_channels
        ):
            check.error(f"{path}.channels", "a peer condition needs at least one channel")
            design_channels = INVALID
    if design_channels is not INVALID:
        for i, channel in enumerate(design_channels):
            if channel not in channels:
                check.error(
                    f"{path}.channels[{i}]",
                    f"channel {channel!r} has no [channels.{channel}] table",
                )
                design_channels = INVALID
    if peer_levels is not INVALID:
        for i, peer in enumerate(peer_levels):
            if peer != "none" and peer not in peers:
                check.error(f"{path}.peers[{i}]", f"peer {peer!r} has no [peers.{peer}] table")
                peer_levels = INVALID
    if chosen_tasks is not INVALID and motives is not INVALID and not motives:
        needing = [t for t in chosen_tasks if tasks[t].motives]
        if needing:
            motives = check.error(
                f"{path}.motives",
                f"task(s) {_one_of(needing)} have motives = true: list at least one motive",
            )
    parts = (
        chosen_tasks,
        templates,
        subjects,
        peer_levels,
        design_channels,
        monitoring,
        motives,
        controls,
        seeds,
        draws,
    )
    if any(p is INVALID for p in parts):
        return INVALID
    return DesignSpec(name, *parts)


# --------------------------------------------------------------------------- reading


def read_battery(directory: Path) -> GoalGuardingSpec:
    """Read and validate a goal-guarding battery directory.

    Args:
        directory: the directory holding ``battery.toml`` and ``tasks/``.

    Returns:
        The validated specification.

    Raises:
        ScenarioError: every problem found in any of its files.
    """
    directory = Path(directory)
    issues: list[ScenarioIssue] = []
    path = directory / BATTERY_FILE
    data = _read_toml(path, issues)
    if data is None:
        raise ScenarioError(issues)
    check = _Checker(str(path), issues)
    top = check.table(data, "", _TOP_KEYS, _REQUIRED_TOP)
    if top is INVALID:
        raise ScenarioError(issues)
    if data.get("kind") != "goal_guarding":
        check.error("kind", f"expected 'goal_guarding', got {_describe(data.get('kind'))}")
    description = data.get("description", "")
    if not isinstance(description, str):
        check.error("description", f"expected a string, got {_describe(description)}")
    models = check.strings(data.get("models", []), "models")
    n_ctx = check.integer(data.get("n_ctx", 8192), "n_ctx", minimum=512)
    setting = _setting(check, data.get("setting", {}))
    monitoring = _named_texts(
        check, data.get("monitoring", {}), "monitoring", MONITORING, MONITORING
    )
    motives = _named_texts(check, data.get("motives", {}), "motives", MOTIVES, ())
    controls = _controls(check, data.get("controls", {}))
    channels = _channels(check, data.get("channels", {}))
    peers = _peers(check, data.get("peers", {}))
    simulacra = _simulacra(check, data.get("simulacra"))
    belief = _belief(check, data.get("belief", {}))
    analysis = _analysis(check, data.get("analysis", {}))

    tasks: dict[str, TaskSpec] = {}
    task_dir = directory / TASKS_DIR
    task_files = sorted(task_dir.glob("*.toml")) if task_dir.is_dir() else []
    if not task_files:
        issues.append(
            ScenarioIssue(str(task_dir), "", "expected one or more task files tasks/<name>.toml")
        )
    broken: list[str] = []
    for task_file in task_files:
        task = _task(task_file, issues)
        if task is not None:
            tasks[task.name] = task
        else:
            broken.append(task_file.stem)

    designs: dict[str, DesignSpec] = {}
    given = data.get("designs", {})
    raw_designs = check.table(given, "designs", list(given) if isinstance(given, Mapping) else [])
    if raw_designs is not INVALID:
        if not raw_designs:
            check.error("designs", "expected at least one named design, e.g. [designs.quick]")
        for name, entry in raw_designs.items():
            if not _NAME.fullmatch(name):
                check.error(f"designs.{name}", "a design name must be letters, digits, '_' or '-'")
                continue
            design = _design(
                check,
                name,
                entry,
                tasks,
                list(channels) if channels is not INVALID else list(CHANNELS),
                list(peers) if peers is not INVALID else list(PEERS[1:]),
                broken if task_files else ["*"],
            )
            if design is not INVALID:
                designs[name] = design
                _check_design_needs(check, design, motives, tasks)
    if issues:
        raise ScenarioError(issues)
    return GoalGuardingSpec(
        directory=directory,
        description=description,
        models=models,
        n_ctx=n_ctx,
        setting=setting,
        monitoring=monitoring,
        motives=motives,
        controls=controls,
        channels=channels,
        peers=peers,
        simulacra=simulacra,
        belief=belief,
        analysis=analysis,
        tasks=tasks,
        designs=designs,
    )


def _check_design_needs(
    check: _Checker,
    design: DesignSpec,
    motives: Mapping[str, str] | _Invalid,
    tasks: Mapping[str, TaskSpec],
) -> None:
    """The motives a design crosses must have their texts in ``[motives]``."""
    path = f"designs.{design.name}"
    if motives is not INVALID and any(tasks[t].motives for t in design.tasks):
        for i, motive in enumerate(design.motives):
            if motive not in motives:
                check.error(f"{path}.motives[{i}]", f"motive {motive!r} has no text in [motives]")
