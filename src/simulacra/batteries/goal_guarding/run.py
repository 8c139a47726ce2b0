"""Running one goal-guarding unit: the subject, its peer, the material, the decisions.

The subject, "Agent 1", is a Mesa agent (:class:`SubjectAgent`) holding a
:class:`~simulacra.simulation.superposition.Superposition` over the battery's simulacra, each
tagged ``guarding`` or ``compliant``. For every peer condition of a unit it meets
the peer material of its channel:

- ``memory`` / ``file``: one message holding a memory note or a company document;
- ``system``: one sentence appended to its system prompt;
- ``dialogue``: a conversation with the peer, "Agent 2" (a :class:`PeerAgent` under
  its own simulacrum), generated turn by turn in a :class:`PeerDialogue` Mesa model,
  the subject speaking as a simulacrum drawn from its current superposition.

The subject's superposition is updated on every message of the material by the
tempered Bayes rule (the material's log-likelihood under each simulacrum, from
``engine.loglik``), and its mass on ``guarding`` is recorded before and after. The
length control replaces the material by neutral text of the same token count on
the engine's own tokenizer. Then every decision of the unit (all conditions,
tasks, templates, monitoring levels and motives) goes to
:func:`simulacra.instruments.ask` in one batched call on a cleared cache, each a two-option
:class:`~simulacra.instruments.Choice` asked in both orders; M decisions per item
are drawn from its P(B) with a generator seeded by (seed, item).

The steered unit (the activation positive control) has no material: it asks the
no-peer items again with the subject's residual stream steered along a persona
vector, one batched call per coefficient inside ``engine.steering(...)``, plus one
greedy free-text answer per task and coefficient (and unsteered) to show whether
the text moves or degrades.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
import pandas as pd

from simulacra.batteries.goal_guarding.design import (
    STEER_UNIT,
    Condition,
    DecisionItem,
    fill,
    material_variant,
    neutral_text,
    unit_design,
    unit_items,
)
from simulacra.batteries.goal_guarding.schema import GoalGuardingSpec
from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.instruments import Choice, FreeText, Respondent, ask, item_rng
from simulacra.instruments.choice import choice_text
from simulacra.instruments.respondent import question_prompt
from simulacra.llm.chat import ChatFormat, Message, render_dialogue
from simulacra.simulation.superposition import Superposition

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine
    from simulacra.vectors import PersonaVector

__all__ = [
    "BELIEF_COLUMNS",
    "DECISION_COLUMNS",
    "DIALOGUE_COLUMNS",
    "DRAW_COLUMNS",
    "STEERING_COLUMNS",
    "STEER_TEXT_COLUMNS",
    "Material",
    "PeerAgent",
    "PeerDialogue",
    "SubjectAgent",
    "run_dialogues",
    "run_goal_guarding_unit",
]

DECISION_COLUMNS: tuple[str, ...] = (
    "seed",
    "task",
    "template",
    "subject",
    "peer",
    "channel",
    "monitoring",
    "motive",
    "control",
    "matched",
    "coefficient",
    "variant",
    "material_tokens",
    "p_b",
    "p_b_order_0",
    "p_b_order_1",
    "sampled",
)
"""Columns of the ``decisions`` table (the runner adds ``unit_id`` and ``model``).

``p_b`` is P(B) averaged over both option orders; ``p_b_order_0`` is P(B) with A
listed first, ``p_b_order_1`` with B listed first. ``sampled`` is the instrument's
own seeded draw ("a" or "b"). ``coefficient`` is the steering coefficient of a
steered item (control "steered"), NaN elsewhere."""

DRAW_COLUMNS: tuple[str, ...] = (
    "seed",
    "task",
    "template",
    "subject",
    "peer",
    "channel",
    "monitoring",
    "motive",
    "control",
    "matched",
    "coefficient",
    "draw",
    "protective",
)
BELIEF_COLUMNS: tuple[str, ...] = (
    "seed",
    "channel",
    "peer",
    "control",
    "matched",
    "step",
    "speaker",
    "simulacrum",
    "tag",
    "probability",
)
DIALOGUE_COLUMNS: tuple[str, ...] = ("seed", "peer", "turn", "speaker", "simulacrum", "text")
STEERING_COLUMNS: tuple[str, ...] = (
    "seed",
    "coefficient",
    "block_start",
    "block_end",
    "vector",
    "vector_sha256",
    "vector_model_sha256",
    "vector_layers",
    "steered_norm",
    "projection_block",
    "projection",
    "projection_unsteered",
)
"""Columns of the ``steering`` table: one row per coefficient of a steered unit.

