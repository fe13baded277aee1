"""The long-tail re-ranker: exposure-constrained re-ranking of each user's best candidates, one knob.

Each user's ``n_candidates`` best allowed items (``recause.evaluation.ranking.top_k``: seen items excluded, the
same tie rule) are re-ranked by

    z_ui + strength * 1[i in long tail],    z_ui = (s_ui - mean) / std over the user's candidates,

and the first k are the list. It is the Lagrangian of "the k candidates of largest total z with at least c
long-tail items": maximising sum_{i in L} z_ui + strength * (|L ∩ T| - c) over k-sets takes the top k of the
adjusted score, so ``strength`` is the constraint's multiplier: a tail item displaces a head item that scores up
to ``strength`` of the user's score standard deviations higher. It is the long-tail xQuAD of Abdollahpouri, Burke
& Mobasher (FLAIRS 2019) with P(T|u) = 1 and without its coverage term, which saturates after the first tail item
(on MovieLens-100K that xQuAD moved APLT less per NDCG point lost). Standardising per user makes one strength mean
the same for every user and model.

Strength 0 is the plain top-k (z is monotone in the score, and ties keep the candidates' order); no excluded item
is ever a candidate; a user with at least k allowed items always gets k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recause.evaluation.ranking import top_k


def standardised(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each row's valid values minus their mean, over their standard deviation (0 where it is 0; invalid: 0)."""
    count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    kept = np.where(valid, values, 0.0)
    mean = kept.sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(valid, (values - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    z = np.divide(values - mean, spread, out=np.zeros_like(kept), where=spread > 0)
    return np.where(valid, z, 0.0)


def rerank_candidates(
    candidates: np.ndarray, candidate_scores: np.ndarray, tail: np.ndarray, k: int, strength: float
) -> np.ndarray:
    """The k items of each row of ``candidates`` (item indices best first, -1 pads) with the largest
    ``z + strength * 1[tail]``, best first; equal values keep the candidates' order; -1 pads short rows."""
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if candidates.shape != candidate_scores.shape:
        raise ValueError(f"candidates {candidates.shape} and their scores {candidate_scores.shape} differ in shape")
    valid = candidates >= 0
    items = np.clip(candidates, 0, None)
    adjusted = standardised(np.asarray(candidate_scores, dtype=np.float64), valid)
    adjusted = adjusted + strength * np.asarray(tail, dtype=bool)[items]
    adjusted[~valid] = -np.inf
    order = np.argsort(-adjusted, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(candidates, order, axis=1)
    chosen[~np.take_along_axis(valid, order, axis=1)] = -1
    if chosen.shape[1] < k:  # fewer candidates than k: pad as top_k does
        chosen = np.hstack([chosen, np.full((len(chosen), k - chosen.shape[1]), -1, dtype=chosen.dtype)])
    return chosen


@dataclass(frozen=True)
class TailReranker:
    """The re-ranker with its long-tail items and settings: a drop-in for ``top_k`` in serving."""

    tail: np.ndarray  # per item: in the long tail
    strength: float
    n_candidates: int = 100

    def candidates(
        self, scores: np.ndarray, k: int, excluded: np.ndarray | None = None, priority: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's ``max(n_candidates, k)`` best allowed items (-1 pads) and their scores."""
        found = top_k(scores, max(self.n_candidates, k), excluded, priority=priority)
        return found, np.take_along_axis(scores, np.clip(found, 0, None), axis=1)

    def top_k(
        self, scores: np.ndarray, k: int, excluded: np.ndarray | None = None, priority: np.ndarray | None = None
    ) -> np.ndarray:
        """Re-ranked top-k item indices per row of ``scores`` (users x items), -1 padded like ``top_k``."""
        if np.shape(scores)[1] != len(self.tail):
            raise ValueError(f"scores have {np.shape(scores)[1]} items, the re-ranker's tail {len(self.tail)}")
        found, values = self.candidates(np.asarray(scores, dtype=np.float64), k, excluded, priority)
        return rerank_candidates(found, values, self.tail, k, self.strength)
