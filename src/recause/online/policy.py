"""Serving policies: which k items a response shows, and the probability that each was shown at its position.

A policy sees one user's scores over the catalogue and the items to leave out (already seen). Its *pool* is the
user's ``pool`` best allowed items by score (the same tie rule as ``recause.evaluation.ranking.top_k``).

- ``greedy``: the top-k, in order (or a re-ranker's k, e.g. ``recause.fairness.rerank``). Propensity 1 at each
  shown position.
- ``epsilon`` (epsilon-greedy over lists): with probability ``1 - eps`` the top-k, else a uniform random ordered
  k-subset of the pool. A pool item ``a`` lands at position ``j`` with probability
  ``pi_j(a) = (1 - eps) 1[a = top_j] + eps / |pool|``, exactly.
- ``softmax`` (Plackett-Luce over the pool): items are drawn one position at a time without replacement with
  probability ``exp(z_a / tau) / sum_remaining exp(z_b / tau)``, ``z`` the pool's scores standardised. The marginal
  ``pi_j(a)`` has no closed form; it is estimated from ``samples`` lists drawn with the Gumbel-top-k trick
  (standard error <= 0.5 / sqrt(samples)), and the shown list is one of them.

The marginals ``pi_j(a)`` are what off-policy estimators need from the logging policy (Open Bandit Dataset's
``propensity_score``: Saito et al., "Open Bandit Dataset and Pipeline", NeurIPS 2021 Datasets): the exposure log
stores them, and ``marginals`` gives them for any policy, to evaluate one policy on another's log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recause.evaluation.ranking import top_k

POLICIES = ("greedy", "epsilon", "softmax")
Rank = Callable[..., np.ndarray]  # (scores (users, items), k, excluded=...) -> (users, k) item columns, -1 pads


@dataclass(frozen=True)
class PolicySettings:
    name: str = "greedy"
    epsilon: float = 0.1
    temperature: float = 0.05
    pool: int = 50
    samples: int = 4096

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown serving policy '{self.name}': choose one of {', '.join(POLICIES)}")


@dataclass(frozen=True)
class Shown:
    """One response: item columns best first, and each one's probability of being shown at its position."""

    items: np.ndarray  # (k',) int, k' <= k when fewer items are allowed
    propensities: np.ndarray  # (k',) float in (0, 1]
    scores: np.ndarray  # (k',) the model's scores of the shown items


def ranked_pool(scores: np.ndarray, excluded: np.ndarray | None, size: int) -> np.ndarray:
    """The ``size`` best allowed item columns of one user, best first (fewer when fewer are allowed)."""
    best = top_k(scores[None, :], size, None if excluded is None else excluded[None, :])[0]
    return best[best >= 0]


def _plackett_luce_lists(pool_scores: np.ndarray, k: int, temperature: float, draws: int, rng) -> np.ndarray:  # noqa: ANN001
    """``draws`` Plackett-Luce lists of length ``k`` over the pool (positions into it), by Gumbel-top-k."""
    spread = pool_scores.std()
    standard = (pool_scores - pool_scores.mean()) / (spread if spread > 0 else 1.0)
    perturbed = standard[None, :] / temperature + rng.gumbel(size=(draws, len(pool_scores)))
    return np.argsort(-perturbed, axis=1, kind="stable")[:, :k]


def pool_marginals(
    pool_scores: np.ndarray, k: int, settings: PolicySettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(k', pool) marginals ``pi_j(a)`` over the pool's positions, and one list drawn from the policy (pool positions).

    The pool is ordered best first, so the greedy list is ``0..k'-1``.
    """
    n = len(pool_scores)
    k = min(k, n)
    greedy = np.arange(k)
    marginals = np.zeros((k, n))
    if settings.name == "greedy" or n == 0:
        marginals[greedy, greedy] = 1.0
        return marginals, greedy
    if settings.name == "epsilon":
        marginals += settings.epsilon / n
        marginals[greedy, greedy] += 1.0 - settings.epsilon
        explore = rng.random() < settings.epsilon
        return marginals, (rng.permutation(n)[:k] if explore else greedy)
    lists = _plackett_luce_lists(pool_scores, k, settings.temperature, settings.samples, rng)
    np.add.at(marginals, (np.broadcast_to(np.arange(k), lists.shape), lists), 1.0 / settings.samples)
    return marginals, lists[0]


def _on_pool(
    scores: np.ndarray,
    excluded: np.ndarray | None,
    k: int,
    settings: PolicySettings,
    rng: np.random.Generator,
    rerank: Rank | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The user's pool (item columns), the policy's marginals over it, and one list drawn (pool positions).
    ``rerank`` orders the greedy list (the exploring policies explore the model's own pool)."""
    if settings.name == "greedy" and rerank is not None:
        listed = rerank(scores[None, :], k, excluded=None if excluded is None else excluded[None, :])[0]
        pool = listed[listed >= 0]
    else:
        pool = ranked_pool(scores, excluded, k if settings.name == "greedy" else max(k, settings.pool))
    return pool, *pool_marginals(scores[pool].astype(np.float64), k, settings, rng)


def choose(
    scores: np.ndarray,
    excluded: np.ndarray | None,
    k: int,
    settings: PolicySettings,
    rng: np.random.Generator,
    rerank: Rank | None = None,
) -> Shown:
    """The list ``settings``' policy shows one user (``scores`` over the catalogue), with its propensities;
    ``rerank`` (greedy only) picks and orders the list instead of the plain top-k."""
    pool, on_pool, shown = _on_pool(scores, excluded, k, settings, rng, rerank)
    items = pool[shown]
    return Shown(items, on_pool[np.arange(len(shown)), shown], scores[items])


def marginals(
    scores: np.ndarray, excluded: np.ndarray | None, k: int, settings: PolicySettings, seed: int = 0
) -> np.ndarray:
    """(k', n_items) probability that ``settings``' policy shows each catalogue item at each position to one user."""
    pool, on_pool, _ = _on_pool(scores, excluded, k, settings, np.random.default_rng(seed))
    full = np.zeros((on_pool.shape[0], len(scores)))
    full[:, pool] = on_pool
    return full
