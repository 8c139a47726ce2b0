"""Generation: sampled completions of many prompts, decoded together.

The :class:`Generation` half of :class:`~simulacra.llm.engine.Engine`. Every prompt
gets its own llama.cpp sampler chain and seed; all prompts are prefilled in one
call of :meth:`~simulacra.llm.pool.SequencePool.run`, then advance one token each
per ``llama_decode``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import llama_cpp
import numpy as np

from simulacra.llm.pool import DecodeRequest, EngineStats, SequencePool

if TYPE_CHECKING:
    from simulacra.llm.chat import Prompt

__all__ = ["Generation"]


class Generation:
    """Generation methods of the engine (a mixin: the engine provides the attributes below)."""

    _pool: SequencePool
    _vocab: object
    stats: EngineStats
    seed: int
    n_ctx_seq: int
    prompt_tokens: Callable[[Prompt], np.ndarray]
    detokenize: Callable[[Sequence[int]], str]
    _detokenize_bytes: Callable[[Sequence[int]], bytes]

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_tokens: int = 64,
        temperature: float = 0.8,
        top_p: float = 0.95,
        stop: Sequence[str] = (),
        seed: int | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        """Sample one completion per prompt, decoding all prompts together.

        Prompt ``i`` gets its own sampler chain seeded from ``(seed, i)``, or from
        ``seeds[i]`` alone when ``seeds`` is given, so a completion does not depend
        on how many other prompts share the call (with ``seeds``, nor on its place).

        Args:
            prompts: the prompts.
            max_tokens: the most tokens per completion.
            temperature: sampling temperature; 0 is greedy.
            top_p: nucleus sampling mass.
            stop: strings that end a completion (not included in it).
            seed: the sampling seed; None uses the engine's seed.
            seeds: one non-negative sampling seed per prompt, used instead of
                ``(seed, i)``.

        Returns:
            The completions, in prompt order.

        Raises:
            ValueError: no prompts, bad sampling settings, seeds that do not match
                the prompts, or a prompt too long.

        """
        if isinstance(prompts, str) or len(prompts) == 0:
            raise ValueError("generate needs a non-empty sequence of prompts")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        seed = self.seed if seed is None else seed
        if seeds is None:
            entropies: list[int | list[int]] = [[seed, i] for i in range(len(prompts))]
        else:
            if len(seeds) != len(prompts):
                raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts: give one each")
            if any(int(s) < 0 for s in seeds):
                raise ValueError("seeds must be non-negative integers")
            entropies = [int(s) for s in seeds]
        requests = []
        for prompt in prompts:
            tokens = self.prompt_tokens(prompt)
            if len(tokens) == 0:
                raise ValueError("a prompt is empty: generation needs at least one token")
            if len(tokens) + max_tokens > self.n_ctx_seq:
                raise ValueError(
                    f"prompt ({len(tokens)} tokens) + max_tokens ({max_tokens}) is longer "
                    f"than the context of {self.n_ctx_seq} tokens"
                )
            requests.append(DecodeRequest(tokens, len(tokens), want_last=True))
        samplers = [self._sampler(temperature, top_p, entropy) for entropy in entropies]
        try:
            return self._generate(requests, samplers, max_tokens, tuple(stop))
        finally:
            for sampler in samplers:
                llama_cpp.llama_sampler_free(sampler)

    def _sampler(self, temperature: float, top_p: float, entropy: int | list[int]) -> object:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if temperature == 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        state = np.random.SeedSequence(entropy).generate_state(1)[0]
        if top_p < 1:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(top_p, 1))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(int(state)))
        return chain

    def _generate(
        self,
        requests: list[DecodeRequest],
        samplers: list[object],
        max_tokens: int,
        stop: tuple[str, ...],
    ) -> list[str]:
        n = len(requests)
        generated: list[list[int]] = [[] for _ in range(n)]
        texts: list[str | None] = [None] * n
        next_token: dict[int, int] = {}

        def take(i: int, row: int) -> None:
            next_token[i] = self._sample(samplers[i], row)

        # Prefill every prompt, sampling each first token right after its decode.
        self._pool.run(requests, on_last_row=take, hold=True)
        pinned = {r.seq.seq_id for r in requests if r.seq is not None}
        active = list(range(n))
        while active:
            still = []
            for i in active:
                token = next_token[i]
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    texts[i] = self._finish(generated[i], stop)
                    continue
                generated[i].append(token)
                self.stats.tokens_generated += 1
                text = self._detokenize_bytes(generated[i]).decode("utf-8", errors="ignore")
                if any(s in text for s in stop) or len(generated[i]) >= max_tokens:
                    texts[i] = self._finish(generated[i], stop)
                    continue
                still.append(i)
            active = still
            if active:
                rows = self._pool.decode_step(
                    [(requests[i].seq, next_token[i]) for i in active], pinned
                )
                for i, row in zip(active, rows, strict=True):
                    take(i, row)
        return [t if t is not None else "" for t in texts]

    def _finish(self, tokens: list[int], stop: tuple[str, ...]) -> str:
        text = self.detokenize(tokens)
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        return text[:cut] if cut >= 0 else text

    def _sample(self, sampler: object, row: int) -> int:
        return self._pool.sample(sampler, row)
