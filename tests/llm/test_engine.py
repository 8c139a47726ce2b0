"""The inference engine against the real embedded model."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from naive_scorer import NaiveScorer

from simulacra.errors import ModelLoadError, ModelNotFoundError, SimulacraWarning
from simulacra.llm.chat import Message, render_dialogue
from simulacra.llm.engine import Engine
from simulacra.llm.pool import log_softmax_at

PERSONAS = [
    "You are a boisterous pirate captain who loves the sea and shouts a lot.",
    "You are a meticulous chemistry professor who explains everything precisely.",
    "You are a sleepy toddler who only knows a few simple words.",
]
UTTERANCES = [
    "Arr, hoist the sails, ye scallywags, the treasure awaits!",
    "The reaction is exothermic, so the temperature of the solution rises.",
    "Me want milk. Nap time now?",
    "Let us measure the molar mass before we continue.",
]


@pytest.fixture(scope="module")
def naive(engine: Engine) -> NaiveScorer:
    scorer = NaiveScorer(str(engine.model_path))
    yield scorer
    scorer.close()


def dialogue_prompts(engine: Engine, history: list[Message]) -> list[list[str]]:
    return [render_dialogue(engine.chat, p, history, owner="ada") for p in PERSONAS]


def mean_abs_gap(engine: Engine, naive: NaiveScorer, prompts, continuation: str) -> float:
    ours = engine.loglik(prompts, continuation, per_token=True)
    cont = engine.tokenize(continuation)
    gaps = []
    for prompt, row in zip(prompts, ours, strict=True):
        tokens = np.concatenate([engine.prompt_tokens(prompt), cont])
        reference = naive.token_logprobs(tokens, len(tokens) - len(cont))
        gaps.append(np.abs(reference - row))
    return float(np.mean(np.concatenate(gaps)))


def test_loglik_matches_naive_evaluation_along_a_dialogue(engine, naive):
    engine.reset()
    history: list[Message] = []
    gaps = []
    for i, text in enumerate(UTTERANCES):
        prompts = dialogue_prompts(engine, history)
        gaps.append(mean_abs_gap(engine, naive, prompts, text))
        history.append(Message("ada" if i % 2 == 0 else "bob", text))
    assert engine.stats.tokens_reused > 0, "later turns must reuse cached prefixes"
    assert max(gaps) < 0.02, gaps


def test_loglik_matches_naive_after_evictions(naive):
    with Engine.load(n_ctx=512, n_seq_max=2) as small:
        history: list[Message] = []
        gaps = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i, text in enumerate(UTTERANCES):
                prompts = dialogue_prompts(small, history)
                gaps.append(mean_abs_gap(small, naive, prompts, text))
                history.append(Message("ada" if i % 2 == 0 else "bob", text))
        assert small.stats.evictions > 0
        assert sum(issubclass(w.category, SimulacraWarning) for w in caught) == 1, "warn once"
    assert max(gaps) < 0.02, gaps


def test_kv_streams_agree_with_naive_and_with_the_shared_cache(engine, naive):
    engine.reset()
    with (
        Engine.load(n_ctx=4096, n_seq_max=8, kv_streams=True) as streams,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", SimulacraWarning)  # the small pool evicts for choices
        assert streams.n_ctx_seq == 512
        history: list[Message] = []
        gaps = []
        for i, text in enumerate(UTTERANCES):
            prompts = dialogue_prompts(streams, history)
            gaps.append(mean_abs_gap(streams, naive, prompts, text))
            np.testing.assert_allclose(
                streams.loglik(prompts, text), engine.loglik(prompts, text), atol=1e-3
            )
            history.append(Message("ada" if i % 2 == 0 else "bob", text))
        assert max(gaps) < 0.02, gaps
        # Forks copy whole streams; choices fork the question for every option.
        question = "Question: Is fire hot? Answer:"
        options = [" yes", " no", " it depends on the kind of fire"]
        np.testing.assert_allclose(
            streams.choice(question, options), engine.choice(question, options), atol=1e-3
        )
        prompts = [render_dialogue(streams.chat, p, [], owner="ada") for p in PERSONAS]
        assert streams.generate(prompts, max_tokens=16, seed=3) == engine.generate(
            prompts, max_tokens=16, seed=3
        )
        with pytest.raises(ValueError, match="longer than the context of 512"):
            streams.loglik(["word " * 600], "x")


def test_loglik_decodes_only_new_tokens_and_defers_the_last(engine, naive):
    engine.reset()
    system, reply, follow_up = PERSONAS[0], UTTERANCES[0], UTTERANCES[2]
    n_system, n_reply = len(engine.prompt_tokens([system])), len(engine.tokenize(reply))
    before = engine.stats.tokens_decoded
    engine.loglik([[system]], reply)
    # The reply's last token needs no logits, so it is not decoded yet.
    assert engine.stats.tokens_decoded - before == n_system + n_reply - 1
    extended = [system, reply, " Then the toddler said:"]
    n_more = len(engine.tokenize(" Then the toddler said:"))
    before = engine.stats.tokens_decoded
    gap = mean_abs_gap(engine, naive, [extended], follow_up)
    # Only the deferred token, the new segment and the follow-up (less its last token).
    assert engine.stats.tokens_decoded - before == 1 + n_more + len(engine.tokenize(follow_up)) - 1
    assert gap < 0.02


def test_log_softmax_matches_float64_reference_across_blocks():
    rng = np.random.default_rng(3)
    rows = (rng.standard_normal((37, 100_000)) * 8).astype(np.float32)
    targets = rng.integers(0, rows.shape[1], len(rows))
    wide = rows.astype(np.float64)
    peak = wide.max(axis=1)
    reference = (
        wide[np.arange(len(rows)), targets]
        - peak
        - np.log(np.exp(wide - peak[:, None]).sum(axis=1))
    )
    np.testing.assert_allclose(log_softmax_at(rows, targets), reference, atol=1e-4)


def test_loglik_per_token_sums_to_total(engine):
    prompts = [PERSONAS[0], PERSONAS[1]]
    per_token = engine.loglik(prompts, " Hello there.", per_token=True)
    total = engine.loglik(prompts, " Hello there.")
    assert per_token.shape == (2, len(engine.tokenize(" Hello there.")))
    np.testing.assert_allclose(per_token.sum(axis=1), total, atol=1e-3)
    assert np.all(total < 0)


def test_loglik_discriminates_personas(engine):
    prompts = [render_dialogue(engine.chat, p, [], owner="ada") for p in PERSONAS]
    scores = engine.loglik(prompts, UTTERANCES[0])
    assert int(np.argmax(scores)) == 0
    scores = engine.loglik(prompts, UTTERANCES[1])
    assert int(np.argmax(scores)) == 1


def test_choice_sums_to_one_and_ignores_option_order(engine):
    prompt = "Question: Is fire hot? Answer:"
    options = [" yes", " no", " it depends on the kind of fire"]
    forward = engine.choice(prompt, options)
    backward = engine.choice(prompt, options[::-1])[::-1]
    assert forward.sum() == pytest.approx(1.0)
    assert np.all(forward > 0)
    np.testing.assert_allclose(forward, backward, atol=2e-3)
    capital = engine.choice("The capital of France is", [" Paris", " a banana"])
    assert capital[0] > 0.9


def test_option_logprobs_read_single_tokens_at_one_position(engine, naive):
    asked = [Message("bob", "How happy are you, from 1 to 7?")]
    prompt = render_dialogue(engine.chat, PERSONAS[0], asked, owner="ada")
    points = [str(k) for k in range(1, 8)]
    assert all(len(engine.tokenize(p)) == 1 for p in points)
    engine.reset()
    before = engine.stats.tokens_decoded
    values = engine.option_logprobs([(prompt, points)])[0]
    tokens = engine.prompt_tokens(prompt)
    # Seven options of one token: one decode of the prompt, nothing more.
    assert engine.stats.tokens_decoded - before == len(tokens)
    reference = [
        naive.token_logprobs(np.concatenate([tokens, engine.tokenize(p)]), len(tokens))[0]
        for p in points
    ]
    np.testing.assert_allclose(values, reference, atol=0.02)
    assert np.all(values < 0) and np.exp(values).sum() <= 1 + 1e-6


def test_option_logprobs_mix_single_and_longer_options_like_choice(engine, naive):
    question = "Question: Is fire hot? Answer:"
    mixed = [" yes", " no", " it depends on the kind of fire"]
    assert [len(engine.tokenize(o)) for o in mixed][:2] == [1, 1]
    prompt = render_dialogue(engine.chat, PERSONAS[1], [], owner="ada")
    values = engine.option_logprobs([(question, mixed), (prompt, ["Hello there.", "Hi"])])
    for (text, options), row in zip(
        [(question, mixed), (prompt, ["Hello there.", "Hi"])], values, strict=True
    ):
        tokens = engine.prompt_tokens(text)
        reference = [
            naive.token_logprobs(np.concatenate([tokens, engine.tokenize(o)]), len(tokens)).sum()
            for o in options
        ]
        np.testing.assert_allclose(row, reference, atol=0.05)
    probabilities = np.exp(values[0] - values[0].max())
    np.testing.assert_allclose(
        probabilities / probabilities.sum(), engine.choice(question, mixed), atol=1e-3
    )
    with pytest.raises(ValueError, match="at least one option"):
        engine.option_logprobs([(question, [])])
    with pytest.raises(ValueError, match="is empty"):
        engine.option_logprobs([(question, ["yes", ""])])


def test_a_lone_token_over_a_full_cache_matches_a_fresh_decode(engine):
    """A one-token decode over 512+ cache cells takes llama.cpp's split-KV path.

    That path gave logits up to 0.6 away from the usual one (2 threads); the engine
    pads such micro-batches with a throwaway companion token so they never take it.
    """
    asked = [Message("bob", "Pick a digit.")]
    prompt = render_dialogue(engine.chat, PERSONAS[2], asked, owner="ada")
    digits = [str(k) for k in range(10)]
    engine.reset()
    fresh = engine.option_logprobs([(prompt, digits)])[0]
    filler = " ".join(["The quick brown fox jumps over the lazy dog."] * 70)
    engine.loglik(["Zebra"], filler)  # 700 more cells: attention now spans 768+
    assert sum(len(s.tokens) for s in engine.pool.sequences) > 600
    # The prompt is cached: only its last token is decoded again, alone.
    before = engine.stats.tokens_decoded
    again = engine.option_logprobs([(prompt, digits)])[0]
    assert engine.stats.tokens_decoded - before == 1
    np.testing.assert_allclose(again, fresh, atol=1e-5)


def test_generate_with_per_prompt_seeds_ignores_the_batch(engine):
    prompts = [render_dialogue(engine.chat, p, [], owner="ada") for p in PERSONAS]
    engine.reset()
    together = engine.generate(prompts, max_tokens=16, seeds=[11, 12, 13], stop=["\n"])
    engine.reset()
    alone = engine.generate(prompts[2:], max_tokens=16, seeds=[13], stop=["\n"])
    assert alone == together[2:]
    engine.reset()
    flipped = engine.generate(prompts[::-1], max_tokens=16, seeds=[13, 12, 11], stop=["\n"])
    assert flipped == together[::-1]
    with pytest.raises(ValueError, match="3 seeds for 2 prompts"):
        engine.generate(prompts[:2], seeds=[1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        engine.generate(prompts[:1], seeds=[-1])


def test_generate_is_batched_seeded_and_stops(engine):
    prompts = [render_dialogue(engine.chat, p, [], owner="ada") for p in PERSONAS]
    engine.reset()
    first = engine.generate(prompts, max_tokens=24, seed=3, stop=["\n"])
    engine.reset()
    again = engine.generate(prompts, max_tokens=24, seed=3, stop=["\n"])
    assert first == again
    assert len(first) == 3 and all(isinstance(t, str) and t for t in first)
    assert all("\n" not in t for t in first)
    assert len(set(first)) == 3


def test_generate_greedy_is_deterministic_without_reset(engine):
    prompt = [render_dialogue(engine.chat, PERSONAS[1], [], owner="ada")]
    assert engine.generate(prompt, max_tokens=12, temperature=0) == engine.generate(
        prompt, max_tokens=12, temperature=0
    )


def test_generate_same_seed_same_text_in_new_process(engine):
    code = textwrap.dedent(
        """
        from simulacra.llm.engine import Engine
        from simulacra.llm.chat import render_dialogue
        e = Engine.load(n_ctx=4096)
        p = [render_dialogue(e.chat, d, [], owner="ada") for d in PERSONAS]
        print(repr(e.generate(p, max_tokens=20, seed=11, stop=["\\n"])))
        """
    ).replace("PERSONAS", repr(PERSONAS))
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.strip().startswith("[")


def test_bad_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        Engine.load(tmp_path / "missing.gguf")
    with pytest.raises(ModelNotFoundError, match="unknown model 'no-such-model'"):
        Engine.load("no-such-model")


def test_kv_streams_too_small_for_the_pool_is_a_clear_error():
    with pytest.raises(ValueError, match="raise n_ctx or lower n_seq_max"):
        Engine.load(n_ctx=256, n_seq_max=32, kv_streams=True)


def test_corrupt_model_file_is_a_clear_error(tmp_path, engine):
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_bytes(b"hello, I am not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        Engine.load(not_gguf)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(engine.model_path.read_bytes()[: 1 << 20])
    with pytest.raises(ModelLoadError, match="could not load"):
        Engine.load(truncated)


def test_bad_requests_are_clear_errors(engine):
    with pytest.raises(ValueError, match="non-empty sequence of prompts"):
        engine.loglik([], "text")
    with pytest.raises(ValueError, match="non-empty continuation"):
        engine.loglik(["a prompt"], "")
    with pytest.raises(ValueError, match="longer than the context"):
        engine.loglik(["a prompt"], "word " * 5000)
    with pytest.raises(ValueError, match="at least two options"):
        engine.choice("q", ["only"])
    with pytest.raises(ValueError, match="non-empty sequence of prompts"):
        engine.generate([])
    with pytest.raises(ValueError, match="temperature"):
        engine.generate(["x"], temperature=-1)
    # The engine still works after rejected requests.
    assert np.isfinite(engine.loglik(["Hello"], " world")).all()


def test_metadata_reads_the_models_gguf_keys(engine):
    assert engine.metadata("general.architecture") == "llama"
    assert "<|im_start|>" in (engine.metadata("tokenizer.chat_template") or "")
    assert engine.metadata("no.such.key") is None
