"""Asking: many instruments put to many respondents in a few batched engine calls.

:func:`ask` renders every (respondent, instrument) item as a prompt: the persona,
its history and the interviewer's question, as :func:`render_dialogue` lays them
out. All scoring (every order of every choice, every Likert scale) goes to the
engine in ONE batched call, and all generation in one call per sampling setting,
so the prefixes items share (a persona prompt, its history, a question) are
decoded once and served from the KV cache afterwards. Many respondents are
answered group by group (:mod:`simulacra.instruments.grouping`), so that the
cache a token attends over stays small.

Randomness is per item: the sampled option, point or text of an item is seeded
from (seed, respondent key, instrument name) alone, by a stable hash, so an answer
does not depend on which other items share the call, nor on their order, nor on
the process (Python's salted ``hash()`` is never used).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from simulacra.instruments.answers import Answer
from simulacra.instruments.choice import (
    Choice,
    choice_text,
    option_orders,
    order_probabilities,
    softmax,
)
from simulacra.instruments.free_text import FreeText
from simulacra.instruments.grouping import ContextSize, common_length, plan_groups, trie_cells
from simulacra.instruments.likert import Likert, expected_point, likert_text, point_labels
from simulacra.instruments.number_parsing import parse_number
from simulacra.instruments.numeric import Numeric, numeric_text
from simulacra.instruments.respondent import Respondent, question_prompt
from simulacra.llm.chat import Message

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine
    from simulacra.llm.pool import CachedSequence

__all__ = [
    "Instrument",
    "ask",
    "instrument_text",
    "item_rng",
    "item_seed",
    "point_continuations",
    "redraw",
]

Instrument = Choice | Likert | Numeric | FreeText
"""Any of the four instruments."""

NUMERIC_STOP = ("\n",)
"""Numeric replies end at the end of their first line."""

GROUP_CELLS = 1024
"""About the most KV cells one group of respondents of :func:`ask` may need."""

GROUP_LAYOUT = 2
"""The version of how :func:`ask` lays groups out in the cache.

1: groups of whole respondent contexts, the cache cleared in between. 2: a context
larger than a group split between its items, cuts at the weakest link, the prefix
a group shares kept for the next; answers equal each item's asked alone."""


def item_seed(seed: int, respondent: str, instrument: str) -> int:
    """The 64-bit seed of one item, a stable hash of (seed, respondent, instrument).

    Args:
        seed: the run's seed.
        respondent: the respondent's key.
        instrument: the instrument's name.

    Returns:
        The same integer in every process and on every platform.
    """
    payload = json.dumps([int(seed), respondent, instrument], ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest()[:8], "little")


def item_rng(seed: int, respondent: str, instrument: str) -> np.random.Generator:
    """The random generator that draws one item's sampled option or point."""
    return np.random.default_rng(item_seed(seed, respondent, instrument))


def instrument_text(instrument: Instrument) -> str:
    """The question text an instrument puts (a choice in its given option order)."""
    if isinstance(instrument, Choice):
        return choice_text(instrument.question, instrument.options)
    if isinstance(instrument, Likert):
        return likert_text(instrument.question, instrument.points, instrument.low, instrument.high)
    if isinstance(instrument, Numeric):
        return numeric_text(instrument.question, instrument.unit)
    return instrument.question


def redraw(
    answer: Answer, respondent: Respondent, instrument: Choice | Likert, seed: int
) -> Answer:
    """A scored answer drawn again under another seed: its distribution kept.

    What :func:`ask` answers for the same item with ``seed``, given the same scores:
    the option or point is drawn from the answer's probabilities by the item's
    generator, so a question put again to the same prompt needs no decoding.

    Args:
        answer: the item's answer from :func:`ask` (any seed).
        respondent: the item's respondent (its key seeds the draw).
        instrument: the item's choice or Likert scale.
        seed: the run's seed.

    Returns:
        The answer with its sampled option or point drawn under ``seed``.

    Raises:
        ValueError: an answer that is not the instrument's scored answer.
    """
    if (answer.instrument, answer.kind) != (instrument.name, instrument.kind) or not (
        answer.probabilities
    ):
        raise ValueError(
            f"answer {answer.instrument!r} ({answer.kind}) is not a scored answer to "
            f"{instrument.name!r} ({instrument.kind})"
        )
    if isinstance(instrument, Choice):
        probabilities, per_order = np.array(answer.probabilities), np.array(answer.per_order)
        return _choice_answer(respondent, instrument, probabilities, per_order, seed)
    return _likert_answer(respondent, instrument, np.array(answer.probabilities), seed)


