"""Exposure-aware evaluation: unbiased (SNIPS) accuracy and the popularity bias of the recommendations.

Logged feedback is missing not at random: popular items are exposed, hence observed as positives,
far more often, so plain recall/NDCG on a logged test set reward recommending popularity. Two
complementary views, both accumulated over user batches by ``evaluate_ranking``:

- ``SnipsTally``: self-normalised inverse-propensity estimates of recall and NDCG (Yang et al.,
  RecSys 2018, "Unbiased offline recommender evaluation for missing-not-at-random implicit
  feedback"). Each test positive (u, i) is weighted by w_i = 1 / p_i, p_i the item's exposure
  propensity, and the estimate is the weighted mean gain over all test positives::

      snips_metric@k = sum_{u, i in T_u} w_i * c_k(rank_u(i)) / sum_{u, i in T_u} w_i

  with T_u the user's truth items (the candidate items among them, when candidates are given),
  rank_u(i) the item's 1-based rank in the user's list (infinite when it was not ranked),
  c_k(r) = 1[r <= k] for recall and 1[r <= k] / log2(r + 1) for NDCG. Pooling over all
  (user, item) pairs -- rather than normalising within each user -- is Yang et al.'s estimator of
  the average gain per relevant pair; per-user normalisation would divide by sums of only a few
  weights each, which is where self-normalisation is most variable. With all weights 1,
  ``snips_recall@k`` is the micro-averaged recall (all hits / all truth items). ``snips_ndcg@k``
  is a mean discounted gain, not divided by an ideal DCG, so it is not on the scale of ``ndcg@k``.
- ``ExposureTally``: how concentrated the top-k lists are on popular items -- the mean train
  popularity of recommended items, the share of the catalogue recommended at all (coverage), and
  the Gini index of how often each catalogue item is recommended.

Every result is an exact function of the per-user values (``math.fsum`` and integer counts), so it
does not depend on the order or batching of the users.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from recause.evaluation.metrics import WEIGHTED, weighted_gains


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative counts: 0 when all are equal, (n-1)/n when one holds everything.

    G = sum_j (2j - n - 1) x_(j) / (n sum_j x_j) over the counts sorted ascending (j = 1..n);
    0 for an empty or all-zero input. Integer counts are summed exactly.
    """
    x = np.sort(np.asarray(counts).ravel())
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return 0.0
    rank_weights = 2 * np.arange(1, n + 1) - n - 1
    return float((rank_weights * x).sum() / (n * total))


def inverse_propensity_weights(train: sp.spmatrix | np.ndarray, eta: float, clip: float) -> np.ndarray:
    """1 / p_i per item (float64, in [1, 1/clip]), p_i = ``propensities`` of the item's train count.

    ``train`` is the users x items train matrix (the count is then the number of train users with
    the item) or already the count per item. ``propensities`` -- the joint model's training
    propensities, reused so evaluation and training agree -- is (count / max count)^eta clipped to
    [clip, 1]; items without train users get the largest weight, 1 / clip.
    """
    # imported here: the models package pulls in torch, which the evaluation core does not need
    from recause.models.joint.debias import propensities

    counts = np.asarray((train > 0).sum(axis=0)).ravel() if sp.issparse(train) else np.asarray(train).ravel()
    return 1.0 / propensities(counts, eta, clip)


def exposure_k(ks: Iterable[int]) -> int:
    """The cut-off of the popularity-bias measures: 10 when evaluated, else the smallest k."""
    ks = sorted(set(ks))
    return 10 if 10 in ks else ks[0]


class SnipsTally:
    """Running sums of the SNIPS recall/NDCG numerators and denominators (module docstring)."""

    def __init__(self, item_weights: np.ndarray, ks: Iterable[int], candidates: np.ndarray | None = None):
        self.weights = np.asarray(item_weights, dtype=np.float64)
        if self.weights.ndim != 1 or (self.weights < 0).any() or not np.isfinite(self.weights).all():
            raise ValueError("item_weights must be one finite, non-negative weight per item")
        # truth items outside the candidates cannot be ranked; like recall, leave them out of the denominator
        self.truth_weights = self.weights if candidates is None else np.where(candidates, self.weights, 0.0)
        self.ks = sorted(set(ks))
        self.numerators: dict[str, list[np.ndarray]] = {f"snips_{m}@{k}": [] for m in WEIGHTED for k in self.ks}
        self.denominators: list[np.ndarray] = []

    def add(self, top: np.ndarray, hits: np.ndarray, truth: sp.csr_matrix) -> None:
        """One batch: ``top`` ranked items (-1 padding), their ``hits``, the users' ``truth`` rows."""
        if truth.shape[1] != len(self.weights):
            raise ValueError(f"{len(self.weights)} item weights for {truth.shape[1]} items")
        ranked_weights = np.where(top >= 0, self.weights[np.clip(top, 0, None)], 0.0)
        self.denominators.append(np.asarray((truth > 0).astype(np.float64) @ self.truth_weights).ravel())
        for m in WEIGHTED:
            for k in self.ks:
                self.numerators[f"snips_{m}@{k}"].append(weighted_gains(hits, ranked_weights, k, m))

    def result(self) -> dict[str, float]:
        total = math.fsum(np.concatenate(self.denominators).tolist()) if self.denominators else 0.0
        return {
            name: math.fsum(np.concatenate(parts).tolist()) / total if total > 0 else 0.0
            for name, parts in self.numerators.items()
        }


class ExposureTally:
    """How often each item appears in the top-k lists, and the popularity-bias measures derived from it.

    - ``mean_popularity@k``: train count of the recommended items, averaged over all recommended
      slots of all users (padding slots, when fewer than k items were allowed, do not count).
    - ``coverage@k``: share of the catalogue (the candidate items, when given) recommended to at
      least one user.
    - ``gini@k``: ``gini`` of the recommendation counts over the catalogue.
    """

    def __init__(self, popularity: np.ndarray, k: int, candidates: np.ndarray | None = None):
        self.popularity = np.asarray(popularity, dtype=np.float64)
        self.k = k
        self.catalogue = np.ones(len(self.popularity), dtype=bool) if candidates is None else np.asarray(candidates)
        self.counts = np.zeros(len(self.popularity), dtype=np.int64)

    def add(self, top: np.ndarray) -> None:
        slots = top[:, : self.k]
        self.counts += np.bincount(slots[slots >= 0], minlength=len(self.counts))

    def result(self) -> dict[str, float]:
        n_slots = int(self.counts.sum())
        mean_popularity = math.fsum((self.counts * self.popularity).tolist()) / n_slots if n_slots else 0.0
        on_catalogue = self.counts[self.catalogue]
        coverage = float((on_catalogue > 0).sum() / len(on_catalogue)) if len(on_catalogue) else 0.0
        return {
            f"mean_popularity@{self.k}": mean_popularity,
            f"coverage@{self.k}": coverage,
            f"gini@{self.k}": gini(on_catalogue),
        }
