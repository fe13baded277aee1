"""Ranking metrics with binary relevance, as RecBole defines them.

Each takes ``hits`` (n_users, K_max) booleans -- whether the item at rank r is relevant -- and
``n_relevant`` (n_users,), and returns one value per user for a cut-off ``k``:

- ``hit@k``       1 if any of the top k is relevant.
- ``precision@k`` relevant in top k / k.
- ``recall@k``    relevant in top k / all relevant.
- ``ndcg@k``      sum over relevant ranks r <= k of 1/log2(r+1), divided by the same sum for an
                  ideal list (min(k, n_relevant) relevant items on top).
- ``mrr@k``       1/rank of the first relevant item within the top k, else 0.
- ``f1@k``        harmonic mean of precision@k and recall@k, 2PR / (P + R); 0 when both are 0.

Users with no relevant items have no defined recall/NDCG and are left out of every average.
The measures of the whole ranking, without a cut-off (``gauc``, ``auc``), are in ``recause.evaluation.auc``.

``weighted_gains`` gives the numerators of the self-normalised IPS (SNIPS) estimates of recall and
NDCG (``recause.evaluation.exposure.SnipsTally``): per user, the sum over relevant items i ranked
r <= k of w_i * c(r), with c(r) = 1 (recall) or 1/log2(r+1) (NDCG) -- the same gains as above.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def _gains(hits: np.ndarray, k: int, discounted: bool) -> np.ndarray:
    """Gain of each of the top k ranks: 1 per hit, or 1/log2(rank+1) per hit when ``discounted``."""
    top = hits[:, :k]
    return top * _discounts(k)[: top.shape[1]] if discounted else top.astype(np.float64)


def hit(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].any(axis=1).astype(np.float64)


def precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / k


def recall(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / n_relevant


def ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    dcg = _gains(hits, k, discounted=True).sum(axis=1)
    ideal = np.cumsum(_discounts(k))[np.minimum(n_relevant, k).astype(int) - 1]
    return dcg / ideal


def mrr(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    top = hits[:, :k]
    first = top.argmax(axis=1)
    return np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)


def f1(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    p, r = precision(hits, n_relevant, k), recall(hits, n_relevant, k)
    total = p + r
    return np.divide(2 * p * r, total, out=np.zeros_like(total), where=total > 0)


METRICS: dict[str, MetricFn] = {
    "recall": recall,
    "ndcg": ndcg,
    "mrr": mrr,
    "hit": hit,
    "precision": precision,
    "f1": f1,
}


def per_user_metrics(
    hits: np.ndarray, n_relevant: np.ndarray, ks: Iterable[int], names: Iterable[str]
) -> dict[str, np.ndarray]:
    """Per-user values of every ``name@k``, for users with at least one relevant item only."""
    has_truth = n_relevant > 0
    hits, n_relevant = hits[has_truth], n_relevant[has_truth]
    return {f"{name}@{k}": METRICS[name](hits, n_relevant, k) for name in names for k in ks}


WEIGHTED: dict[str, bool] = {"recall": False, "ndcg": True}  # metric -> whether its gain is discounted


def weighted_gains(hits: np.ndarray, ranked_weights: np.ndarray, k: int, name: str) -> np.ndarray:
    """Per user, sum over the top k of (weight of the ranked item) * (gain of ``name`` at its rank, if a hit).

    ``ranked_weights`` (n_users, K_max) holds the weight of the item at each rank; ``name`` is one of
    ``WEIGHTED``. With all weights 1 this is the number of hits (recall) or the DCG (NDCG) in the top k.
    """
    return (_gains(hits, k, WEIGHTED[name]) * ranked_weights[:, :k]).sum(axis=1)
