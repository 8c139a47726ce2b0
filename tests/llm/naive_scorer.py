"""An independent, deliberately naive reference scorer for the engine tests.

It loads its own model and context, clears the cache before every request and
reads the logits of every position: no pool, no prefix reuse, no batching across
requests.
"""

from __future__ import annotations

import os

import llama_cpp
import numpy as np

from simulacra.llm.engine import cpu_has_amx


class NaiveScorer:
    def __init__(self, path: str, n_ctx: int = 4096) -> None:
        mparams = llama_cpp.llama_model_default_params()
        if cpu_has_amx():
            mparams.use_extra_bufts = False
        self.model = llama_cpp.llama_model_load_from_file(os.fsencode(path), mparams)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_ctx
        cparams.n_ubatch = 63
        cparams.flash_attn_type = 1
        cparams.n_threads = cparams.n_threads_batch = 2
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        self.n_ctx = n_ctx

    def token_logprobs(self, tokens: np.ndarray, n_prompt: int) -> np.ndarray:
        """Log-probabilities of tokens[n_prompt:], from one fresh full evaluation."""
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        n = len(tokens)
        batch = llama_cpp.llama_batch_init(n, 0, 1)
        try:
            for i, tok in enumerate(tokens):
                batch.token[i] = int(tok)
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = True
            batch.n_tokens = n
            assert llama_cpp.llama_decode(self.ctx, batch) == 0
            logits = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits(self.ctx), shape=(n, self.n_vocab)
            ).astype(np.float64)
        finally:
            llama_cpp.llama_batch_free(batch)
        out = []
        for pos in range(n_prompt - 1, n - 1):
            row = logits[pos]
            lse = row.max() + np.log(np.exp(row - row.max()).sum())
            out.append(row[tokens[pos + 1]] - lse)
        return np.array(out)

    def close(self) -> None:
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)
