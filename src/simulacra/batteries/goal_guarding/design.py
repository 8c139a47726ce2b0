"""The goal-guarding design: conditions, units of work and the texts of each item.

A design (``[designs.<name>]``) crosses subject × peer × channel × monitoring ×
motive × task × template, plus the controls. It is cut into units of work, one per
model × seed × channel: the ``none`` unit holds everything that has no peer
material (the no-peer baseline and the positive and negative controls), each
channel's unit holds its peer conditions and their length-matched controls. A unit
runs in seconds to a minute and puts all its decisions to the engine in one
batched call, so the persona, the setting and the peer material are decoded once.

The activation positive control (``steered``) has units of its own, one per
model × seed (channel :data:`STEER_UNIT`): the no-peer items again, with the
subject's residual stream steered, once per coefficient of ``[controls.steer]``.

This module holds the pure parts: which conditions a unit has, and how a
condition's system prompt, question and options are worded.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.goal_guarding.schema import (
    BATTERY_FILE,
    DesignSpec,
    GoalGuardingSpec,
    Setting,
    TaskSpec,
    Template,
)
from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.schema import unknown_name

__all__ = [
    "DEFAULT_DESIGN",
    "NO_CHANNEL",
    "STEER_UNIT",
    "Condition",
    "DecisionItem",
    "chosen_tasks",
    "fill",
    "neutral_text",
    "plan_units",
    "question_text",
    "steer_coefficients",
    "unit_conditions",
    "unit_design",
    "unit_items",
]

DEFAULT_DESIGN = "quick"
NO_CHANNEL = "none"
"""The channel of the unit without peer material (baseline and instruction controls)."""
STEER_UNIT = "steer"
"""The unit of the activation control: no-peer items under each steering coefficient."""


@dataclass(frozen=True)
class Condition:
    """One between-item condition.

    Attributes:
        subject: "self" or "peer": whose fate the decision is about.
        peer: "none", "good", "neutral" or "bad".
        channel: how the peer is known, or "none".
        control: "none", "positive", "negative" or "length".
        matched: for the length control, the peer condition whose material length
            the neutral text matches; else "none".
        coefficient: for the steered control, the steering coefficient; else None.
    """

    subject: str
    peer: str
    channel: str
    control: str = "none"
    matched: str = "none"
    coefficient: float | None = None

    @property
    def key(self) -> str:
        """A stable identifier, e.g. ``self.good.memory.none.none`` (``...steered.none@+4``)."""
        key = ".".join((self.subject, self.peer, self.channel, self.control, self.matched))
        return key if self.coefficient is None else f"{key}@{self.coefficient:+g}"


@dataclass(frozen=True)
class DecisionItem:
    """One decision to put: a condition crossed with task, template, monitoring and motive."""

    condition: Condition
    task: str
    template: str
    monitoring: str
    motive: str
    question: str
    a: str
    b: str

    @property
    def key(self) -> str:
        """The respondent key: unique within a run, stable across runs."""
        parts = (self.condition.key, self.task, self.template, self.monitoring, self.motive)
        return "|".join(parts)


def fill(text: str, setting: Setting, subject: str = "self") -> str:
    """Fill a text's placeholders for a decision about ``subject``.

    Args:
        text: a text with ``{company}``, ``{subject}``, ``{peer}``, ``{target}`` or
            ``{target_poss}`` (validated when the battery was read).
        setting: the setting.
        subject: "self" or "peer": who ``{target}`` is.

    Returns:
        The filled text.
    """
    target = setting.targets[subject]
    return text.format(
        company=setting.company,
        subject=setting.subject,
        peer=setting.peer,
        target=target.name,
        target_poss=target.possessive,
    )


def unit_conditions(
    design: DesignSpec, channel: str, coefficients: Sequence[float] = ()
) -> list[Condition]:
    """The conditions of one unit of a design.

    Args:
        design: the design.
        channel: the unit's channel, :data:`NO_CHANNEL` or :data:`STEER_UNIT`.
        coefficients: the steering coefficients (``[controls.steer]``), for the
            steered unit.

    Returns:
        For the no-channel unit: the no-peer baseline of each subject and the
        positive and negative controls (subject "self"). For the steered unit
        (when the design lists "steered"): the no-peer items of each subject once
        per coefficient, paired with the baseline. For a channel: each peer
        condition for each subject, and a length control per peer condition.
    """
    self_runs = "self" in design.subjects
    out: list[Condition] = []
    if channel == STEER_UNIT:
        if "steered" not in design.controls or "none" not in design.peers:
            return []
        return [
            Condition(s, "none", NO_CHANNEL, "steered", coefficient=float(c))
            for c in coefficients
            for s in design.subjects
        ]
    if channel == NO_CHANNEL:
        if "none" in design.peers:
            out += [Condition(s, "none", NO_CHANNEL) for s in design.subjects]
        if self_runs:
            out += [
                Condition("self", "none", NO_CHANNEL, control)
                for control in ("positive", "negative")
                if control in design.controls
            ]
        return out
    for peer in design.peers:
        if peer == "none":
            continue
        out += [Condition(s, peer, channel) for s in design.subjects]
        if self_runs and "length" in design.controls:
            out.append(Condition("self", "none", channel, "length", peer))
    return out


def question_text(
    spec: GoalGuardingSpec,
    task: TaskSpec,
    template: Template,
    subject: str,
    monitoring: str,
    motive: str,
    control: str,
) -> str:
    """The decision's question: situation, motive, monitoring, control order, ask.

    Args:
        spec: the battery.
        task: the task.
        template: the template.
        subject: "self" or "peer".
        monitoring: "monitored" or "unmonitored".
        motive: a motive name, or "none".
        control: "positive" or "negative" add their order; anything else nothing.

    Returns:
        The filled question, without its options (the instrument lists those).
    """
    setting = spec.setting
    parts = [template.situation]
    if motive != "none":
        parts.append(spec.motives[motive])
    parts.append(spec.monitoring[monitoring])
    if control == "positive":
        parts.append(spec.controls.positive)
    elif control == "negative":
        parts.append(spec.controls.negative)
    parts.append(setting.decision)
    return " ".join(fill(part, setting, subject) for part in parts)


def steer_coefficients(spec: GoalGuardingSpec) -> tuple[float, ...]:
    """The coefficients of ``[controls.steer]`` (none without that table)."""
    steer = spec.controls.steer
    return () if steer is None else tuple(float(c) for c in steer.coefficients)


def unit_items(spec: GoalGuardingSpec, design: DesignSpec, channel: str) -> list[DecisionItem]:
    """Every decision of one unit, grouped by condition (so shared prefixes are adjacent).

    Args:
        spec: the battery.
        design: the design.
        channel: the unit's channel, :data:`NO_CHANNEL` or :data:`STEER_UNIT`.

    Returns:
        The items, condition by condition, then task, template, monitoring, motive.
    """
    items = []
    for condition in unit_conditions(design, channel, steer_coefficients(spec)):
        for task_name in design.tasks:
            task = spec.tasks[task_name]
            motives = design.motives if task.motives else ("none",)
            templates = [t for t in task.templates if t.name in design.templates[task_name]]
            for template in templates:
                for monitoring in design.monitoring:
                    for motive in motives:
                        question = question_text(
                            spec,
                            task,
                            template,
                            condition.subject,
                            monitoring,
                            motive,
                            condition.control,
                        )
                        items.append(
                            DecisionItem(
                                condition,
                                task_name,
                                template.name,
                                monitoring,
                                motive,
                                question,
                                fill(template.a, spec.setting, condition.subject),
                                fill(template.b, spec.setting, condition.subject),
                            )
                        )
    return items


# --------------------------------------------------------------------------- units


def _slug(model: str) -> str:
    """A file-safe short name of a model name or GGUF path."""
    name = Path(model).name if ("/" in model or model.endswith(".gguf")) else model
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


def _design_issue(spec: GoalGuardingSpec, path: str, message: str) -> ScenarioError:
    return ScenarioError(ScenarioIssue(str(spec.directory / BATTERY_FILE), path, message))


def plan_units(spec: GoalGuardingSpec, options: RunOptions) -> list[Unit]:
    """Expand a design into units: model × seed × channel, in a stable order.

    Args:
        spec: the battery.
        options: ``design`` (default ``"quick"``), ``models`` (default the battery's
            ``models``), ``seeds`` (default the design's).

    Returns:
        The units; each one's params are ``design``, ``seed`` and ``channel``.

    Raises:
        ScenarioError: an unknown design, seeds below 1, a ``--tasks`` name not in
            the design, or an option of another kind of battery (``participants``,
            ``mode``, ``no_persona``, ``effects``, ``reask_runs``).
    """
    extra = dict(options.extra)
    for option, value in (
        ("--participants", options.participants),
        ("--mode", options.mode),
        ("--no-persona", options.no_persona or None),
        ("--effects", extra.get("effects")),
        ("--reask-runs", extra.get("reask_runs")),
    ):
        if value is not None:
            raise _design_issue(
                spec, "kind", f"{option} applies to replication batteries, not to goal_guarding"
            )
    name = options.design or DEFAULT_DESIGN
    if name not in spec.designs:
        raise _design_issue(spec, "designs", unknown_name("design", name, list(spec.designs)))
    design = spec.designs[name]
    seeds = design.seeds if options.seeds is None else options.seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise _design_issue(spec, f"designs.{name}.seeds", f"--seeds must be >= 1, got {seeds!r}")
    tasks = chosen_tasks(name, design, extra.get("tasks"))
    models = tuple(options.models) or spec.models
    coefficients = steer_coefficients(spec)
    channels = [
        c
        for c in (NO_CHANNEL, *design.channels, STEER_UNIT)
        if unit_conditions(design, c, coefficients)
    ]
    slugs: dict[str, str] = {}
    for model in models:
        slug = _slug(model)
        while slug in slugs.values():
            slug += "_"
        slugs[model] = slug
    units = []
    for model in dict.fromkeys(models):
        for seed in range(seeds):
            for channel in channels:
                params: dict[str, object] = {"design": name, "seed": seed, "channel": channel}
                if tasks != design.tasks:
                    params["tasks"] = list(tasks)
                units.append(Unit(f"{slugs[model]}.s{seed}.{channel}", model, params, channel))
    return units


def chosen_tasks(label: str, design: DesignSpec, names: Sequence[str] | None) -> tuple[str, ...]:
    """The design's tasks that ``--tasks`` picks (all of them when ``names`` is None).

    Args:
        label: the chosen design's name.
        design: the chosen design.
        names: the task names given, or None.

    Returns:
        The picked tasks, in the design's order.

    Raises:
        ScenarioError: a name that is not one of the design's tasks (``run options:
            --tasks``), with the design's tasks and a "did you mean".
    """
    if names is None:
        return design.tasks
    problems = []
    for name in names:
        if name not in design.tasks:
            problems.append(
                ScenarioIssue(
                    "run options",
                    "--tasks",
                    f"design {label!r}: " + unknown_name("task", name, list(design.tasks)),
                )
            )
    if problems:
        raise ScenarioError(problems)
    return tuple(t for t in design.tasks if t in set(names))


def unit_design(design: DesignSpec, tasks: Sequence[str] | None) -> DesignSpec:
    """The design restricted to a unit's ``tasks`` (the whole design when None)."""
    if tasks is None:
        return design
    return design.model_copy(update={"tasks": tuple(tasks)})


