"""AUC of the full ranking: per user (GAUC, averaged as RecBole defines it) and over all pairs pooled.

For a user u, the positives are the truth items that may be ranked (not excluded, among the candidates
when given) and the negatives every other rankable item. AUC_u is the share of (positive, negative) pairs
the model orders correctly, ties counting one half -- the Mann-Whitney U statistic over the pair count,
which is what ``sklearn.metrics.roc_auc_score`` returns on the same scores::

    AUC_u = U_u / (P_u N_u),   U_u = sum_{i positive} r_u(i) - P_u (P_u + 1) / 2

with r_u(i) the tie-averaged ascending rank of item i among the user's P_u + N_u rankable items.

- ``gauc``: RecBole's GAUC (``recbole.evaluator.metrics.GAUC``; Zhou et al., KDD 2018, "Deep interest
  network"), the mean of AUC_u weighted by P_u over the users with at least one positive and one
  negative: sum_u P_u AUC_u / sum_u P_u = sum_u (U_u / N_u) / sum_u P_u.
- ``auc``: one AUC over every (user, item) pair of every user pooled, positives against negatives across
  users (RecBole's ``AUC``): it also rewards scores that are comparable between users, which GAUC ignores.

Both use the raw scores, not the tie-broken top-k order. U is kept as an exact integer (2U), the per-user
terms are summed with ``math.fsum``, and the pooled statistic is counted on all scores sorted together, so
the results do not depend on the batching or the order of the users.
"""

from __future__ import annotations

import math

import numpy as np

WHOLE_RANKING = ("gauc", "auc")  # metric names without a cut-off k


def doubled_rank_sums(scores: np.ndarray, rankable: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Per row, twice the sum of the positives' tie-averaged ascending ranks among the rankable columns (int64).

    A positive scored s, with ``lo`` rankable scores below s and ``hi`` at most s, shares the ranks lo+1..hi
    with its ties: twice their mean, lo + hi + 1, is an integer. Each row is sorted once and only its
    positives (positive & rankable; few) are looked up in it: 4x faster on ML-100K's shape than ranking
    every item of every row with an argsort.
    """
    ordered = np.sort(np.where(rankable, scores.astype(np.float64, copy=False), np.nan), axis=1)  # NaN last
    positive = positive & rankable
    sums = np.zeros(len(scores), dtype=np.int64)
    for row in np.flatnonzero(positive.any(axis=1)):
        values = scores[row, positive[row]].astype(np.float64, copy=False)
        lo = np.searchsorted(ordered[row], values, side="left")
        hi = np.searchsorted(ordered[row], values, side="right")
        sums[row] = int(lo.sum() + hi.sum()) + len(values)
    return sums


class AucTally:
    """Per-user Mann-Whitney statistics for ``gauc`` and, when ``pooled``, every rankable score for ``auc``.

    Memory: three int64 per user, plus with ``pooled`` every rankable (user, item) score in the scores'
    dtype (4 or 8 bytes each: about 6 MB for ML-100K's 943 x 1682 in float32, 2.3 GB for the 54k users x
    10.6k items of ``benchmarks/scale.py``'s 10M events), and a float64 copy of the negatives while
    ``pooled_auc`` sorts them. So ``auc`` is computed only when asked for (``evaluate_ranking``'s
    ``metrics``); ``benchmarks/scale.py`` asks for NDCG and recall only.
    """

    def __init__(self, pooled: bool):
        self.pooled = pooled
        self.doubled_u: list[np.ndarray] = []
        self.n_positive: list[np.ndarray] = []
        self.n_negative: list[np.ndarray] = []
        self.positive_scores: list[np.ndarray] = []
        self.negative_scores: list[np.ndarray] = []

    def add(self, scores: np.ndarray, rankable: np.ndarray, positive: np.ndarray) -> None:
        """One batch: the users' ``scores``, which items are ``rankable`` and which of those are ``positive``."""
        positive = positive & rankable
        n_positive = positive.sum(axis=1, dtype=np.int64)
        self.n_positive.append(n_positive)
        self.n_negative.append(rankable.sum(axis=1, dtype=np.int64) - n_positive)
        self.doubled_u.append(doubled_rank_sums(scores, rankable, positive) - n_positive * (n_positive + 1))
        if self.pooled:
            self.positive_scores.append(scores[positive])
            self.negative_scores.append(scores[rankable & ~positive])

    def per_user(self) -> np.ndarray:
        """AUC_u of every user added, in order; NaN for users without a positive or a negative."""
        doubled_u, n_positive, n_negative = (np.concatenate(parts) for parts in self._parts())
        pairs = 2 * n_positive * n_negative
        return np.divide(doubled_u, pairs, out=np.full(len(pairs), np.nan), where=pairs > 0)

    def result(self) -> dict[str, float]:
        doubled_u, n_positive, n_negative = (np.concatenate(parts) for parts in self._parts())
        kept = (n_positive > 0) & (n_negative > 0)
        weight = int(n_positive[kept].sum())
        terms = (doubled_u[kept] / (2 * n_negative[kept])).tolist()  # P_u AUC_u = U_u / N_u
        found = {"gauc": math.fsum(terms) / weight if weight else 0.0}
        if self.pooled:
            found["auc"] = pooled_auc(np.concatenate(self.positive_scores), np.concatenate(self.negative_scores))
        return found

    def _parts(self) -> tuple[list[np.ndarray], ...]:
        empty = [np.zeros(0, dtype=np.int64)]
        return tuple(parts or empty for parts in (self.doubled_u, self.n_positive, self.n_negative))


def pooled_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Share of (positive, negative) pairs with the positive scored higher, ties one half; 0.0 if one side is empty.

    Counted exactly: per positive, the negatives below it (``searchsorted`` left) plus those equal to it
    (right minus left) count 2 and 1 in 2U. O((P + N) log N) time, the sorted negatives' memory.
    """
    if len(positive_scores) == 0 or len(negative_scores) == 0:
        return 0.0
    negatives = np.sort(negative_scores.astype(np.float64))
    positives = positive_scores.astype(np.float64)
    below = np.searchsorted(negatives, positives, side="left")
    not_above = np.searchsorted(negatives, positives, side="right")
    doubled_u = int(below.sum(dtype=np.int64) + not_above.sum(dtype=np.int64))
    return doubled_u / (2 * len(positives) * len(negatives))
