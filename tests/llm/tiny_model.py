"""The embedded model on bare llama.cpp contexts: one decode, logits back.

Tests of hidden-state capture and steering need contexts created with their own
parameters (``cb_eval``), which the engine does not expose, so this helper loads
the model through llama_cpp's low-level API, as :mod:`simulacra.llm.engine` does.
"""

from __future__ import annotations

import os

import llama_cpp
import numpy as np

from simulacra.llm.activations import ActivationRecorder
from simulacra.llm.backend import cpu_has_amx, init_backend
from simulacra.llm.models import resolve_model

N_CTX = 256


class TinyModel:
    """The embedded SmolLM2 model and the contexts a test creates on it."""

    def __init__(self, model: str | None = None, n_threads: int = 2) -> None:
        init_backend()
        self.resolved = resolve_model(model)
        mparams = llama_cpp.llama_model_default_params()
        if cpu_has_amx():
            mparams.use_extra_bufts = False  # AMX kernels crash on quantized models
        self.model = llama_cpp.llama_model_load_from_file(os.fsencode(self.resolved.path), mparams)
        assert self.model, "could not load the embedded model"
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_layer = llama_cpp.llama_model_n_layer(self.model)
        self.n_embd = llama_cpp.llama_model_n_embd(self.model)
        self.n_threads = n_threads
        self._contexts = []
        self._batch = llama_cpp.llama_batch_init(N_CTX, 0, 1)

    def context(self, recorder: ActivationRecorder | None = None, n_ubatch: int = N_CTX):
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = N_CTX
        cparams.n_batch = N_CTX
        cparams.n_ubatch = n_ubatch
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = self.n_threads
        cparams.no_perf = True
        if recorder is not None:
            recorder.install(cparams)
        ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        assert ctx, "could not create a context"
        self._contexts.append(ctx)
        return ctx

    def tokens(self, text: str) -> list[int]:
        raw = text.encode()
        buffer = (llama_cpp.llama_token * N_CTX)()
        n = llama_cpp.llama_tokenize(self.vocab, raw, len(raw), buffer, N_CTX, False, True)
        assert 0 < n <= N_CTX
        return list(buffer[:n])

    def logits(self, ctx, tokens: list[int], all_rows: bool = True) -> np.ndarray:
        """Decode ``tokens`` from an empty cache; the logits of every row (or the last)."""
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        batch = self._batch
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if all_rows or i == len(tokens) - 1 else 0
        assert llama_cpp.llama_decode(ctx, batch) == 0
        n_rows = len(tokens) if all_rows else 1
        rows = llama_cpp.llama_get_logits(ctx)
        return np.ctypeslib.as_array(rows, shape=(n_rows, self.n_vocab)).copy()

    def close(self) -> None:
        for ctx in self._contexts:
            llama_cpp.llama_free(ctx)
        self._contexts = []
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None


PROMPT = "<|im_start|>user\nTell me about your weekend.<|im_end|>\n<|im_start|>assistant\n"
