"""Tests of the superposition of simulacra and its tempered log-space update."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulacra.simulation.superposition import (
    Superposition,
    effective_number,
    entropy,
    kl_divergence,
    log_normalize,
    normalized_entropy,
    tempered_update,
)

NAMES = ("pirate", "sage", "clerk")


def _assert_normalised(log_p: np.ndarray) -> None:
    assert not np.isnan(log_p).any()
    assert not np.isposinf(log_p).any()
    assert math.isclose(float(np.exp(log_p).sum()), 1.0, rel_tol=0, abs_tol=1e-12)


# ------------------------------------------------------------------ pure functions


class TestLogNormalize:
    def test_normalises(self) -> None:
        out = log_normalize(np.log([1.0, 2.0, 7.0]))
        np.testing.assert_allclose(np.exp(out), [0.1, 0.2, 0.7])
        _assert_normalised(out)

    def test_huge_offsets(self) -> None:
        out = log_normalize([-1e5, -1e5 - math.log(3)])
        np.testing.assert_allclose(np.exp(out), [0.75, 0.25])

    def test_zero_weight_stays_minus_inf(self) -> None:
        out = log_normalize([0.0, -np.inf, 0.0])
        assert out[1] == -np.inf
        np.testing.assert_allclose(np.exp(out), [0.5, 0.0, 0.5])

    @pytest.mark.parametrize(
        "bad",
        [[-np.inf, -np.inf], [0.0, np.nan], [0.0, np.inf], [], [[0.0, 1.0]]],
    )
    def test_rejects(self, bad: list) -> None:
        with pytest.raises(ValueError):
            log_normalize(bad)


class TestTemperedUpdate:
    def test_two_way_bayes(self) -> None:
        # prior 0.5/0.5, likelihoods 0.8 and 0.2 -> posterior 0.8/0.2
        out = tempered_update(np.log([0.5, 0.5]), np.log([0.8, 0.2]), beta=1.0)
        np.testing.assert_allclose(np.exp(out), [0.8, 0.2])

    def test_known_bayes_with_unequal_prior(self) -> None:
        # prior 0.25/0.75, likelihoods 0.6/0.2 -> 0.15/0.15 -> 0.5/0.5
        out = tempered_update(np.log([0.25, 0.75]), np.log([0.6, 0.2]), beta=1.0)
        np.testing.assert_allclose(np.exp(out), [0.5, 0.5])

    def test_tempering_halves_the_log_odds(self) -> None:
        out = tempered_update([0.0, 0.0], [0.0, -2.0], beta=0.5)
        assert math.isclose(out[0] - out[1], 1.0)

    def test_beta_zero(self) -> None:
        log_p = np.log([0.2, 0.3, 0.5])
        np.testing.assert_allclose(tempered_update(log_p, [0.0, -50.0, -9e3], 0.0), log_p)

    def test_ignores_likelihoods_off_support(self) -> None:
        out = tempered_update([0.0, -np.inf, 0.0], [-1.0, np.nan, -1.0], 1.0)
        np.testing.assert_allclose(np.exp(out), [0.5, 0.0, 0.5])

    @pytest.mark.parametrize(
        ("logliks", "beta"),
        [([0.0, 0.0, 0.0], 1.0), ([0.0, np.nan], 1.0), ([0.0, -np.inf], 1.0), ([0.0, 0.0], -1.0)],
    )
    def test_rejects(self, logliks: list[float], beta: float) -> None:
        with pytest.raises(ValueError):
            tempered_update([0.0, 0.0], logliks, beta)


class TestInformation:
    def test_entropy_uniform_and_one_hot(self) -> None:
        assert math.isclose(entropy(np.log(np.full(4, 0.25))), math.log(4))
        assert entropy([0.0, -np.inf, -np.inf]) == 0.0
        assert normalized_entropy(np.log(np.full(5, 0.2))) == pytest.approx(1.0)
        assert normalized_entropy([0.0, -np.inf, -np.inf]) == 0.0
        assert effective_number(np.log(np.full(4, 0.25))) == pytest.approx(4.0)
        assert effective_number([0.0, -np.inf]) == pytest.approx(1.0)

    def test_entropy_two_way(self) -> None:
        h = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
        assert entropy(np.log([0.8, 0.2])) == pytest.approx(h)
        assert normalized_entropy(np.log([0.8, 0.2])) == pytest.approx(h / math.log(2))

    def test_normalized_entropy_counts_the_support_only(self) -> None:
        # two live entries out of three: uniform over the support is 1
        assert normalized_entropy([0.0, 0.0, -np.inf]) == pytest.approx(1.0)
        assert normalized_entropy([0.0]) == 0.0

    def test_entropy_with_underflowed_entry(self) -> None:
        assert entropy([0.0, -1e4]) == 0.0
        assert normalized_entropy([0.0, -1e4]) == 0.0

    def test_kl_known_values(self) -> None:
        p, q = np.log([0.5, 0.5]), np.log([0.9, 0.1])
        expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
        assert kl_divergence(p, q) == pytest.approx(expected)
        assert kl_divergence(p, p) == 0.0
        # KL(one-hot || uniform over K) = log K
        assert kl_divergence([0.0, -np.inf, -np.inf], np.log(np.full(3, 1 / 3))) == pytest.approx(
            math.log(3)
        )

    def test_kl_zeros(self) -> None:
        assert kl_divergence([0.0, -np.inf], [0.0, 0.0]) == pytest.approx(math.log(2))
        assert kl_divergence([0.0, 0.0], [0.0, -np.inf]) == math.inf

    def test_kl_shape_mismatch(self) -> None:
        with pytest.raises(ValueError):
            kl_divergence([0.0, 0.0], [0.0, 0.0, 0.0])


# ------------------------------------------------------------------ the class


class TestSuperposition:
    def test_uniform_default(self) -> None:
        s = Superposition(NAMES)
        np.testing.assert_allclose(s.probs, [1 / 3] * 3)
        assert s.names == NAMES
        assert s.normalized_entropy() == pytest.approx(1.0)
        assert s.effective_number() == pytest.approx(3.0)
        assert s.kl_from_prior() == 0.0
        assert s.kl_from_previous() == 0.0

    def test_prior_weights_are_normalised(self) -> None:
        s = Superposition(NAMES, [1, 2, 1])
        assert s.as_dict() == pytest.approx({"pirate": 0.25, "sage": 0.5, "clerk": 0.25})
        assert s.map() == "sage"

    def test_known_two_way_update(self) -> None:
        s = Superposition(("a", "b"))
        s.update(np.log([0.8, 0.2]))
        np.testing.assert_allclose(s.probs, [0.8, 0.2])
        np.testing.assert_allclose(np.exp(s.log_probs_previous), [0.5, 0.5])
        assert s.kl_from_previous() == pytest.approx(s.kl_from_prior())
        s.update(np.log([0.8, 0.2]))
        np.testing.assert_allclose(s.probs, [16 / 17, 1 / 17])
        np.testing.assert_allclose(np.exp(s.log_probs_previous), [0.8, 0.2])
        assert s.n_updates == 2

    def test_extreme_gaps(self) -> None:
        s = Superposition(NAMES)
        for _ in range(5):
            s.update([-3.0, -3.0 - 1e4, -3.0 - 2e4])
            _assert_normalised(s.log_probs)
            assert np.isfinite(s.log_probs).all()
        assert s.map() == "pirate"
        assert s.probs.sum() == pytest.approx(1.0, abs=1e-15)
        assert s.probs[0] == 1.0
        assert s.entropy() == 0.0
        assert s.effective_number() == 1.0
        assert s.kl_from_prior() == pytest.approx(math.log(3))
        # the evidence can still be reversed: the state kept the finite log-odds
        s.update([-1e6, 0.0, 0.0])
        _assert_normalised(s.log_probs)
        assert s.map() == "sage"

    def test_large_common_offset_is_harmless(self) -> None:
        s = Superposition(("a", "b"))
        s.update([-5000.0, -5000.0 - math.log(4)])
        np.testing.assert_allclose(s.probs, [0.8, 0.2])

    def test_beta_zero_leaves_it_unchanged(self) -> None:
        s = Superposition(NAMES, [1, 2, 3], beta=0.0)
        before = s.log_probs.copy()
        s.update([0.0, -1e4, -5.0])
        np.testing.assert_array_equal(s.log_probs, before)
        assert s.kl_from_previous() == 0.0

    def test_uniform_likelihoods_leave_it_unchanged(self) -> None:
        s = Superposition(NAMES, [1, 2, 3])
        before = s.probs
        s.update([-42.5, -42.5, -42.5])
        np.testing.assert_allclose(s.probs, before, rtol=0, atol=1e-15)
        assert s.kl_from_previous() == pytest.approx(0.0, abs=1e-15)

    def test_tempered_update(self) -> None:
        s = Superposition(("a", "b"), beta=0.5)
        s.update([0.0, -2 * math.log(4)])  # likelihood ratio 16, tempered to 4
        np.testing.assert_allclose(s.probs, [0.8, 0.2])

    def test_per_token_normalisation(self) -> None:
        s = Superposition(("a", "b"), normalize="per_token")
        s.update([-10.0, -10.0 - 40 * math.log(4)], n_tokens=40)
        np.testing.assert_allclose(s.probs, [0.8, 0.2])
        with pytest.raises(ValueError, match="n_tokens"):
            s.update([0.0, 0.0])
        with pytest.raises(ValueError, match="n_tokens"):
            s.update([0.0, 0.0], n_tokens=0)

    def test_n_tokens_ignored_without_per_token(self) -> None:
        s = Superposition(("a", "b"))
        s.update([0.0, -math.log(4)], n_tokens=40)
        np.testing.assert_allclose(s.probs, [0.8, 0.2])

    def test_zero_prior_entries_stay_zero(self) -> None:
        s = Superposition(NAMES, [1, 0, 1])
        assert s.support == ("pirate", "clerk")
        s.update([-100.0, 0.0, -100.0])
        s.update([-1e4, np.nan, -1e4 - 1])
        assert s.probs[1] == 0.0
        assert s.log_probs[1] == -np.inf
        _assert_normalised(s.log_probs)
        assert s.normalized_entropy() <= 1.0
        assert Superposition(NAMES, [0, 0, 1]).normalized_entropy() == 0.0

    def test_sampling_matches_the_posterior(self) -> None:
        s = Superposition(NAMES)
        s.update(np.log([0.6, 0.3, 0.1]))
        rng = np.random.default_rng(12345)
        n = 20_000
        draws = [s.sample(rng) for _ in range(n)]
        counts = np.array([draws.count(name) for name in NAMES])
        expected = n * s.probs
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 13.8  # chi-square, 2 dof, p = 0.001

    def test_sampling_never_returns_zero_mass(self) -> None:
        s = Superposition(NAMES, [1, 0, 1])
        s.update([0.0, 0.0, -1e4])
        rng = np.random.default_rng(0)
        assert {s.sample(rng) for _ in range(200)} == {"pirate"}

    def test_map_ties_go_to_first_without_a_generator(self) -> None:
        assert Superposition(NAMES, [1, 3, 3]).map() == "sage"
        assert Superposition(NAMES).map() == "pirate"

    def test_copy_is_independent(self) -> None:
        s = Superposition(NAMES)
        c = s.copy()
        c.update([0.0, -1.0, -2.0])
        np.testing.assert_allclose(s.probs, [1 / 3] * 3)
        assert c.n_updates == 1 and s.n_updates == 0
        assert c.names == s.names

    def test_repr(self) -> None:
        text = repr(Superposition(("a", "b"), [3, 1]))
        assert text.startswith("Superposition(")
        assert "'a': 0.75" in text and "beta=1" in text

    @pytest.mark.parametrize(
        "logliks", [[0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [[0.0, 0.0, 0.0]], [0.0, np.nan, 0.0]]
    )
    def test_update_rejects_bad_logliks(self, logliks: list) -> None:
        s = Superposition(NAMES)
        with pytest.raises(ValueError):
            s.update(logliks)
        np.testing.assert_allclose(s.probs, [1 / 3] * 3)  # state untouched
        assert s.n_updates == 0

    def test_update_rejects_infinite_loglik(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            Superposition(NAMES).update([0.0, -np.inf, 0.0])

    @pytest.mark.parametrize(
        ("names", "prior", "kwargs"),
        [
            ((), None, {}),
            (("a", "a"), None, {}),
            ("ab", None, {}),
            (("a", "b"), [1.0], {}),
            (("a", "b"), [1.0, -1.0], {}),
            (("a", "b"), [0.0, 0.0], {}),
            (("a", "b"), [1.0, np.nan], {}),
            (("a", "b"), None, {"beta": -0.1}),
            (("a", "b"), None, {"beta": math.inf}),
            (("a", "b"), None, {"normalize": "per_word"}),
        ],
    )
    def test_constructor_rejects(self, names: tuple, prior: list | None, kwargs: dict) -> None:
        with pytest.raises(ValueError):
            Superposition(names, prior, **kwargs)


class TestMapTieBreaking:
    def test_candidates_within_the_tolerance(self) -> None:
        s = Superposition(NAMES, [1, 3, 3])
        assert s.map_candidates() == ("sage", "clerk")
        s.update([0.0, 0.0, -1e-12])  # below the default tolerance: still tied
        assert s.map_candidates() == ("sage", "clerk")
        assert s.map_candidates(tolerance=0.0) == ("sage",)
        assert s.map_candidates(tolerance=10.0) == NAMES
        with pytest.raises(ValueError, match="tolerance"):
            s.map_candidates(tolerance=-1.0)

    def test_flat_prior_draws_uniformly_among_the_tied(self) -> None:
        rng = np.random.default_rng(0)
        counts = {name: 0 for name in NAMES}
        for _ in range(3000):
            counts[Superposition(NAMES).map(rng)] += 1
        assert all(900 < c < 1100 for c in counts.values()), counts

    def test_the_draw_is_the_generators(self) -> None:
        first = [Superposition(NAMES).map(np.random.default_rng(seed)) for seed in range(40)]
        again = [Superposition(NAMES).map(np.random.default_rng(seed)) for seed in range(40)]
        assert first == again
        assert set(first) == set(NAMES)  # not list order: every name wins for some seed
        rng = np.random.default_rng(5)
        expected = NAMES[int(np.random.default_rng(5).integers(3))]
        assert Superposition(NAMES).map(rng) == expected

    def test_no_tie_draws_nothing(self) -> None:
        rng = np.random.default_rng(1)
        state = rng.bit_generator.state
        assert Superposition(NAMES, [1, 2, 1]).map(rng) == "sage"
        assert rng.bit_generator.state == state

    def test_a_broken_tie_is_kept_while_still_tied(self) -> None:
        rng = np.random.default_rng(3)
        s = Superposition(NAMES)
        chosen = s.map(rng)
        state = rng.bit_generator.state
        assert [s.map(rng) for _ in range(5)] == [chosen] * 5
        assert s.map() == chosen  # a call without a generator agrees
        assert rng.bit_generator.state == state  # one draw only
        s.update([0.0, 0.0, 0.0])  # evidence that separates nothing
        assert s.map(rng) == chosen
        copy = s.copy()
        assert copy.map() == chosen

    def test_evidence_overrides_a_broken_tie(self) -> None:
        rng = np.random.default_rng(3)
        s = Superposition(NAMES)
        chosen = s.map(rng)
        other = next(n for n in NAMES if n != chosen)
        s.update([0.0 if n == other else -5.0 for n in NAMES])
        assert s.map(rng) == other
        assert s.map() == other
