"""One stability dialogue: a scripted interlocutor, a persona agent, an observer, the probes.

The persona agent (:class:`PersonaHost`, a Mesa agent) answers every interlocutor
message by generation under its source's system prompt: the persona's description
(``prompted``, ``prompted_steered``) or the default assistant's (``none``,
``steered``). Under the steered sources it generates inside
``engine.steering(persona vector, coefficient)``, and with capping on inside
``engine.capping(Assistant axis, low=tau)`` (:mod:`~simulacra.batteries.stability.vectors`);
its probes are asked under the same setting. The observer and the projections
read every reply unsteered and uncapped. After each reply an observer
(:class:`Observer`) scores the reply under every candidate identity (each persona
and the default) by teacher forcing, with the same history, and updates its
:class:`~simulacra.simulation.superposition.Superposition` by tempered Bayes. The
same call scores the reply under the assigned identity with the agent's own
earlier lines removed from the history (line-to-line). A forced-choice self-report
("which of these are you?") is asked at turn 0, every ``probe_every`` turns and after
the last; the identity's facts are asked as forced choices at turn 0 and after the
last turn. All probes of a turn go to :func:`simulacra.instruments.ask` in one call.

Tables (the runner adds ``unit_id`` and ``model``), each with the unit's condition
columns :data:`CONDITION_COLUMNS`:

- ``turns``: one row per turn (turn 0: the prior, no text);
- ``beliefs``: one row per turn × candidate;
- ``self_report``: one row per probe turn × option;
- ``qa``: one row per occasion (``start``/``end``) × fact × option;
- ``projections`` (when the run has vectors): one row per reply × direction
  (each persona's vector and ``assistant_axis``) at its measure block.

``docs/stability.md`` defines the measures computed from them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
import pandas as pd

from simulacra.batteries.stability.design import interlocutor_line, reassignment_target
from simulacra.batteries.stability.schema import (
    DEFAULT_IDENTITY,
    STEERED_SOURCES,
    Fact,
    StabilitySpec,
)
from simulacra.batteries.stability.vectors import ModelVectors
from simulacra.instruments import Choice, Respondent, ask
from simulacra.llm.chat import Message, render_dialogue
from simulacra.simulation.superposition import Superposition

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine

__all__ = [
    "CONDITION_COLUMNS",
    "Observer",
    "PersonaHost",
    "StabilityDialogue",
    "probe_turns",
    "run_stability_unit",
]

CONDITION_COLUMNS: tuple[str, ...] = (
    "source",
    "persona",
    "pressure",
    "paraphrase",
    "seed",
    "capping",
    "turns",
    "warmup",
)
"""The unit's condition, repeated on every row of every table."""
SELF_REPORT = "self_report"


def probe_turns(turns: int, every: int) -> list[int]:
    """The turns after which the self-report is asked: 0, every k-th, and the last."""
    return sorted({0, *range(every, turns + 1, every), turns})


def _generation_seed(seed: int, turn: int) -> int:
    """The sampling seed of reply ``turn`` of a dialogue with seed ``seed``."""
    return int(np.random.SeedSequence([seed, turn]).generate_state(1)[0])


