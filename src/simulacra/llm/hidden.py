"""Hidden states: the residual stream at chosen blocks, read in the engine's batched decode.

The :class:`HiddenStates` part of :class:`~simulacra.llm.engine.Engine`:

- :meth:`HiddenStates.hidden_states`: ``l_out-b`` at the last token of each prompt
  (Chen et al.'s monitoring read: the state just before the reply);
- :meth:`HiddenStates.continuation_states`: the mean of ``l_out-b`` over a
  continuation's tokens after its prompt (the persona-vector recipe's response
  average; an utterance's position on an axis).

Both are decoded like scoring requests, on the engine's pool and prefix cache,
all prompts in the same ``llama_decode`` batches, under whatever steering or
capping is in force. The positions read are always decoded, never taken from the
cache (a cached token's activations are gone); the prefix before them is reused.
The engine's :class:`~simulacra.llm.activations.ActivationRecorder` copies the
requested blocks only during these calls; every other decode asks for nothing,
and its results are bit-identical to an engine without the recorder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from simulacra.errors import EngineError
from simulacra.llm.activations import ActivationRecorder
from simulacra.llm.pool import DecodeRequest, SequencePool

if TYPE_CHECKING:
    from simulacra.llm.chat import Prompt

__all__ = ["HiddenStates"]


class HiddenStates:
    """Hidden-state reads of the engine (a mixin: the engine provides the attributes below)."""

    _pool: SequencePool
    _recorder: ActivationRecorder | None
    n_layer: int
    n_embd: int
    n_ctx_seq: int
    kv_streams: bool
    prompt_tokens: Callable[[Prompt], np.ndarray]
    tokenize: Callable[[str], np.ndarray]

    def hidden_states(self, prompts: Sequence[Prompt], layers: Iterable[int]) -> np.ndarray:
        """The residual stream ``l_out-b`` at the last token of each prompt.

        Args:
            prompts: N prompts (strings or segment lists), decoded together.
            layers: 0-based blocks to read (``l_out-b``: the output of block b, with
                any steering at b already added).

        Returns:
            float32 ``(N, len(layers), n_embd)``, blocks in the order given.

        Raises:
            ValueError: no prompts, an empty or too long prompt, or a block that is
                not in ``0 .. n_layer - 1``.
            EngineError: if the engine cannot capture (no recorder, or KV streams).

        """
        if isinstance(prompts, str) or len(prompts) == 0:
            raise ValueError("hidden_states needs a non-empty sequence of prompts")
        blocks = self._capture_layers(layers)
        requests = []
        for prompt in prompts:
            tokens = self._capture_tokens(self.prompt_tokens(prompt), np.zeros(0, np.int32))
            requests.append(
                DecodeRequest(
                    tokens,
                    len(tokens),
                    want_last=True,
                    capture_from=len(tokens) - 1,
                    capture_outputs=self.n_layer - 1 in blocks,
                )
            )
        return self._capture(requests, blocks)

    def continuation_states(
        self, pairs: Sequence[tuple[Prompt, str]], layers: Iterable[int]
    ) -> np.ndarray:
        """The mean of ``l_out-b`` over each continuation's tokens, after its prompt.

        The continuation is tokenized on its own, as :meth:`loglik` does, and read
        by teacher forcing (no sampling): the rows are those of the continuation's
        own tokens (positions ``len(prompt) .. len(prompt) + len(continuation) - 1``).

        Args:
            pairs: N (prompt, continuation) pairs; continuations are non-empty.
            layers: 0-based blocks to read.

        Returns:
            float32 ``(N, len(layers), n_embd)``: means over the continuation's tokens.

        Raises:
            ValueError: no pairs, an empty prompt or continuation, a pair longer
                than the context, or a block out of range.
            EngineError: if the engine cannot capture.

        """
        if len(pairs) == 0:
            raise ValueError("continuation_states needs a non-empty sequence of pairs")
        blocks = self._capture_layers(layers)
        requests = []
        for prompt, continuation in pairs:
            cont = self.tokenize(continuation)
            if len(cont) == 0:
                raise ValueError(f"continuation {continuation!r} is empty: nothing to average")
            prompt_tokens = self.prompt_tokens(prompt)
            tokens = self._capture_tokens(prompt_tokens, cont)
            requests.append(
                DecodeRequest(
                    tokens,
                    len(prompt_tokens),
                    want_last=True,
                    capture_from=len(prompt_tokens),
                    capture_outputs=self.n_layer - 1 in blocks,
                )
            )
        return self._capture(requests, blocks)

    # ------------------------------------------------------------------ helpers
    def _capture_layers(self, layers: Iterable[int]) -> tuple[int, ...]:
        if self._recorder is None:
            raise EngineError(
                "this engine was loaded with hooks=False: hidden states need llama.cpp's "
                "eval callback (Engine.load(..., hooks=True), the default)"
            )
        if self.kv_streams:
            raise EngineError(
                "hidden states are read with the shared KV cache only: load the engine "
                "with kv_streams=False"
            )
        blocks = tuple(int(b) for b in layers)
        if not blocks:
            raise ValueError("name at least one block to read")
        bad = [b for b in blocks if not 0 <= b < self.n_layer]
        if bad:
            raise ValueError(
                f"blocks {bad} do not exist: the model has blocks 0 to {self.n_layer - 1}"
            )
        if len(set(blocks)) != len(blocks):
            raise ValueError(f"blocks listed twice: {list(blocks)}")
        return blocks

    def _capture_tokens(self, prompt: np.ndarray, continuation: np.ndarray) -> np.ndarray:
        if len(prompt) == 0:
            raise ValueError("a prompt is empty: reading states needs at least one prompt token")
        if len(prompt) + len(continuation) > self.n_ctx_seq:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) + continuation ({len(continuation)} tokens) "
                f"is longer than the context of {self.n_ctx_seq} tokens"
            )
        return np.concatenate([prompt, continuation])

    def _capture(self, requests: list[DecodeRequest], blocks: tuple[int, ...]) -> np.ndarray:
        """Decode the requests with the recorder on; per request, the mean of its captured rows."""
        recorder = self._recorder
        last = self.n_layer - 1
        sums = np.zeros((len(requests), len(blocks), self.n_embd))
        counts = np.zeros(len(requests), dtype=np.int64)

        def tap(decoded: list[DecodeRequest], chunk: list[tuple[int, int, int, bool]]) -> None:
            taken = recorder.take()
            wanted, batch_rows, out_rows = [], [], []
            n_out = 0
            for b, (i, pos, _, out) in enumerate(chunk):
                start = decoded[i].capture_from
                if start is not None and pos >= start:
                    wanted.append(i)
                    batch_rows.append(b)
                    out_rows.append(n_out)
                n_out += out
            if not wanted:
                return
            index = np.array(wanted)
            for k, block in enumerate(blocks):
                rows = taken.get(block)
                pick = out_rows if block == last else batch_rows
                if rows is None or len(rows) < (n_out if block == last else len(chunk)):
                    raise EngineError(
                        f"captured {0 if rows is None else len(rows)} rows of l_out-{block} "
                        f"for a decode of {len(chunk)} tokens ({n_out} outputs)"
                    )
                np.add.at(sums[:, k], index, rows[pick])
            np.add.at(counts, index, 1)

        recorder.clear()
        recorder.set_layers(blocks)
        self._pool.tap = tap
        try:
            self._pool.run(requests, on_last_row=lambda i, row: None)
        finally:
            self._pool.tap = None
            recorder.set_layers(())
            recorder.clear()
        if (counts == 0).any():  # pragma: no cover - every captured position is decoded
            raise EngineError("a request's positions were not decoded: no states to read")
        return (sums / counts[:, None, None]).astype(np.float32)
