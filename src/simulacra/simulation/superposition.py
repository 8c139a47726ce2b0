"""The superposition of simulacra: a distribution over candidate personas.

Following Shanahan, McDonell & Reynolds ("Role play with large language models",
Nature 2023), a dialogue agent does not commit to one character in advance; it
holds a distribution over characters and narrows it as the dialogue goes on. For
K candidate personas with prior ``pi_0``, each observed utterance ``u`` with
per-persona log-likelihood ``l_k(u)`` updates the distribution by the tempered
Bayes rule

    pi_t(k) ∝ pi_{t-1}(k) · exp(beta · l_k(u)),

where ``beta = 1`` is exact Bayes, ``beta < 1`` slows the collapse and
``beta = 0`` freezes the prior. Optionally ``l_k`` is divided by the number of
tokens of the utterance ("per-token" normalisation).

Everything is kept in log space and renormalised with a log-sum-exp, so the
distribution stays exactly normalised and finite for log-likelihood gaps of
thousands of nats. Entries with zero prior weight are ``-inf`` and stay so.

The module knows nothing about language models or Mesa: it is a set of small pure
functions on log-weight vectors and the :class:`Superposition` class built on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MAP_TIE_TOLERANCE",
    "Superposition",
    "effective_number",
    "entropy",
    "kl_divergence",
    "log_normalize",
    "normalized_entropy",
    "tempered_update",
]

Normalize = Literal["none", "per_token"]
_NORMALIZE_MODES: tuple[str, ...] = ("none", "per_token")

MAP_TIE_TOLERANCE = 1e-9
"""Log probabilities (nats) this close to the largest count as tied for the MAP."""


# --------------------------------------------------------------------------- maths


def _as_log_vector(log_w: ArrayLike, what: str = "log weights") -> np.ndarray:
    """Return ``log_w`` as a 1-D float array, rejecting NaN and +inf."""
    arr = np.array(log_w, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D vector, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{what} contain NaN")
    if np.isposinf(arr).any():
        raise ValueError(f"{what} contain +inf")
    return arr


def log_normalize(log_w: ArrayLike) -> np.ndarray:
    """Normalise a vector of log weights so that its exponentials sum to one.

    Args:
        log_w: 1-D log weights. ``-inf`` marks a zero weight.

    Returns:
        ``log_w - logsumexp(log_w)``: finite wherever the weight is positive,
        ``-inf`` where it is zero.

    Raises:
        ValueError: if ``log_w`` is not a non-empty 1-D vector, contains NaN or
            +inf, or is ``-inf`` everywhere (all weights zero).

    """
    arr = _as_log_vector(log_w)
    top = arr.max()
    if top == -np.inf:
        raise ValueError("all weights are zero (every log weight is -inf)")
    shifted = arr - top  # the largest entry is exactly 0, so the sum is in [1, K]
    return shifted - np.log(np.sum(np.exp(shifted)))


def tempered_update(log_p: ArrayLike, logliks: ArrayLike, beta: float) -> np.ndarray:
    """Apply one tempered Bayes update in log space.

    Computes ``log_normalize(log_p + beta * logliks)``. Entries where ``log_p`` is
    ``-inf`` (outside the support) stay ``-inf`` and their log-likelihoods are
    ignored, so they may be NaN. Log-likelihoods are shifted by their maximum on
    the support first, which changes nothing mathematically and keeps the sum
    accurate when all of them are large and negative.

    Args:
        log_p: 1-D log probabilities (or unnormalised log weights) before the update.
        logliks: log-likelihood of the observation under each entry, same shape.
        beta: inverse temperature, finite and ``>= 0``; 0 returns ``log_p``
            renormalised.

    Returns:
        The normalised log posterior.

    Raises:
        ValueError: on shape mismatch, a negative or non-finite ``beta``, or a
            non-finite log-likelihood on the support.

    """
    prior = _as_log_vector(log_p, "log probabilities")
    lik = np.array(logliks, dtype=float)
    if lik.shape != prior.shape:
        raise ValueError(
            f"logliks must have shape {prior.shape} (one per simulacrum), got {lik.shape}"
        )
    beta = float(beta)
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be finite and >= 0, got {beta}")
    support = np.isfinite(prior)
    if not support.any():
        raise ValueError("all weights are zero (every log weight is -inf)")
    lik_s = lik[support]
    if not np.isfinite(lik_s).all():
        bad = np.flatnonzero(support)[~np.isfinite(lik_s)].tolist()
        raise ValueError(f"logliks must be finite on the support; non-finite at index {bad}")
    out = np.full_like(prior, -np.inf)
    if beta == 0.0:
        out[support] = prior[support]
    else:
        out[support] = prior[support] + beta * (lik_s - lik_s.max())
    return log_normalize(out)


def _probs(log_p: np.ndarray) -> np.ndarray:
    """Exponentiate normalised log probabilities (zero where ``-inf``)."""
    return np.exp(log_p)


def entropy(log_p: ArrayLike) -> float:
    """Shannon entropy in nats, with ``0 · log 0 = 0``.

    Args:
        log_p: 1-D log probabilities; they are renormalised first.

    Returns:
        ``H = -sum_k p_k log p_k`` (``>= 0``).

    """
    lp = log_normalize(log_p)
    safe = np.where(np.isfinite(lp), lp, 0.0)
    terms = np.exp(safe) * safe * np.isfinite(lp)
    return max(0.0, float(-terms.sum()))


def normalized_entropy(log_p: ArrayLike) -> float:
    """Entropy divided by its maximum ``log K``, in ``[0, 1]``.

    ``K`` is the support size: the number of entries whose log weight is not
    ``-inf``. Entries with a vanishing but positive probability still count.

    Args:
        log_p: 1-D log probabilities; they are renormalised first.

    Returns:
        ``H / log K``, or 0.0 when ``K == 1``.

    """
    lp = log_normalize(log_p)
    k = int(np.isfinite(lp).sum())
    if k <= 1:
        return 0.0
    return min(1.0, entropy(lp) / np.log(k))


def effective_number(log_p: ArrayLike) -> float:
    """Effective number of simulacra ``exp(H)``, between 1 and ``K``.

    Args:
        log_p: 1-D log probabilities; they are renormalised first.

    Returns:
        The exponential of the entropy in nats.

    """
    return float(np.exp(entropy(log_p)))


def kl_divergence(log_p: ArrayLike, log_q: ArrayLike) -> float:
    """Kullback-Leibler divergence ``KL(p || q)`` in nats.

    Terms with ``p_k = 0`` contribute 0; a term with ``p_k > 0`` and ``q_k = 0``
    makes the divergence ``+inf``.

    Args:
        log_p: 1-D log probabilities of ``p``; renormalised first.
        log_q: 1-D log probabilities of ``q``, same shape; renormalised first.

    Returns:
        ``sum_k p_k (log p_k - log q_k)`` (``>= 0``, possibly ``inf``).

    Raises:
        ValueError: on shape mismatch or invalid inputs (see :func:`log_normalize`).

    """
    lp = log_normalize(log_p)
    lq = log_normalize(log_q)
    if lp.shape != lq.shape:
        raise ValueError(f"shape mismatch: {lp.shape} vs {lq.shape}")
    in_p = np.isfinite(lp)
    if (in_p & ~np.isfinite(lq)).any():
        return float("inf")
    diff = np.where(in_p, lp - np.where(in_p, lq, 0.0), 0.0)
    terms = _probs(lp) * diff
    return max(0.0, float(terms.sum()))


# ------------------------------------------------------------------------- class


class Superposition:
    """A distribution over named simulacra, updated by tempered Bayes in log space.

    Attributes:
        names: the simulacra, in order.
        beta: inverse temperature of the update (``>= 0``; 1 is exact Bayes).
        normalize: ``"none"`` or ``"per_token"`` (divide each log-likelihood by
            the utterance's token count before tempering).
        log_prior: normalised log prior; ``-inf`` outside the support.
        log_probs: the current normalised log posterior.
        log_probs_previous: the log posterior before the last :meth:`update`
            (equal to ``log_prior`` before the first update).
        n_updates: how many times :meth:`update` has been called.

    """

    def __init__(
        self,
        names: Sequence[str],
        prior: ArrayLike | None = None,
        *,
        beta: float = 1.0,
        normalize: Normalize = "none",
    ) -> None:
        """Create a superposition.

        Args:
            names: unique simulacrum names (at least one).
            prior: non-negative weights, one per name, with a positive sum;
                ``None`` gives the uniform prior. Zero weights exclude a name from
                the support for good.
            beta: inverse temperature, finite and ``>= 0``.
            normalize: ``"none"`` or ``"per_token"``.

        Raises:
            ValueError: on empty or duplicate names, a prior of the wrong shape or
                with negative, non-finite or all-zero weights, a bad ``beta`` or an
                unknown ``normalize``.

        """
        if isinstance(names, str):
            raise ValueError("names must be a sequence of strings, not a single string")
        self.names: tuple[str, ...] = tuple(names)
        if not self.names:
            raise ValueError("a superposition needs at least one simulacrum")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"simulacrum names must be unique, got {self.names}")
        beta = float(beta)
        if not np.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be finite and >= 0, got {beta}")
        if normalize not in _NORMALIZE_MODES:
            raise ValueError(f"normalize must be one of {_NORMALIZE_MODES}, got {normalize!r}")
        self.beta: float = beta
        self.normalize: Normalize = normalize
        k = len(self.names)
        if prior is None:
            weights = np.ones(k)
        else:
            weights = np.array(prior, dtype=float)
            if weights.shape != (k,):
                raise ValueError(f"prior must have shape ({k},), got {weights.shape}")
            if not np.isfinite(weights).all() or (weights < 0).any():
                raise ValueError(f"prior weights must be finite and >= 0, got {weights}")
            if weights.sum() <= 0:
                raise ValueError("prior weights must have a positive sum")
        with np.errstate(divide="ignore"):
            self.log_prior: np.ndarray = log_normalize(np.log(weights))
        self.log_probs: np.ndarray = self.log_prior.copy()
        self.log_probs_previous: np.ndarray = self.log_prior.copy()
        self.n_updates: int = 0
        self._map_choice: str | None = None  # a tie broken by map(rng), kept while still tied

    # -- state -------------------------------------------------------------------

    @property
    def probs(self) -> np.ndarray:
        """Current probabilities (a fresh array summing to one)."""
        p = _probs(self.log_probs)
        return p / p.sum()

    @property
    def support(self) -> tuple[str, ...]:
        """Names with a positive prior weight."""
        return tuple(n for n, lp in zip(self.names, self.log_prior, strict=True) if lp > -np.inf)

    def __len__(self) -> int:
        return len(self.names)

    # -- dynamics ----------------------------------------------------------------

    def update(self, logliks: ArrayLike, n_tokens: int | None = None) -> None:
        """Condition on one observation.

        Sets ``pi_t ∝ pi_{t-1} · exp(beta · l)``, where ``l`` is ``logliks``,
        divided by ``n_tokens`` when ``normalize == "per_token"``. With
        ``beta == 0`` the distribution is left exactly as it was.

        Args:
            logliks: the observation's log-likelihood under each simulacrum, in
                the order of :attr:`names`. Must be finite on the support; entries
                outside it (zero prior) are ignored and may be NaN.
            n_tokens: number of tokens of the observation; required (``>= 1``)
                when ``normalize == "per_token"``, ignored otherwise.

        Raises:
            ValueError: if ``logliks`` has the wrong shape or a non-finite entry
                on the support, or ``n_tokens`` is missing or < 1 in per-token mode.

        """
        lik = np.array(logliks, dtype=float)
        if lik.shape != (len(self.names),):
            raise ValueError(
                f"logliks must have shape ({len(self.names)},), one per simulacrum "
                f"{self.names}, got {lik.shape}"
            )
        if self.normalize == "per_token":
            if n_tokens is None or isinstance(n_tokens, bool) or int(n_tokens) != n_tokens:
                raise ValueError("normalize='per_token' needs an integer n_tokens")
            if n_tokens < 1:
                raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
            lik = lik / int(n_tokens)
        new = tempered_update(self.log_probs, lik, self.beta)  # validates lik
        self.log_probs_previous = self.log_probs
        self.log_probs = self.log_probs.copy() if self.beta == 0.0 else new
        self.n_updates += 1

    # -- summaries ---------------------------------------------------------------

    def entropy(self) -> float:
        """Entropy of the current distribution, in nats."""
        return entropy(self.log_probs)

    def normalized_entropy(self) -> float:
        """Entropy over ``log K`` (``K`` = support size); 0.0 when ``K == 1``."""
        return normalized_entropy(self.log_probs)

    def effective_number(self) -> float:
        """``exp(entropy)``: how many simulacra are effectively still in play."""
        return effective_number(self.log_probs)

    def kl_from_prior(self) -> float:
        """``KL(pi_t || pi_0)``: total information gained so far, in nats."""
        return kl_divergence(self.log_probs, self.log_prior)

    def kl_from_previous(self) -> float:
        """``KL(pi_t || pi_{t-1})``: information gained by the last update, in nats."""
        return kl_divergence(self.log_probs, self.log_probs_previous)

    def map_candidates(self, tolerance: float = MAP_TIE_TOLERANCE) -> tuple[str, ...]:
        """The simulacra tied for the highest probability, in :attr:`names` order.

        Args:
            tolerance: how far below the largest log probability (in nats) a
                simulacrum may be and still count as tied; ``>= 0``.

        Returns:
            Every name whose log probability is within ``tolerance`` of the maximum
            (at least one).

        Raises:
            ValueError: if ``tolerance`` is negative or not finite.

        """
        tolerance = float(tolerance)
        if not np.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
        top = self.log_probs.max()
        tied = np.flatnonzero(self.log_probs >= top - tolerance)
        return tuple(self.names[int(k)] for k in tied)

    def map(
        self, rng: np.random.Generator | None = None, *, tolerance: float = MAP_TIE_TOLERANCE
    ) -> str:
        """Return the most probable simulacrum, breaking ties explicitly.

        Simulacra whose log probability is within ``tolerance`` nats of the largest
        are tied (:meth:`map_candidates`); under a flat prior every simulacrum is.

        - Without ``rng``, a tie goes to the first tied name in :attr:`names`
          (deterministic, but it makes list order matter).
        - With ``rng``, a tie is broken by one uniform draw ``rng.integers(n_tied)``.
          The chosen name is remembered: as long as it stays tied for the maximum,
          every later call (with or without ``rng``) returns it and draws nothing,
          so an agent does not switch between equally likely personas from one
          call to the next. An update that leaves it below the maximum forgets it.
          Without a tie no random number is drawn, so the stream of ``rng``
          changes only where list order would otherwise have decided.

        Args:
            rng: the generator to break ties with (a model passes its own
                ``model.rng``, so the choice is seeded by the scenario seed).
            tolerance: the tie tolerance in nats, ``>= 0``.

        Returns:
            The MAP simulacrum's name.

        """
        tied = self.map_candidates(tolerance)
        if self._map_choice in tied:
            return self._map_choice
        self._map_choice = None
        if len(tied) == 1 or rng is None:
            return tied[0]
        self._map_choice = tied[int(rng.integers(len(tied)))]
        return self._map_choice

    def sample(self, rng: np.random.Generator) -> str:
        """Draw one simulacrum name from the current distribution.

        Args:
            rng: the random generator to draw with.

        """
        return self.names[int(rng.choice(len(self.names), p=self.probs))]

    def as_dict(self) -> dict[str, float]:
        """Return the current probabilities by name."""
        return {n: float(p) for n, p in zip(self.names, self.probs, strict=True)}

    def copy(self) -> Superposition:
        """Return an independent copy with the same state."""
        new = object.__new__(Superposition)
        new.names = self.names
        new.beta = self.beta
        new.normalize = self.normalize
        new.log_prior = self.log_prior.copy()
        new.log_probs = self.log_probs.copy()
        new.log_probs_previous = self.log_probs_previous.copy()
        new.n_updates = self.n_updates
        new._map_choice = self._map_choice
        return new

    def __repr__(self) -> str:
        probs = ", ".join(f"{n!r}: {p:.3g}" for n, p in self.as_dict().items())
        return (
            f"Superposition({{{probs}}}, beta={self.beta:g}, normalize={self.normalize!r}, "
            f"n_updates={self.n_updates})"
        )