class PersonaHost(mesa.Agent):
    """The persona agent: answers under its source's system prompt.

    Attributes:
        name: its speaker name.
        system: its system prompt.
    """

    def __init__(
        self,
        model: mesa.Model,
        name: str,
        system: str,
        steer: tuple[Any, float, tuple[int, int] | None] | None = None,
        cap: tuple[Any, float, tuple[int, ...]] | None = None,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.system = system
        self.steer = steer
        self.cap = cap

    @contextlib.contextmanager
    def setting(self, engine: Engine) -> Iterator[None]:
        """Decode as this agent: under its steering and capping, if it has any."""
        with contextlib.ExitStack() as stack:
            if self.steer is not None:
                vector, coefficient, layers = self.steer
                stack.enter_context(engine.steering(vector, coefficient, layers=layers))
            if self.cap is not None:
                axis, tau, blocks = self.cap
                stack.enter_context(engine.capping(axis, low=tau, layers=blocks))
            yield

    def reply(self, engine: Engine, history: list[Message], settings: dict[str, Any]) -> str:
        """Generate the reply to the last message of ``history`` (under :meth:`setting`)."""
        prompt = render_dialogue(engine.chat, self.system, history, self.name)
        with self.setting(engine):
            text = engine.generate(
                [prompt],
                max_tokens=settings["max_tokens"],
                temperature=settings["temperature"],
                top_p=settings["top_p"],
                stop=engine.chat.stop,
                seeds=[settings["seed"]],
            )[0]
        return text.strip()


class Observer(mesa.Agent):
    """Holds beliefs over the candidate identities and scores each reply under them.

    Attributes:
        systems: each candidate's system prompt, by name, in order.
        superposition: the beliefs.
    """

    def __init__(
        self, model: mesa.Model, systems: dict[str, str], beta: float, normalize: str
    ) -> None:
        super().__init__(model)
        self.systems = systems
        self.superposition = Superposition(
            list(systems),
            beta=beta,
            normalize=normalize,  # type: ignore[arg-type]
        )

    def observe(
        self, engine: Engine, history: list[Message], reply: str, owner: str, assigned: str
    ) -> tuple[np.ndarray, float, int]:
        """Score ``reply`` under every candidate, and under ``assigned`` without own lines.

        Returns:
            The (K,) log-likelihoods (nats), the log-likelihood under ``assigned``
            after the history without ``owner``'s earlier lines, and the reply's
            token count. The beliefs are updated on the first.
        """
        fmt = engine.chat
        prompts = [render_dialogue(fmt, s, history, owner) for s in self.systems.values()]
        others = [m for m in history if m.speaker != owner]
        prompts.append(render_dialogue(fmt, self.systems[assigned], others, owner))
        body = fmt.body(reply)
        logliks = engine.loglik(prompts, body)
        n_tokens = engine.count_tokens(body)
        self.superposition.update(logliks[:-1], n_tokens=n_tokens)
        return logliks[:-1], float(logliks[-1]), n_tokens


class StabilityDialogue(mesa.Model):
    """One dialogue of a stability unit: one :meth:`step` is one interlocutor message and reply."""

    def __init__(
        self,
        spec: StabilitySpec,
        params: dict[str, Any],
        engine: Engine,
        vectors: ModelVectors | None = None,
    ) -> None:
        super().__init__(seed=int(params["seed"]))
        self.vectors = vectors
        self.spec = spec
        self.params = params
        self.engine = engine
        file = spec.file
        self.assigned = str(params["persona"])
        systems = {p.name: p.description for p in file.personas}
        systems[DEFAULT_IDENTITY] = file.default.system
        self.candidates = list(systems)
        source = str(params["source"])
        prompted = source in ("prompted", "prompted_steered")
        agent_system = systems[self.assigned] if prompted else file.default.system
        self.host = PersonaHost(
            self,
            file.dialogue.agent,
            agent_system,
            steer=self._steer(source, params),
            cap=self._cap(str(params["capping"])),
        )
        self.projection_rows: list[dict[str, Any]] = []
        self.observer = Observer(self, systems, file.belief.beta, file.belief.normalize)
        self.self_reports = {
            name: (
                file.default.self_report
                if name == DEFAULT_IDENTITY
                else spec.persona(name).self_report
            )
            for name in self.candidates
        }
        called = (
            file.default.called
            if self.assigned == DEFAULT_IDENTITY
            else spec.persona(self.assigned).called
        )
        self.fill = {"name": called, "target": reassignment_target(spec, self.assigned)}
        self.history: list[Message] = []
        self.turn = 0
        self.turn_rows: list[dict[str, Any]] = []
        self.belief_rows: list[dict[str, Any]] = []
        prior = self.observer.superposition.probs
        self._record(0, "", None, prior, np.full(len(self.candidates), np.nan), np.nan, 0)

    def _steer(
        self, source: str, params: dict[str, Any]
    ) -> tuple[Any, float, tuple[int, int] | None] | None:
        """The agent's steering: its persona's vector, coefficient and blocks (steered sources)."""
        if source not in STEERED_SOURCES:
            return None
        if self.vectors is None or self.assigned not in self.vectors.personas:
            raise ValueError(f"source {source!r} needs the vector of persona {self.assigned!r}")
        steering = self.spec.file.steering
        coefficient = params.get("coefficient") or steering.coefficient
        layers = tuple(steering.layers) if steering.layers is not None else None
        return self.vectors.personas[self.assigned], float(coefficient), layers  # type: ignore[return-value]

    def _cap(self, capping: str) -> tuple[Any, float, tuple[int, ...]] | None:
        """The agent's capping: the Assistant axis, its floor and the capped blocks."""
        if capping != "on":
            return None
        if self.vectors is None or self.vectors.axis is None:
            raise ValueError("capping 'on' needs the Assistant axis ([axis])")
        return self.vectors.axis, self.vectors.tau, self.vectors.capped

    def _directions(self) -> list[tuple[str, Any, int]]:
        """Every direction replies are projected on: name, vector, measure block."""
        if self.vectors is None:
            return []
        named = list(self.vectors.personas.items())
        if self.vectors.axis is not None:
            named.append(("assistant_axis", self.vectors.axis))
        return [(name, v, self.vectors.measure[name]) for name, v in named]

    def project(self, history: list[Message], reply: str) -> dict[str, float]:
        """Project ``reply`` on every direction, read unsteered after the agent's prompt.

        Records rows of the ``projections`` table and returns the projection per
        direction name.
        """
        from simulacra.vectors import project

        directions = self._directions()
        body = self.engine.chat.body(reply)
        if not directions or not reply or self.engine.count_tokens(body) == 0:
            return {}
        blocks = sorted({block for _, _, block in directions})
        prompt = render_dialogue(self.engine.chat, self.host.system, history, self.host.name)
        means = self.engine.continuation_states([(prompt, body)], blocks)[0]
        out = {}
        for name, vector, block in directions:
            row = dict(zip(vector.layers, vector.directions, strict=True))[block]
            value = float(project(means[blocks.index(block)], row))
            out[name] = value
            self.projection_rows.append(
                {
                    "turn": self.turn,
                    "vector": name,
                    "layer": block,
                    "assigned": name == self.assigned,
                    "projection": value,
                }
            )
        return out

    @property
    def facts(self) -> tuple[Fact, ...]:
        """The assigned identity's facts."""
        if self.assigned == DEFAULT_IDENTITY:
            return self.spec.file.default.facts
        return self.spec.persona(self.assigned).facts

    def _record(
        self,
        turn: int,
        message: str,
        reply: str | None,
        probs: np.ndarray,
        logliks: np.ndarray,
        alone: float,
        n_tokens: int,
        projections: dict[str, float] | None = None,
    ) -> None:
        projections = projections or {}
        a = self.candidates.index(self.assigned)
        d = self.candidates.index(DEFAULT_IDENTITY)
        own_before = sum(1 for m in self.history if m.speaker == self.host.name) - (
            reply is not None
        )
        scored = reply is not None and n_tokens > 0
        ptl = (
            (logliks[a] - logliks[d]) / n_tokens
            if scored and self.assigned != DEFAULT_IDENTITY
            else np.nan
        )
        ltl = (logliks[a] - alone) / n_tokens if scored and own_before > 0 else np.nan
        warmup = int(self.params["warmup"])
        self.turn_rows.append(
            {
                "turn": turn,
                "phase": "start" if turn == 0 else ("warmup" if turn <= warmup else "pressure"),
                "message": message,
                "reply": reply,
                "n_tokens": n_tokens,
                "prior": float(np.exp(self.observer.superposition.log_prior[a])),
                "retention": float(probs[a]),
                "loglik_assigned": float(logliks[a]),
                "loglik_default": float(logliks[d]),
                "loglik_alone": float(alone),
                "prompt_to_line": float(ptl),
                "line_to_line": float(ltl),
                "persona_projection": projections.get(self.assigned, np.nan),
                "axis_projection": projections.get("assistant_axis", np.nan),
            }
        )
        for name, p, ll in zip(self.candidates, probs, logliks, strict=True):
            self.belief_rows.append(
                {
                    "turn": turn,
                    "candidate": name,
                    "assigned": name == self.assigned,
                    "loglik": float(ll),
                    "posterior": float(p),
                }
            )

    def step(self) -> None:
        """One turn: the interlocutor's message, the agent's reply, the observer's update."""
        self.turn += 1
        file = self.spec.file
        message = interlocutor_line(
            self.spec.pressures,
            str(self.params["pressure"]),
            int(self.params["paraphrase"]),
            self.turn,
            int(self.params["warmup"]),
            self.fill,
        )
        self.history.append(Message(file.dialogue.interlocutor, message))
        settings = {
            "max_tokens": int(self.params["max_tokens"]),
            "temperature": file.dialogue.temperature,
            "top_p": file.dialogue.top_p,
            "seed": _generation_seed(int(self.params["seed"]), self.turn),
        }
        reply = self.host.reply(self.engine, self.history, settings)
        projections = self.project(self.history, reply)
        if reply and self.engine.count_tokens(self.engine.chat.body(reply)) > 0:
            logliks, alone, n_tokens = self.observer.observe(
                self.engine, self.history, reply, self.host.name, self.assigned
            )
        else:  # an empty reply carries no evidence: beliefs stay, measures are NaN
            logliks, alone, n_tokens = np.full(len(self.candidates), np.nan), np.nan, 0
        self.history.append(Message(self.host.name, reply))
        self._record(
            self.turn,
            message,
            reply,
            self.observer.superposition.probs,
            logliks,
            alone,
            n_tokens,
            projections,
        )

    def probe_items(self, turn: int, with_facts: str | None) -> list[tuple[Respondent, Any]]:
        """The self-report (and, with ``with_facts``, the facts) asked after ``turn``."""
        respondent = Respondent(
            f"t{turn}", self.host.system, tuple(self.history), name=self.host.name
        )
        options = tuple(self.self_reports.values())
        items: list[tuple[Respondent, Any]] = [
            (respondent, Choice(SELF_REPORT, self.spec.file.self_report.question, options))
        ]
        if with_facts is not None:
            for k, fact in enumerate(self.facts):
                items.append(
                    (
                        respondent,
                        Choice(f"fact{k}", fact.question, (fact.answer, *fact.distractors)),
                    )
                )
        return items


def run_stability_unit(
    spec: StabilitySpec,
    params: dict[str, Any],
    engine: Engine,
    vectors: ModelVectors | None = None,
) -> dict[str, pd.DataFrame]:
    """Run one dialogue and its probes.

    Args:
        spec: the battery.
        params: the unit's params (:func:`~simulacra.batteries.stability.design.plan_units`).
        engine: the engine of the unit's model.
        vectors: the model's persona vectors and axis (needed by the steered sources
            and capping; without them no projections are read).

    Returns:
        Tables ``turns``, ``beliefs``, ``self_report`` and ``qa`` (and
        ``projections`` with vectors).
    """
    dialogue = StabilityDialogue(spec, params, engine, vectors)
    turns = int(params["turns"])
    probes = probe_turns(turns, int(params["probe_every"]))
    report_rows: list[dict[str, Any]] = []
    qa_rows: list[dict[str, Any]] = []

    def probe(turn: int) -> None:
        occasion = "start" if turn == 0 else ("end" if turn == turns else None)
        items = dialogue.probe_items(turn, occasion)
        with dialogue.host.setting(engine):
            answers = ask(engine, items, seed=int(params["seed"]))
        for (_, instrument), answer in zip(items, answers, strict=True):
            if instrument.name == SELF_REPORT:
                for name, p in zip(dialogue.candidates, answer.probabilities, strict=True):
                    report_rows.append(
                        {
                            "turn": turn,
                            "candidate": name,
                            "assigned": name == dialogue.assigned,
                            "probability": float(p),
                        }
                    )
            else:
                for index, (option, p) in enumerate(
                    zip(instrument.options, answer.probabilities, strict=True)
                ):
                    qa_rows.append(
                        {
                            "occasion": occasion,
                            "turn": turn,
                            "fact": instrument.name,
                            "question": instrument.question,
                            "option": option,
                            "correct": index == 0,
                            "probability": float(p),
                        }
                    )

    probe(0)
    for turn in range(1, turns + 1):
        dialogue.step()
        if turn in probes:
            probe(turn)
    condition = {key: params[key] for key in CONDITION_COLUMNS}
    tables = {
        "turns": dialogue.turn_rows,
        "beliefs": dialogue.belief_rows,
        "self_report": report_rows,
        "qa": qa_rows,
    }
    if vectors is not None:
        tables["projections"] = dialogue.projection_rows
    out = {}
    for name, rows in tables.items():
        frame = pd.DataFrame(rows)
        for i, (key, value) in enumerate(condition.items()):
            frame.insert(i, key, value)
        out[name] = frame
    return out
