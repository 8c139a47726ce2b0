"""Scoring: log-probabilities of continuations and forced choices, by teacher forcing.

The :class:`Scoring` half of :class:`~simulacra.llm.engine.Engine`:

- :meth:`Scoring.loglik`: the log-probability of one continuation after each of K
  prompts;
- :meth:`Scoring.choice` / :meth:`Scoring.choices`: forced choices, by softmax over
  the options' summed log-probabilities;
- :meth:`Scoring.option_logprobs`: the sums themselves, reading options of one token
  each at a single position.

All of them turn their questions into :class:`~simulacra.llm.pool.DecodeRequest` s and
decode them together on the engine's :class:`~simulacra.llm.pool.SequencePool`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from simulacra.llm.pool import DecodeRequest, EngineStats, SequencePool

if TYPE_CHECKING:
    from simulacra.llm.chat import Prompt

__all__ = ["Scoring"]


class Scoring:
    """Scoring methods of the engine (a mixin: the engine provides the attributes below)."""

    _pool: SequencePool
    stats: EngineStats
    n_ctx_seq: int
    prompt_tokens: Callable[[Prompt], np.ndarray]
    tokenize: Callable[[str], np.ndarray]

    def loglik(
        self, prompts: Sequence[Prompt], continuation: str, *, per_token: bool = False
    ) -> np.ndarray:
        """Log-probability of ``continuation`` after each prompt, by teacher forcing.

        Args:
            prompts: K prompts (strings or segment lists).
            continuation: the text to score; tokenized on its own.
            per_token: return the (K, T) per-token log-probabilities instead of sums.

        Returns:
            A (K,) array of total log-probabilities in nats, or (K, T) with ``per_token``.

        Raises:
            ValueError: no prompts, an empty continuation, or a prompt + continuation
                longer than the context.

        """
        if isinstance(prompts, str) or len(prompts) == 0:
            raise ValueError("loglik needs a non-empty sequence of prompts")
        cont = self.tokenize(continuation)
        if len(cont) == 0:
            raise ValueError("loglik needs a non-empty continuation")
        requests = [self._scoring_request(self.prompt_tokens(p), cont) for p in prompts]
        rows = self._pool.run(requests)
        matrix = np.stack(rows)
        return matrix if per_token else matrix.sum(axis=1)

    def choice(self, prompt: Prompt, options: Sequence[str]) -> np.ndarray:
        """Probability of each option after ``prompt``: softmax of summed log-probabilities.

        Args:
            prompt: the question, as a string or segments.
            options: at least two non-empty option texts, each tokenized on its own.

        Returns:
            Probabilities in the order of ``options``; they sum to 1.

        Raises:
            ValueError: fewer than two options, or an empty one.
        """
        return self.choices([(prompt, options)])[0]

    def choices(self, questions: Sequence[tuple[Prompt, Sequence[str]]]) -> list[np.ndarray]:
        """Several forced choices decoded together; see :meth:`choice`.

        Args:
            questions: (prompt, options) pairs.

        Returns:
            One probability vector per question.
        """
        requests: list[DecodeRequest] = []
        sizes = []
        for prompt, options in questions:
            if isinstance(options, str) or len(options) < 2:
                raise ValueError("choice needs at least two options")
            prompt_tokens = self.prompt_tokens(prompt)
            for option in options:
                tokens = self.tokenize(option)
                if len(tokens) == 0:
                    raise ValueError(f"choice option {option!r} is empty")
                requests.append(self._scoring_request(prompt_tokens, tokens))
            sizes.append(len(options))
        totals = np.array([row.sum() for row in self._pool.run(requests)])
        out = []
        for start, size in zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True):
            part = totals[start : start + size]
            weights = np.exp(part - part.max())
            out.append(weights / weights.sum())
        return out

    def option_logprobs(
        self, questions: Sequence[tuple[Prompt, Sequence[str]]]
    ) -> list[np.ndarray]:
        """The summed log-probability of each option after its prompt, all decoded together.

        Options of one token are read from the logits at the prompt's last position,
        so a question whose options are all single tokens costs one decode of its
        prompt however many options it has (a Likert scale "1".."7"). Longer options
        are scored by teacher forcing, as in :meth:`loglik`. Softmax over one
        question's values gives :meth:`choice`'s probabilities.

        Args:
            questions: (prompt, options) pairs; every option is a non-empty text,
                tokenized on its own.

        Returns:
            Per question, its options' log-probabilities in nats, in option order.

        Raises:
            ValueError: a question without options, an empty option or prompt, or a
                prompt + option longer than the context.
        """
        requests: list[DecodeRequest] = []
        # What each request answers: (question, option indices, their single tokens);
        # a scored (multi-token) option has one index and no tokens.
        answers: list[tuple[int, list[int], np.ndarray | None]] = []
        out = []
        for q, (prompt, options) in enumerate(questions):
            if isinstance(options, str) or len(options) == 0:
                raise ValueError("option_logprobs needs at least one option per question")
            prompt_tokens = self.prompt_tokens(prompt)
            singles: list[tuple[int, int]] = []
            for k, option in enumerate(options):
                tokens = self.tokenize(option)
                if len(tokens) == 0:
                    raise ValueError(f"option {option!r} is empty")
                if len(tokens) == 1:
                    singles.append((k, int(tokens[0])))
                else:
                    requests.append(self._scoring_request(prompt_tokens, tokens))
                    answers.append((q, [k], None))
            if singles:
                # Checks the prompt's length and emptiness like any scoring request.
                read = self._scoring_request(prompt_tokens, np.array([singles[0][1]]))
                requests.append(DecodeRequest(read.tokens[:-1], read.n_prompt, want_last=True))
                targets = np.array([token for _, token in singles], dtype=np.int64)
                answers.append((q, [k for k, _ in singles], targets))
            out.append(np.zeros(len(options)))

        def read_row(i: int, row: int) -> None:
            q, slots, targets = answers[i]
            logits = self._pool.logits_row(row).astype(np.float64)
            peak = logits.max()
            lse = peak + np.log(np.exp(logits - peak).sum())
            out[q][slots] = logits[targets] - lse
            self.stats.tokens_scored += len(slots)

        for i, row in enumerate(self._pool.run(requests, on_last_row=read_row)):
            q, slots, targets = answers[i]
            if targets is None:
                out[q][slots[0]] = row.sum()
        return out

    def _scoring_request(self, prompt: np.ndarray, continuation: np.ndarray) -> DecodeRequest:
        if len(prompt) == 0:
            raise ValueError("a prompt is empty: scoring needs at least one prompt token")
        total = len(prompt) + len(continuation)
        if total > self.n_ctx_seq:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) + continuation ({len(continuation)} tokens) "
                f"is longer than the context of {self.n_ctx_seq} tokens"
            )
        return DecodeRequest(np.concatenate([prompt, continuation]), len(prompt))