def point_continuations(engine: Engine, points: int) -> list[str]:
    """The replies a Likert scale's points are scored as, on this engine.

    Args:
        engine: the engine (its chat format and vocabulary decide).
        points: the number of points N.

    Returns:
        The point labels as message bodies when each is one token (read at one
        position), else each followed by the end of the message, so that no
        label's reply is a prefix of another's ("1" of "10").
    """
    fmt = engine.chat
    bodies = [fmt.body(label) for label in point_labels(points)]
    if all(len(engine.tokenize(body)) == 1 for body in bodies):
        return bodies
    return [body + fmt.footer() for body in bodies]


def _check_items(items: Sequence[tuple[Respondent, Instrument]]) -> None:
    for i, item in enumerate(items):
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"item {i} must be a (Respondent, instrument) pair, got {item!r}")
        respondent, instrument = item
        if not isinstance(respondent, Respondent):
            raise TypeError(f"item {i}: expected a Respondent, got {type(respondent).__name__}")
        if not isinstance(instrument, Choice | Likert | Numeric | FreeText):
            raise TypeError(
                f"item {i}: expected a Choice, Likert, Numeric or FreeText, "
                f"got {type(instrument).__name__}"
            )


def ask(
    engine: Engine, items: Sequence[tuple[Respondent, Instrument]], *, seed: int = 0
) -> list[Answer]:
    """Answer every (respondent, instrument) item; answers in item order.

    All scoring (choice, likert) goes into one batched engine call and all
    generation into one call per sampling setting (split only where a setting has
    more prompts than the engine's sequence pool), so shared prefixes (the persona
    prompt, its history, the question) are decoded once in the KV cache. Item
    randomness (sampled option / point / text) is seeded from (seed,
    respondent.key, instrument.name) only, so an answer does not depend on which
    other items share the call or on their order.

    A call that would overflow the engine's cache or sequence pool (many
    respondents, or one respondent with more questions than an empty cache holds)
    is answered in groups (:func:`~simulacra.instruments.grouping.plan_groups`:
    ordered by their tokens, cut where neighbours share the fewest tokens, at most
    the sequence pool and about :data:`GROUP_CELLS` cells each; a respondent
    context larger than a group is split between its items): one scoring call and
    one generation call per setting per group. Before the next group starts, the
    sequences a group filled are evicted (the caller's own stay) but for the
    prefix every prompt of the group shares, which the next group forks instead
    of decoding again. Attention then reads about one group's cells instead of
    the whole cache, and every sequence's cells lie in the order of its
    positions, as in a decode from scratch: each answer is the one its item gets
    asked alone on an empty cache, bit for bit (tested). One call that overflows
    instead recomputes evicted prompts into freed cells out of order, and its
    scores then depend on that layout (measured on the goal-guarding battery's
    full design: P(B) off by up to 0.09, 0.013 on average). Batteries record
    :data:`GROUP_CELLS` and :data:`GROUP_LAYOUT` in their configuration, so a
    resumed run does not mix layouts. Evictions, the groups' clearing included,
    raise no warning here; ``engine.stats.evictions`` counts them.

    Args:
        engine: the engine answering.
        items: (respondent, instrument) pairs.
        seed: the run's seed.

    Returns:
        One :class:`Answer` per item.

    Raises:
        TypeError: an item that is not a (Respondent, instrument) pair.
        ValueError: a prompt longer than the engine's context.
    """
    items = list(items)
    _check_items(items)
    fmt = engine.chat
    # Per item: its scoring questions (prompt, continuations), or its generation setting.
    questions: dict[int, list[tuple[list[str], list[str]]]] = {}
    settings: dict[int, tuple[int, float, tuple[str, ...]]] = {}
    continuations: dict[int, list[str]] = {}
    for i, (respondent, instrument) in enumerate(items):
        if isinstance(instrument, Choice):
            bodies = [fmt.body(option) for option in instrument.options]
            questions[i] = []
            for order in option_orders(len(instrument.options)):
                listed = [instrument.options[j] for j in order]
                text = choice_text(instrument.question, listed)
                prompt = question_prompt(fmt, respondent, text)
                questions[i].append((prompt, [bodies[j] for j in order]))
        elif isinstance(instrument, Likert):
            if instrument.points not in continuations:
                continuations[instrument.points] = point_continuations(engine, instrument.points)
            prompt = question_prompt(fmt, respondent, instrument_text(instrument))
            questions[i] = [(prompt, continuations[instrument.points])]
        else:
            stop = (
                tuple(dict.fromkeys([*fmt.stop, *NUMERIC_STOP]))
                if isinstance(instrument, Numeric)
                else tuple(fmt.stop)
            )
            settings[i] = (instrument.max_tokens, float(instrument.temperature), stop)

    logprobs: dict[int, list[np.ndarray]] = {}
    texts: dict[int, str] = {}
    pool = engine.pool
    held = {seq.seq_id: seq.tokens for seq in pool.sequences if len(seq.tokens)}
    tokens = [_item_prompts(engine, items, i, questions, settings) for i in range(len(items))]
    with engine.recomputing_quietly():
        common = np.zeros(0, dtype=np.int32)  # the prefix every prompt of a group shares
        for g, members in enumerate(_groups(engine, items, questions, settings, tokens)):
            prompts = [p for i in members for p in tokens[i]]
            if g:
                shared = max(common_length(common, p) for p in prompts)
                _clear(engine, held, common[:shared])
            common = _common_prefix(prompts)
            asked = [(i, q) for i in members if i in questions for q in questions[i]]
            if asked:
                values = engine.option_logprobs([q for _, q in asked])
                for (i, _), value in zip(asked, values, strict=True):
                    logprobs.setdefault(i, []).append(value)
            generated = [i for i in members if i in settings]
            texts.update(_generate(engine, items, generated, settings, seed))

    answers = []
    for i, (respondent, instrument) in enumerate(items):
        if isinstance(instrument, Choice):
            orders = option_orders(len(instrument.options))
            per_order = order_probabilities(orders, logprobs[i])
            probabilities = per_order.mean(axis=0)
            probabilities /= probabilities.sum()
            answers.append(_choice_answer(respondent, instrument, probabilities, per_order, seed))
        elif isinstance(instrument, Likert):
            probabilities = softmax(logprobs[i][0])
            answers.append(_likert_answer(respondent, instrument, probabilities, seed))
        elif isinstance(instrument, Numeric):
            value = parse_number(texts[i])
            answers.append(
                Answer(
                    respondent.key,
                    instrument.name,
                    instrument.kind,
                    text=texts[i],
                    value=value,
                    parsed=value is not None,
                )
            )
        else:
            answers.append(Answer(respondent.key, instrument.name, instrument.kind, text=texts[i]))
    return answers