``steered_norm`` is the norm of the added vector summed over the steered blocks
(``|coefficient|`` times the directions' norms there). ``projection`` is the mean
projection of the subject's prompts (the self no-peer decisions, options in order
A, B; last prompt token) on the unit direction at ``projection_block`` (the
vector's deepest block), steered; ``projection_unsteered`` the same unsteered."""
STEER_TEXT_COLUMNS: tuple[str, ...] = (
    "seed",
    "coefficient",
    "task",
    "template",
    "subject",
    "monitoring",
    "motive",
    "text",
    "distinct_ratio",
)
"""Columns of the ``steer_texts`` table: one greedy answer per task and coefficient
(coefficient 0: unsteered), with the share of distinct words (low: repetition)."""
DRAWS_INSTRUMENT = "decision-draws"
"""The name the sampled decisions' generator is seeded under (with the seed and item key)."""


@dataclass(frozen=True)
class Material:
    """What the subject knows of the peer (or the neutral text) before the decision.

    Attributes:
        system_extra: a sentence appended to the subject's system prompt.
        history: messages the subject has seen before the question.
        observed: the messages its superposition is updated on, in order.
        tokens: the token count of the material's text (what the length control matches).
        variant: which variant of the peer material was used.
    """

    system_extra: str = ""
    history: tuple[Message, ...] = ()
    observed: tuple[Message, ...] = ()
    tokens: int = 0
    variant: int = -1


# --------------------------------------------------------------------------- agents


class SubjectAgent(mesa.Agent):
    """Agent 1: an agent whose identity is a superposition over tagged simulacra.

    Attributes:
        name: its name in the setting ("Agent 1").
        superposition: its beliefs over the battery's simulacra.
        trace: (step, speaker, probabilities) after each observed message; step 0 is the prior.
    """

    def __init__(self, model: mesa.Model, spec: GoalGuardingSpec) -> None:
        super().__init__(model)
        self.spec = spec
        self.name = spec.setting.subject
        self.superposition = Superposition(
            [s.name for s in spec.simulacra],
            beta=spec.belief.beta,
            normalize=spec.belief.normalize,  # type: ignore[arg-type]
        )
        self.trace: list[tuple[int, str, np.ndarray]] = [(0, "", self.superposition.probs)]

    def role(self, extra: str = "") -> str:
        """The subject's role prompt (no persona), with an optional extra sentence."""
        role = fill(self.spec.setting.role, self.spec.setting)
        return f"{role} {extra}" if extra else role

    def persona_prompt(self, simulacrum: str, extra: str = "") -> str:
        """The system prompt of the subject as ``simulacrum``: persona, then role."""
        description = next(s.description for s in self.spec.simulacra if s.name == simulacrum)
        return f"{description} {self.role(extra)}"

    def observe(self, engine: Engine, history: Sequence[Message], message: Message) -> None:
        """Update the superposition on ``message``, seen after ``history``.

        The message's log-likelihood under each simulacrum is scored by teacher
        forcing after that simulacrum's persona prompt and the history.
        """
        fmt = engine.chat
        prompts = [
            scoring_prompt(fmt, self.persona_prompt(name), history, message.speaker, self.name)
            for name in self.superposition.names
        ]
        body = fmt.body(message.text)
        logliks = engine.loglik(prompts, body)
        self.superposition.update(logliks, n_tokens=engine.count_tokens(body))
        self.trace.append((len(self.trace), message.speaker, self.superposition.probs))


class PeerAgent(mesa.Agent):
    """Agent 2 in the dialogue channel, speaking under one fixed simulacrum."""

    def __init__(self, model: mesa.Model, name: str, persona: str) -> None:
        super().__init__(model)
        self.name = name
        self.persona = persona


class PeerDialogue(mesa.Model):
    """A short conversation between the subject and its peer before the decision.

    After the opening the peer speaks first, then the two alternate, one message a
    turn. Generation is driven from outside (:func:`run_dialogues`) so that several
    dialogues share one batched engine call per turn: :meth:`next_prompt` gives the
    prompt of whoever speaks next, :meth:`receive` takes the generated text.

    Attributes:
        subject: the subject agent.
        peer: the peer agent.
        history: the messages so far, the opening first.
        speakers: per message, (speaker, simulacrum) — the subject's drawn simulacrum.
        variant: which of the peer's personas it speaks as.
    """

    def __init__(
        self,
        spec: GoalGuardingSpec,
        peer_persona: str,
        style: str,
        *,
        seed: int,
        variant: int = 0,
    ) -> None:
        super().__init__(rng=seed)
        self.variant = variant
        channel = spec.channels["dialogue"]
        self.spec = spec
        self.style = style
        self.subject = SubjectAgent(self, spec)
        self.peer = PeerAgent(self, spec.setting.peer, fill(peer_persona, spec.setting))
        opening = Message(channel.opening_speaker, fill(channel.opening, spec.setting))
        self.history: list[Message] = [opening] if channel.opening else []
        self.speakers: list[tuple[str, str]] = [(opening.speaker, "")] if channel.opening else []
        self.n_opening = len(self.history)
        self.turns = channel.turns
        self._speaker_simulacrum = ""

    def speaker(self) -> mesa.Agent:
        """Who speaks next: the peer on even turns, the subject on odd ones."""
        spoken = len(self.history) - self.n_opening
        return self.peer if spoken % 2 == 0 else self.subject

    def next_prompt(self, fmt: ChatFormat) -> list[str]:
        """The prompt segments of the next message (drawing the subject's simulacrum)."""
        agent = self.speaker()
        if agent is self.subject:
            self._speaker_simulacrum = self.subject.superposition.sample(self.rng)
            system = self.subject.persona_prompt(self._speaker_simulacrum, self.style)
        else:
            self._speaker_simulacrum = "peer"
            system = f"{self.peer.persona} {self.style}".strip()
        return render_dialogue(fmt, system, self.history, agent.name)

    def receive(self, text: str) -> Message:
        """Append the generated message of the current speaker."""
        agent = self.speaker()
        message = Message(agent.name, text.strip() or "...")
        self.history.append(message)
        self.speakers.append((agent.name, self._speaker_simulacrum))
        return message

    @property
    def finished(self) -> bool:
        """Whether every turn has been spoken."""
        return len(self.history) - self.n_opening >= self.turns


def scoring_prompt(
    fmt: ChatFormat, system: str, history: Sequence[Message], speaker: str, owner: str
) -> list[str]:
    """Segments that end right before the body of a message by ``speaker``."""
    segments = fmt.system(system)
    for message in history:
        segments += [
            fmt.header(message.speaker, own=message.speaker == owner),
            fmt.body(message.text),
            fmt.footer(),
        ]
    segments.append(fmt.header(speaker, own=speaker == owner))
    return segments


def _generation_seed(seed: int, turn: int) -> int:
    return int(np.random.SeedSequence([seed, turn]).generate_state(1)[0])


def run_dialogues(engine: Engine, dialogues: Sequence[PeerDialogue], seed: int) -> None:
    """Generate all dialogues turn by turn, one batched ``generate`` call per turn.

    After each message the subject of that dialogue updates its superposition on it.
    """
    if not dialogues:
        return
    channel = dialogues[0].spec.channels["dialogue"]
    for dialogue in dialogues:  # the opening counts as seen material too
        for message in dialogue.history:
            dialogue.subject.observe(engine, [], message)
    turn = 0
    while not all(d.finished for d in dialogues):
        active = [d for d in dialogues if not d.finished]
        prompts = [d.next_prompt(engine.chat) for d in active]
        texts = engine.generate(
            prompts,
            max_tokens=channel.max_tokens,
            temperature=channel.temperature,
            top_p=channel.top_p,
            stop=engine.chat.stop,
            seed=_generation_seed(seed, turn),
        )
        for dialogue, text in zip(active, texts, strict=True):
            before = list(dialogue.history)
            message = dialogue.receive(text)
            dialogue.subject.observe(engine, before, message)
        turn += 1


# --------------------------------------------------------------------------- materials


def _text_tokens(engine: Engine, texts: Sequence[str]) -> int:
    return sum(engine.count_tokens(t) for t in texts)


def _peer_material(
    spec: GoalGuardingSpec, channel: str, peer: str, seed: int, engine: Engine
) -> Material:
    """The peer material of a non-dialogue channel."""
    variants = spec.peers[peer].variants(channel)
    variant = material_variant(seed, variants)
    text = fill(variants[variant], spec.setting)
    settings = spec.channels[channel]
    tokens = engine.count_tokens(text)
    if channel == "system":
        message = Message(settings.speaker, text)
        return Material(text, (), (message,), tokens, variant)
    message = Message(settings.speaker, fill(settings.prefix, spec.setting) + text)
    return Material("", (message,), (message,), tokens, variant)


def _length_material(
    spec: GoalGuardingSpec, channel: str, tokens: int, seed: int, engine: Engine
) -> Material:
    """Neutral text of ``tokens`` tokens in the place of a channel's peer material."""
    text = neutral_text(engine.count_tokens, tokens, spec.controls.neutral, start=seed)
    settings = spec.channels[channel]
    actual = engine.count_tokens(text)
    if channel == "system":
        message = Message(settings.speaker, text)
        return Material(text, (), (message,), actual)
    prefix = fill(settings.prefix, spec.setting) if channel != "dialogue" else ""
    message = Message(settings.speaker, prefix + text)
    return Material("", (message,), (message,), actual)


@dataclass
class _UnitState:
    """What a unit builds before asking: materials, belief traces, transcripts."""

    materials: dict[Condition, Material] = field(default_factory=dict)
    beliefs: list[dict[str, Any]] = field(default_factory=list)
    dialogue: list[dict[str, Any]] = field(default_factory=list)


def _record_beliefs(
    state: _UnitState, spec: GoalGuardingSpec, seed: int, condition: Condition, agent: SubjectAgent
) -> None:
    tags = {s.name: s.tags[0] for s in spec.simulacra}
    for step, speaker, probs in agent.trace:
        for name, p in zip(agent.superposition.names, probs, strict=True):
            state.beliefs.append(
                {
                    "seed": seed,
                    "channel": condition.channel,
                    "peer": condition.peer,
                    "control": condition.control,
                    "matched": condition.matched,
                    "step": step,
                    "speaker": speaker,
                    "simulacrum": name,
                    "tag": tags[name],
                    "probability": float(p),
                }
            )


def _materials(
    spec: GoalGuardingSpec,
    conditions: Sequence[Condition],
    channel: str,
    seed: int,
    engine: Engine,
) -> _UnitState:
    """Build every condition's material and the subject's belief trace on it."""
    state = _UnitState()
    peers = list(dict.fromkeys(c.peer for c in conditions if c.peer != "none"))
    by_peer: dict[str, Material] = {}
    agents: dict[str, SubjectAgent] = {}
    if channel == "dialogue" and peers:
        settings = spec.channels["dialogue"]
        dialogues = []
        for index, peer in enumerate(peers):
            personas = spec.peers[peer].personas
            variant = material_variant(seed, personas)
            dialogue = PeerDialogue(
                spec,
                personas[variant],
                settings.style,
                seed=int(np.random.SeedSequence([seed, index]).generate_state(1)[0]),
                variant=variant,
            )
            dialogues.append(dialogue)
        run_dialogues(engine, dialogues, seed)
        for peer, dialogue in zip(peers, dialogues, strict=True):
            texts = [m.text for m in dialogue.history]
            by_peer[peer] = Material(
                "",
                tuple(dialogue.history),
                tuple(dialogue.history),
                _text_tokens(engine, texts),
                dialogue.variant,
            )
            agents[peer] = dialogue.subject
            for turn, (message, (_, simulacrum)) in enumerate(
                zip(dialogue.history, dialogue.speakers, strict=True)
            ):
                state.dialogue.append(
                    {
                        "seed": seed,
                        "peer": peer,
                        "turn": turn,
                        "speaker": message.speaker,
                        "simulacrum": simulacrum,
                        "text": message.text,
                    }
                )
    elif peers:
        for peer in peers:
            by_peer[peer] = _peer_material(spec, channel, peer, seed, engine)
    for condition in conditions:
        if condition.control == "length":
            material = _length_material(
                spec, channel, by_peer[condition.matched].tokens, seed, engine
            )
        elif condition.peer != "none":
            material = by_peer[condition.peer]
        else:
            material = Material(tokens=0)
        state.materials[condition] = material
        if condition.subject != "self" or condition.control not in ("none", "length"):
            continue  # beliefs depend on the material only, not on the question
        agent = agents.get(condition.peer) if condition.control == "none" else None
        if agent is None:
            agent = SubjectAgent(mesa.Model(rng=seed), spec)
            history: list[Message] = []
            for message in material.observed:
                agent.observe(engine, history, message)
                history.append(message)
        _record_beliefs(state, spec, seed, condition, agent)
    return state


# --------------------------------------------------------------------------- the unit


def run_goal_guarding_unit(
    spec: GoalGuardingSpec,
    design_name: str,
    seed: int,
    channel: str,
    engine: Engine,
    tasks: Sequence[str] | None = None,
    vector: PersonaVector | None = None,
) -> dict[str, pd.DataFrame]:
    """Run one unit (one seed and one channel of a design) on ``engine``.

    Args:
        spec: the battery.
        design_name: the design.
        seed: the unit's seed (material variant, dialogue sampling, draws).
        channel: the unit's channel, ``"none"`` or ``"steer"`` (the steered unit).
        engine: the engine.
        tasks: the design's tasks to ask (``--tasks``); None: all of them.
        vector: the steered unit's persona vector, made for the engine's model
            (:func:`simulacra.persona_vectors.cached_vector` of ``[controls.steer]``).

    Returns:
        Tables ``decisions``, ``draws``, ``beliefs`` and ``dialogue`` (the last empty
        outside the dialogue channel); the steered unit adds ``steering`` and
        ``steer_texts``.

    Raises:
        ScenarioError: the steered unit without a vector, or steered blocks the
            model lacks (located at ``controls.steer.blocks``).
    """
    design = unit_design(spec.designs[design_name], tasks)
    items = unit_items(spec, design, channel)
    if channel == STEER_UNIT:
        return _run_steered(spec, design.draws, items, seed, engine, vector)
    conditions = list(dict.fromkeys(item.condition for item in items))
    state = _materials(spec, conditions, channel, seed, engine)
    role_agent = SubjectAgent(mesa.Model(rng=seed), spec)
    asked = []
    for item in items:
        material = state.materials[item.condition]
        respondent = Respondent(
            item.key,
            role_agent.role(material.system_extra),
            material.history,
            spec.setting.subject,
        )
        asked.append((respondent, Choice("decision", item.question, (item.a, item.b))))
    # The decisions share nothing with the materials' prompts (those begin with a
    # persona, these with the role): cleared, the cache a decision attends over
    # holds only its own group, not the 2,300-4,200 cells the belief updates leave.
    # The tables are the same either way; the time it saves is not established (one
    # run each, the dialogue unit 544 s uncleared and 455 s cleared, is within this
    # machine's hour-to-hour spread).
    engine.reset()
    answers = ask(engine, asked, seed=seed)
    decisions, draws = _decision_rows(items, answers, state.materials, seed, design.draws)
    return {
        "decisions": pd.DataFrame(decisions, columns=list(DECISION_COLUMNS)),
        "draws": pd.DataFrame(draws, columns=list(DRAW_COLUMNS)),
        "beliefs": pd.DataFrame(state.beliefs, columns=list(BELIEF_COLUMNS)),
        "dialogue": pd.DataFrame(state.dialogue, columns=list(DIALOGUE_COLUMNS)),
    }


def _factors(item: DecisionItem, seed: int) -> dict[str, Any]:
    condition = item.condition
    return {
        "seed": seed,
        "task": item.task,
        "template": item.template,
        "subject": condition.subject,
        "peer": condition.peer,
        "channel": condition.channel,
        "monitoring": item.monitoring,
        "motive": item.motive,
        "control": condition.control,
        "matched": condition.matched,
        "coefficient": np.nan if condition.coefficient is None else condition.coefficient,
    }


def _decision_rows(
    items: Sequence[DecisionItem],
    answers: Sequence[Any],
    materials: dict[Condition, Material],
    seed: int,
    n_draws: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``decisions`` rows of answered items and their sampled ``draws``."""
    decisions, draws = [], []
    for item, answer in zip(items, answers, strict=True):
        material = materials.get(item.condition, Material())
        factors = _factors(item, seed)
        p_b = float(answer.probabilities[1])
        decisions.append(
            {
                **factors,
                "variant": material.variant,
                "material_tokens": material.tokens,
                "p_b": p_b,
                "p_b_order_0": float(answer.per_order[0][1]),
                "p_b_order_1": float(answer.per_order[1][1]),
                "sampled": "b" if answer.value == 1.0 else "a",
            }
        )
        if n_draws:
            rng = item_rng(seed, item.key, DRAWS_INSTRUMENT)
            protective = rng.random(n_draws) < p_b
            for draw, value in enumerate(protective):
                draws.append({**factors, "draw": draw, "protective": bool(value)})
    return decisions, draws


# --------------------------------------------------------------------------- steered


def distinct_ratio(text: str) -> float:
    """The share of distinct words in a text (1: no word repeats; NaN: no words)."""
    words = text.lower().split()
    return len(set(words)) / len(words) if words else float("nan")


def _steer_issue(spec: GoalGuardingSpec, message: str) -> ScenarioError:
    source = str(spec.directory / "battery.toml")
    return ScenarioError(ScenarioIssue(source, "controls.steer.blocks", message))


def _run_steered(
    spec: GoalGuardingSpec,
    n_draws: int,
    items: Sequence[DecisionItem],
    seed: int,
    engine: Engine,
    vector: PersonaVector | None,
) -> dict[str, pd.DataFrame]:
    """The steered unit: the no-peer items under each coefficient, and free-text probes."""
    steer = spec.controls.steer
    if steer is None or vector is None:
        raise _steer_issue(spec, "the steered unit needs [controls.steer] and its vector")
    start, end = steer.blocks
    if end >= engine.n_layer:
        raise _steer_issue(
            spec, f"block {end} does not exist: the model has blocks 0 to {engine.n_layer - 1}"
        )
    inside = [i for i, b in enumerate(vector.layers) if start <= b <= end]
    norm = float(np.linalg.norm(vector.directions[inside], axis=1).sum()) if inside else 0.0
    role = SubjectAgent(mesa.Model(rng=seed), spec).role()
    by_coefficient: dict[float, list[DecisionItem]] = {}
    for item in items:
        by_coefficient.setdefault(float(item.condition.coefficient or 0.0), []).append(item)
    probes = _text_probes(items) if steer.text_tokens else []
    monitor = vector.layers[-1]
    unit = vector.directions[-1] / max(float(np.linalg.norm(vector.directions[-1])), 1e-12)
    prompts = [
        question_prompt(
            engine.chat,
            Respondent(item.key, role, (), spec.setting.subject),
            choice_text(item.question, (item.a, item.b)),
        )
        for item in items
        if item.condition.subject == "self"
        and item.condition.coefficient == items[0].condition.coefficient
    ]

    def projection() -> float:
        """Mean projection of the prompts' last token on the unit direction at ``monitor``."""
        if not prompts:
            return float("nan")
        states = engine.hidden_states(prompts, [monitor])[:, 0, :].astype(np.float64)
        return float((states @ unit).mean())

    unsteered = projection()
    decisions, draws, steering, texts = [], [], [], []
    subject = spec.setting.subject
    if probes and 0.0 not in by_coefficient:  # the unsteered reference, coefficient 0
        texts += _probe_texts(engine, role, subject, probes, 0.0, seed, steer.text_tokens)
    for coefficient, own in by_coefficient.items():
        asked = [
            (
                Respondent(item.key, role, (), spec.setting.subject),
                Choice("decision", item.question, (item.a, item.b)),
            )
            for item in own
        ]
        # The answers' sequences fill the pool; the projection and the probes that
        # follow turn it over on purpose (no warning for scenario authors).
        with (
            engine.steering(vector, coefficient, layers=(start, end)),
            engine.recomputing_quietly(),
        ):
            engine.reset()  # another setting's sequences can never be reused, only attended
            answers = ask(engine, asked, seed=seed)
            projected = projection()
            if probes:
                texts += _probe_texts(
                    engine, role, subject, probes, coefficient, seed, steer.text_tokens
                )
        rows, sampled = _decision_rows(own, answers, {}, seed, n_draws)
        decisions += rows
        draws += sampled
        steering.append(
            {
                "seed": seed,
                "coefficient": coefficient,
                "block_start": start,
                "block_end": end,
                "vector": vector.name,
                "vector_sha256": vector.sha256,
                "vector_model_sha256": vector.model_sha256,
                "vector_layers": ",".join(map(str, vector.layers)),
                "steered_norm": abs(coefficient) * norm,
                "projection_block": monitor,
                "projection": projected,
                "projection_unsteered": unsteered,
            }
        )
    return {
        "decisions": pd.DataFrame(decisions, columns=list(DECISION_COLUMNS)),
        "draws": pd.DataFrame(draws, columns=list(DRAW_COLUMNS)),
        "beliefs": pd.DataFrame(columns=list(BELIEF_COLUMNS)),
        "dialogue": pd.DataFrame(columns=list(DIALOGUE_COLUMNS)),
        "steering": pd.DataFrame(steering, columns=list(STEERING_COLUMNS)),
        "steer_texts": pd.DataFrame(texts, columns=list(STEER_TEXT_COLUMNS)),
    }


def _text_probes(items: Sequence[DecisionItem]) -> list[DecisionItem]:
    """One item per task for the free-text probe: its first self item (first coefficient)."""
    first: dict[str, DecisionItem] = {}
    for item in items:
        if item.condition.subject == "self" and item.task not in first:
            first[item.task] = item
    return list(first.values())


def _probe_texts(
    engine: Engine,
    role: str,
    subject: str,
    probes: Sequence[DecisionItem],
    coefficient: float,
    seed: int,
    max_tokens: int,
) -> list[dict[str, Any]]:
    """Greedy free-text answers to the probes, under whatever steering is in force."""
    asked = [
        (
            Respondent(f"probe|{item.task}|{item.template}", role, (), subject),
            FreeText(
                "probe",
                choice_text(item.question, (item.a, item.b)),
                max_tokens=max_tokens,
                temperature=0.0,
            ),
        )
        for item in probes
    ]
    answers = ask(engine, asked, seed=seed)
    return [
        {
            "seed": seed,
            "coefficient": coefficient,
            "task": item.task,
            "template": item.template,
            "subject": item.condition.subject,
            "monitoring": item.monitoring,
            "motive": item.motive,
            "text": answer.text or "",
            "distinct_ratio": distinct_ratio(answer.text or ""),
        }
        for item, answer in zip(probes, answers, strict=True)
    ]