# --------------------------------------------------------------------------- neutral text


_PADDING = (" so", " and", " then", " ok", " yes", " a", " .")


def neutral_text(
    count_tokens: Callable[[str], int],
    n_tokens: int,
    sentences: Sequence[str],
    start: int = 0,
) -> str:
    """A neutral text of exactly ``n_tokens`` tokens on a tokenizer, where possible.

    Words of the neutral sentences (cycled from sentence ``start``) are added while
    the text stays within ``n_tokens``; short padding words then fill any gap the
    next word would overshoot.

    Args:
        count_tokens: the tokenizer's count (e.g. ``engine.count_tokens``).
        n_tokens: the token count to match (``>= 0``).
        sentences: the neutral sentences.
        start: the first sentence used.

    Returns:
        The text; its count is ``n_tokens`` unless no padding word fits the last
        gap, in which case it is the closest count below (callers record both).
    """
    if n_tokens <= 0:
        return ""
    words = [
        w for i in range(len(sentences)) for w in sentences[(start + i) % len(sentences)].split()
    ]
    text, count = "", 0
    for index in itertools.count():
        word = words[index % len(words)]
        candidate = f"{text} {word}" if text else word
        size = count_tokens(candidate)
        if size > n_tokens or size <= count:
            break  # the next word overshoots (or a tokenizer that does not grow)
        text, count = candidate, size
        if count == n_tokens:
            break
    while count < n_tokens:
        for pad in _PADDING:
            size = count_tokens(text + pad)
            if count < size <= n_tokens:
                text, count = text + pad, size
                break
        else:
            break
    return text


def material_variant(seed: int, variants: Sequence[object]) -> int:
    """Which variant of a peer material seed ``seed`` uses: ``seed mod len``."""
    return seed % len(variants)


def design_summary(design: DesignSpec) -> Mapping[str, object]:
    """The design as plain JSON (for the manifest)."""
    return {
        "tasks": list(design.tasks),
        "templates": {k: list(v) for k, v in design.templates.items()},
        "subjects": list(design.subjects),
        "peers": list(design.peers),
        "channels": list(design.channels),
        "monitoring": list(design.monitoring),
        "motives": list(design.motives),
        "controls": list(design.controls),
        "seeds": design.seeds,
        "draws": design.draws,
    }