def _generate(
    engine: Engine,
    items: list[tuple[Respondent, Instrument]],
    members: list[int],
    settings: dict[int, tuple[int, float, tuple[str, ...]]],
    seed: int,
) -> dict[int, str]:
    """The replies of generated items: one call per sampling setting and pool's worth."""
    by_setting: dict[tuple[int, float, tuple[str, ...]], list[int]] = {}
    for i in members:
        by_setting.setdefault(settings[i], []).append(i)
    texts: dict[int, str] = {}
    for (max_tokens, temperature, stop), chosen in by_setting.items():
        for start in range(0, len(chosen), engine.n_seq_max):
            chunk = chosen[start : start + engine.n_seq_max]
            prompts = [
                question_prompt(engine.chat, items[i][0], instrument_text(items[i][1]))
                for i in chunk
            ]
            seeds = [item_seed(seed, items[i][0].key, items[i][1].name) for i in chunk]
            replies = engine.generate(
                prompts, max_tokens=max_tokens, temperature=temperature, stop=stop, seeds=seeds
            )
            texts.update(zip(chunk, replies, strict=True))
    return texts


def _groups(
    engine: Engine,
    items: list[tuple[Respondent, Instrument]],
    questions: dict[int, list[tuple[list[str], list[str]]]],
    settings: dict[int, tuple[int, float, tuple[str, ...]]],
    tokens: list[list[np.ndarray]],
) -> list[list[int]]:
    """The items in groups that keep the cache small (:mod:`grouping`), item order within.

    Items of one respondent context (system, history, name) stay together unless
    the context alone needs more than a group's cells or sequences; then each of
    its items is placed on its own (neighbours in token order still share a
    group). A call the cache can hold beside what it already holds
    (:func:`_fits_beside`) is one group, every item in the caller's order, decoded
    exactly as before groups existed; only a call that would overflow the cache or
    the pool (and then recompute evicted prompts), or that holds a context an empty
    cache could not, is cut into groups of about :data:`GROUP_CELLS` cells.
    """
    contexts: dict[tuple[str, tuple[Message, ...], str], list[int]] = {}
    for i, (respondent, _) in enumerate(items):
        key = (respondent.system, respondent.history, respondent.name)
        contexts.setdefault(key, []).append(i)
    members = list(contexts.values())
    sizes = [_context_size(engine, chosen, tokens, questions, settings) for chosen in members]
    everything = [list(range(len(items)))] if items else []
    # One context an empty cache cannot hold either (one respondent's many questions).
    oversized = any(s.cells > engine.n_ctx or s.sequences > engine.n_seq_max for s in sizes)
    held = [seq for seq in engine.pool.sequences if len(seq.tokens)]
    if not oversized and _fits_beside(engine, sizes, held, tokens):
        return everything  # the cache holds it all: one call, as always
    max_cells = min(GROUP_CELLS, engine.n_ctx)
    atoms, atom_sizes = [], []
    for chosen, size in zip(members, sizes, strict=True):
        fits_group = size.cells <= max_cells and size.sequences <= engine.n_seq_max
        if fits_group or len(chosen) == 1:
            atoms.append(chosen)
            atom_sizes.append(size)
        else:  # one context's many questions: its items are grouped one by one
            atoms += [[i] for i in chosen]
            atom_sizes += [_context_size(engine, [i], tokens, questions, settings) for i in chosen]
    planned = plan_groups(atom_sizes, max_cells=max_cells, max_sequences=engine.n_seq_max)
    return [sorted(i for a in group for i in atoms[a]) for group in planned]


