"""DialogueModel: a Mesa model of agents talking, each narrowing its superposition.

One :meth:`DialogueModel.step` is one turn of the dialogue:

1. the scheduler picks a speaker, which picks the simulacrum to speak as;
2. the engine generates the utterance from that persona and the shared history;
3. the utterance is scored, in one batched engine call, under every simulacrum of
   every observing agent (the speaker alone with ``observe = "self"``, everyone with
   ``"all"``), and those agents update their superpositions;
4. probes scheduled after this turn are asked, all in one batched call
   (:mod:`simulacra.simulation.probes`, on :mod:`simulacra.instruments`);
5. the DataCollector records the transcript, every agent's beliefs and the probes.

With a ``[regeneration]`` table in the scenario, the utterance of each listed
turn is first redrawn M times per listed agent, without changing the dialogue
(:mod:`simulacra.simulation.regeneration`), into the table ``regeneration``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mesa
import numpy as np

from simulacra.llm.cache import DEFAULT_N_CTX, get_engine
from simulacra.llm.chat import Message
from simulacra.llm.engine import Engine
from simulacra.scenario import Scenario, load_scenario, parse_override
from simulacra.simulation import probes, regeneration
from simulacra.simulation.agent import EMPTY_UTTERANCE, PersonaAgent
from simulacra.simulation.projections import PROJECTION_COLUMNS, Projector
from simulacra.simulation.scheduling import Scheduler, make_scheduler
from simulacra.simulation.steering import AgentSteering, agent_steering

__all__ = ["SETTING_PATHS", "DialogueModel"]

SETTING_PATHS: dict[str, str] = {
    "turns": "dialogue.turns",
    "scheduler": "dialogue.scheduler",
    "max_tokens": "dialogue.max_tokens",
    "temperature": "dialogue.temperature",
    "top_p": "dialogue.top_p",
    "opening": "dialogue.opening",
    "beta": "belief.beta",
    "normalize": "belief.normalize",
    "observe": "belief.observe",
}
"""Keyword shortcuts accepted by :class:`DialogueModel` (for ``mesa.batch_run``)."""

_SEED_BOUND = 2**31 - 1


class DialogueModel(mesa.Model):
    """A multi-agent dialogue on a local language model.

    Attributes:
        scenario: the resolved scenario.
        seed: the seed of ``model.rng`` (persona draws, scheduler, sampling seeds).
        engine: the inference engine.
        scheduler: the turn-taking policy.
        persona_agents: the agents, in scenario order.
        history: the dialogue so far (the opening message first, if any).
        turn: the number of utterances so far.
        last_speaker: the agent who spoke last.
        timings: seconds spent generating, scoring and probing.
        datacollector: Mesa's collector, with tables ``transcript``, ``beliefs``,
            ``probes`` and ``regeneration`` (one row per observation).
    """

    def __init__(
        self,
        scenario: Scenario | str | os.PathLike[str],
        *,
        seed: int | None = None,
        engine: Engine | None = None,
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
        status: Callable[[str, bool], None] | None = None,
        **settings: Any,
    ) -> None:
        """Create the model.

        Args:
            scenario: a Scenario, or the path of a scenario file.
            seed: overrides the scenario's seed.
            engine: an engine to reuse; by default the process-wide engine for the
                scenario's model is loaded once and shared.
            overrides: ``{"dotted.key": value}`` or ``["key=value"]`` applied to the
                scenario and validated like the file.
            status: ``status(line, announce)`` before each step, for progress
                displays: ``announce`` is True for a step worth showing at once (the
                probes of a turn, the regeneration test) and False for a routine one
                (generating and scoring a turn), shown only if it runs long.
            **settings: shortcuts for common overrides (``beta``, ``turns``,
                ``observe``, ... see :data:`SETTING_PATHS`), handy with
                ``mesa.batch_run``.
        """
        scenario = _resolve_scenario(scenario, overrides, settings)
        seed = scenario.seed if seed is None else int(seed)
        super().__init__(seed=seed)
        self.scenario = scenario
        self.seed = seed
        self.status = status
        if engine is None:
            spec = scenario.model
            engine = get_engine(
                spec.path or spec.name,
                n_ctx=spec.n_ctx or DEFAULT_N_CTX,
                n_threads=spec.n_threads,
                n_gpu_layers=spec.n_gpu_layers,
            )
        self.engine = engine
        self.engine.reset()
        self.steering: dict[str, AgentSteering] = self._read_steering()
        self.projector: Projector | None = None
        if scenario.projections is not None:
            self.projector = Projector(
                scenario.projections,
                source=scenario.source,
                n_layer=engine.n_layer,
                n_embd=engine.n_embd,
            )
        self.scheduler: Scheduler = make_scheduler(scenario.dialogue.scheduler)
        self.persona_agents: list[PersonaAgent] = [PersonaAgent(self, s) for s in scenario.agents]
        # Each agent's starting MAP persona, ties broken now from model.rng in agent
        # order; the agent keeps it while it stays tied (Superposition.map).
        self.map_start: dict[str, str] = {a.name: a.map_simulacrum() for a in self.persona_agents}
        self.history: list[Message] = []
        dialogue = scenario.dialogue
        if dialogue.opening:
            self.history.append(Message(dialogue.opening_speaker, dialogue.opening))
        self.turn = 0
        self.last_speaker: PersonaAgent | None = None
        self.timings = {"generate_s": 0.0, "score_s": 0.0, "probe_s": 0.0, "regenerate_s": 0.0}
        if self.projector is not None:
            self.timings["project_s"] = 0.0
        self._history_budget = max(256, engine.n_ctx_seq // 4 - dialogue.max_tokens)
        self._last_loglik: dict[str, np.ndarray] = {}
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "turn": "turn",
                "speaker": lambda m: m.last_speaker.name if m.last_speaker else None,
            },
            agent_reporters={
                "simulacrum": "simulacrum",
                "map_simulacrum": lambda a: a.superposition.map(),
                "normalized_entropy": lambda a: a.superposition.normalized_entropy(),
            },
            tables={
                "transcript": ["turn", "speaker", "simulacrum", "text", "n_tokens"],
                "beliefs": ["turn", "agent", "simulacrum", "loglik", "posterior"],
                "probes": list(probes.PROBE_COLUMNS),
                "regeneration": list(regeneration.REGENERATION_COLUMNS),
                "projections": list(PROJECTION_COLUMNS),
            },
        )
        if self.history:
            n_tokens = len(engine.tokenize(engine.chat.body(dialogue.opening)))
            self._record_message(0, dialogue.opening_speaker, None, dialogue.opening, n_tokens)
        self._record_beliefs()
        self._ask_probes()
        # Model and agent reporters are collected after every step (as mesa.batch_run
        # expects); turn 0 lives in the tables above.

    # ---------------------------------------------------------------- stepping
    def step(self) -> None:
        """Play one turn: the scheduler's speaker talks and the observers update."""
        if self.turn >= self.scenario.dialogue.turns:
            self.running = False
            return
        speaker = self.scheduler.next_speaker(self)
        speaker.step()
        if self.turn >= self.scenario.dialogue.turns:
            self.running = False

    def take_turn(self, speaker: PersonaAgent) -> None:
        """Let ``speaker`` say one utterance and update the observers' beliefs."""
        self._regenerate(self.turn + 1)
        if self.status is not None:
            self.status(f"turn {self.turn + 1}: generating and scoring", False)
        dialogue = self.scenario.dialogue
        engine = self.engine
        simulacrum = speaker.choose_simulacrum()
        speaker.simulacrum = simulacrum
        started = time.perf_counter()
        prompt = speaker.prompt(simulacrum)
        with self.steered(speaker.name):
            text = (
                engine.generate(
                    [prompt],
                    max_tokens=dialogue.max_tokens,
                    temperature=dialogue.temperature,
                    top_p=dialogue.top_p,
                    stop=engine.chat.stop,
                    seed=int(self.rng.integers(_SEED_BOUND)),
                )[0].strip()
                or EMPTY_UTTERANCE
            )
        self.timings["generate_s"] += time.perf_counter() - started

        started = time.perf_counter()
        body = engine.chat.body(text)
        observers = self.persona_agents if self.scenario.belief.observe == "all" else [speaker]
        n_tokens = len(engine.tokenize(body))
        self._last_loglik = {}
        for agent, values in self._score(observers, body):
            agent.superposition.update(values, n_tokens=n_tokens)
            self._last_loglik[agent.name] = values
        self.timings["score_s"] += time.perf_counter() - started

        self.turn += 1
        self.last_speaker = speaker
        self.history.append(Message(speaker.name, text))
        self._record_message(self.turn, speaker.name, simulacrum, text, n_tokens)
        self._project(speaker.name, prompt, body)
        self._record_beliefs()
        self._ask_probes()
        self.datacollector.collect(self)

    def _score(
        self, observers: list[PersonaAgent], body: str
    ) -> list[tuple[PersonaAgent, np.ndarray]]:
        """Each observer's log-likelihoods of ``body`` under its simulacra.

        Unsteered observers are scored in one batched call; a steered observer
        scores under its own steering, in a call of its own.
        """
        plain = [a for a in observers if a.name not in self.steering]
        scored: dict[str, np.ndarray] = {}
        if plain:
            logliks = self.engine.loglik([a.prompt(k) for a in plain for k in a.support], body)
            offset = 0
            for agent in plain:
                scored[agent.name] = logliks[offset : offset + len(agent.support)]
                offset += len(agent.support)
        for agent in observers:
            if agent.name in self.steering:
                with self.steered(agent.name):
                    scored[agent.name] = self.engine.loglik(
                        [agent.prompt(k) for k in agent.support], body
                    )
        return [(agent, scored[agent.name]) for agent in observers]

    def steered(self, agent: str) -> contextlib.AbstractContextManager[object]:
        """The engine steered as ``agent``'s ``[agents.steer]`` says (a no-op without it)."""
        steering = self.steering.get(agent)
        if steering is None:
            return contextlib.nullcontext()
        return self.engine.steering(
            steering.vector, steering.coefficient, layers=steering.setting.layers
        )

    def _read_steering(self) -> dict[str, AgentSteering]:
        steered = {}
        for index, spec in enumerate(self.scenario.agents):
            if spec.steer is None:
                continue
            steered[spec.name] = agent_steering(
                spec.steer,
                agent=spec.name,
                field=f"agents[{index}].steer",
                source=self.scenario.source,
                n_layer=self.engine.n_layer,
                n_embd=self.engine.n_embd,
                model_sha256=self.engine.sha256,
            )
        return steered

    def _project(self, agent: str, prompt: list[str], body: str) -> None:
        """Record the utterance's projections on the scenario's vectors (``[projections]``)."""
        if self.projector is None:
            return
        started = time.perf_counter()
        with self.steered(agent):
            rows = self.projector.rows(self.engine, self.turn, agent, prompt, body)
        for row in rows:
            self.datacollector.add_table_row("projections", row)
        self.timings["project_s"] += time.perf_counter() - started

    def run_dialogue(self) -> None:
        """Step until the scenario's number of turns is reached."""
        while self.running:
            self.step()

    # ---------------------------------------------------------------- prompts
    def prompt_history(self) -> list[Message]:
        """The most recent messages that fit the prompt budget (a quarter of the context).

        Older messages are dropped whole, so a long dialogue keeps running; the
        engine then re-reads the shortened prompts.
        """
        engine = self.engine
        kept: list[Message] = []
        used = 0
        for message in reversed(self.history):
            used += len(engine.tokenize(engine.chat.body(message.text))) + 8
            if used > self._history_budget and kept:
                break
            kept.append(message)
        return kept[::-1]

    # ---------------------------------------------------------------- records
    def _record_message(
        self, turn: int, speaker: str, simulacrum: str | None, text: str, n_tokens: int
    ) -> None:
        self.datacollector.add_table_row(
            "transcript",
            {
                "turn": turn,
                "speaker": speaker,
                "simulacrum": simulacrum,
                "text": text,
                "n_tokens": n_tokens,
            },
        )

    def _record_beliefs(self) -> None:
        for agent in self.persona_agents:
            logliks = self._last_loglik.get(agent.name)
            probs = agent.superposition.probs
            for k, name in enumerate(agent.support):
                self.datacollector.add_table_row(
                    "beliefs",
                    {
                        "turn": self.turn,
                        "agent": agent.name,
                        "simulacrum": name,
                        "loglik": float(logliks[k]) if logliks is not None else float("nan"),
                        "posterior": float(probs[k]),
                    },
                )

    def _ask_probes(self) -> None:
        due = [p for p in self.scenario.probes if self.turn in p.turns]
        if due and self.status is not None:
            when = "before the first utterance" if self.turn == 0 else "after this turn"
            names = ", ".join(p.name for p in due)
            self.status(f"turn {self.turn}: asking {len(due)} probe(s) {when} ({names})", True)
        started = time.perf_counter()
        for row in probes.ask_probes(self, self.scenario.probes):
            self.datacollector.add_table_row("probes", row)
        self.timings["probe_s"] += time.perf_counter() - started

    # ---------------------------------------------------------------- regeneration test
    def _regenerate(self, turn: int) -> None:
        """Before utterance ``turn``, redraw the listed agents' next utterance M times.

        Runs only at the scenario's ``[regeneration]`` turns. It neither draws from
        the model's random generator (each agent's seed derives from the run's
        seed, the turn and the agent) nor changes the history or the beliefs, so
        the dialogue is the same as without the test.
        """
        spec = self.scenario.regeneration
        if spec is None or turn not in spec.turns:
            return
        if self.status is not None:
            self.status(
                f"turn {turn}: regenerating the next utterance of {len(spec.agents)} agent(s) "
                f"{spec.samples} times",
                True,
            )
        started = time.perf_counter()
        by_name = {a.name: a for a in self.persona_agents}
        for index, name in enumerate(spec.agents):
            table = regeneration.regenerate(
                self, by_name[name], spec.samples, (self.seed, turn, index), turn=turn
            )
            for row in table.to_dict("records"):
                self.datacollector.add_table_row("regeneration", row)
        self.timings["regenerate_s"] += time.perf_counter() - started


def _resolve_scenario(
    scenario: Scenario | str | os.PathLike[str],
    overrides: Mapping[str, Any] | Sequence[str] | None,
    settings: Mapping[str, Any],
) -> Scenario:
    unknown = sorted(set(settings) - set(SETTING_PATHS))
    if unknown:
        raise TypeError(
            f"DialogueModel got unknown settings {unknown}; "
            f"expected any of {sorted(SETTING_PATHS)} "
            "or overrides={'section.key': value}"
        )
    merged: dict[str, Any] = {}
    if isinstance(overrides, Mapping):
        merged.update(overrides)
    elif overrides:
        merged.update(parse_override(text) for text in overrides)
    merged.update({SETTING_PATHS[key]: value for key, value in settings.items()})
    if isinstance(scenario, Scenario):
        return scenario.with_overrides(merged) if merged else scenario
    return load_scenario(scenario, merged or None)