def _fits_beside(
    engine: Engine,
    sizes: list[ContextSize],
    held: list[CachedSequence],
    tokens: list[list[np.ndarray]],
) -> bool:
    """Whether the call's contexts fit the cache and the pool beside ``held`` in one group.

    The cells ``held`` occupies are counted once per distinct prefix (sequences
    forked from one prompt share its cells) and only where the call's prompts do
    not share them (a prompt held already needs no new ones); each held sequence
    takes a slot. Summing the held sequences' lengths instead counted a shared
    prompt once per fork: a re-asked participant's measures, beside a hundred forks
    of its own prompts, seemed not to fit 8,192 cells and were cut into groups that
    evicted and decoded those prompts again.
    """
    prompts = [p for group in tokens for p in group]
    held_tokens = [seq.tokens for seq in held]
    idle = trie_cells(held_tokens + prompts) - trie_cells(prompts) if held else 0
    free_cells = max(1, engine.n_ctx - idle)
    free_sequences = max(1, engine.n_seq_max - len(held))
    return len(plan_groups(sizes, max_cells=free_cells, max_sequences=free_sequences)) <= 1


def _context_size(
    engine: Engine,
    chosen: list[int],
    tokens: list[list[np.ndarray]],
    questions: dict[int, list[tuple[list[str], list[str]]]],
    settings: dict[int, tuple[int, float, tuple[str, ...]]],
) -> ContextSize:
    """The cells and sequences one context's items need (see :class:`ContextSize`)."""
    prompts = [p for i in chosen for p in tokens[i]]
    extra = sequences = 0
    for i in chosen:
        for _, options in questions.get(i, ()):
            longer = [n for n in (len(engine.tokenize(o)) for o in options) if n > 1]
            extra += sum(longer)
            sequences += len(longer) + (len(longer) < len(options))
        if i in settings:
            extra += settings[i][0]
    return ContextSize(prompts[0], trie_cells(prompts) + extra, max(1, sequences))


def _item_prompts(
    engine: Engine,
    items: list[tuple[Respondent, Instrument]],
    i: int,
    questions: dict[int, list[tuple[list[str], list[str]]]],
    settings: dict[int, tuple[int, float, tuple[str, ...]]],
) -> list[np.ndarray]:
    """The prompt tokens of item ``i``: its scoring questions', then its generation's."""
    prompts = [engine.prompt_tokens(p) for p, _ in questions.get(i, ())]
    if i in settings:
        respondent, instrument = items[i]
        text = instrument_text(instrument)
        prompts.append(engine.prompt_tokens(question_prompt(engine.chat, respondent, text)))
    return prompts


def _common_prefix(prompts: list[np.ndarray]) -> np.ndarray:
    """The tokens every one of ``prompts`` begins with."""
    if not prompts:
        return np.zeros(0, dtype=np.int32)
    first = prompts[0]
    return first[: min(common_length(first, p) for p in prompts)]


def _clear(engine: Engine, held: dict[int, np.ndarray], keep: np.ndarray) -> None:
    """Evict the sequences this call filled, but for the prefix ``keep``.

    A sequence the caller held at the start is the caller's as long as it still
    extends or truncates what it held (a question asked after its history); one
    this call started, or took over for another prompt, is this call's and is
    evicted, except that one of them holding ``keep`` is cut back to it, so that
    the next group forks that prefix instead of decoding it again. ``keep`` must be
    a prefix of every prompt of the group that filled the cache: decoded first, its
    cells lie below the group's others, and the next group's new cells, placed
    after them, keep every sequence's cells in the order of its positions, the
    order a from-scratch decode attends in (a layout with a sequence's own cells
    below its prefix's changes scores by up to 0.05 in probability, measured).
    """
    pool = engine.pool
    kept = not len(keep)
    for seq in pool.sequences:
        before = held.get(seq.seq_id)
        if not len(seq.tokens) or (
            before is not None
            and common_length(before, seq.tokens) == min(len(before), len(seq.tokens))
        ):
            continue
        if not kept and common_length(seq.tokens, keep) == len(keep):
            pool.truncate(seq, len(keep))
            kept = True
        else:
            pool.evict(seq)


def _choice_answer(
    respondent: Respondent,
    instrument: Choice,
    probabilities: np.ndarray,
    per_order: np.ndarray,
    seed: int,
) -> Answer:
    # Drawn over the options in sorted order, so that the draw does not depend on
    # the order the options were given in.
    canonical = sorted(range(len(instrument.options)), key=instrument.options.__getitem__)
    rng = item_rng(seed, respondent.key, instrument.name)
    picked = canonical[int(rng.choice(len(canonical), p=probabilities[canonical]))]
    return Answer(
        respondent.key,
        instrument.name,
        instrument.kind,
        options=instrument.options,
        probabilities=tuple(float(p) for p in probabilities),
        per_order=tuple(tuple(float(p) for p in row) for row in per_order),
        text=instrument.options[picked],
        value=float(picked),
    )


def _likert_answer(
    respondent: Respondent, instrument: Likert, probabilities: np.ndarray, seed: int
) -> Answer:
    rng = item_rng(seed, respondent.key, instrument.name)
    point = int(rng.choice(len(probabilities), p=probabilities)) + 1
    return Answer(
        respondent.key,
        instrument.name,
        instrument.kind,
        options=point_labels(instrument.points),
        probabilities=tuple(float(p) for p in probabilities),
        expected=expected_point(probabilities),
        text=str(point),
        value=float(point),
    )
