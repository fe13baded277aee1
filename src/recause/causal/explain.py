"""Counterfactual explanations of a recommendation: which history items caused it.

A history-based recommender's user *is* their history, so "what if the user had not interacted
with item j?" is answered exactly by scoring the history without j: no retraining, no attention
weights, no gradients. For a recommended item we score every leave-one-out history in one batch,
name the history items whose removal lowers its score most, and report the rank it falls to
without them (one at a time, and all named reasons together). We also search greedily for a small
set of history items without which the item leaves the top-k: the counterfactual "had you not
watched these, we would not have recommended it".

The candidate set stays fixed (the items the user has not interacted with), so every rank
movement is caused by the item's score and the scores of the others, never by items re-entering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

Scorer = Callable[[sp.csr_matrix], np.ndarray]


@dataclass(frozen=True)
class Reason:
    """One history item and what its removal alone does to the explained item."""

    item: int  # column of the history item
    score_drop: float  # score(with it) - score(without it); positive = it supported the item
    rank_without: int  # the explained item's 1-based rank without this history item


@dataclass(frozen=True)
class Explanation:
    item: int
    score: float
    rank: int  # 1-based, among the candidates
    reasons: list[Reason]  # largest score drop first, at most ``n_reasons``, all with a positive drop
    rank_without_reasons: int  # rank with every named reason removed at once
    counterfactual_set: list[int]  # greedy set whose removal moves the item out of the top-k ([] if none found)
    rank_without_set: int | None  # rank without the counterfactual set (None if none found)


def rank_of(scores: np.ndarray, item: int, candidates: np.ndarray) -> int:
    """1-based rank of ``item`` among ``candidates`` (a boolean mask); ties rank the item first."""
    return 1 + int(np.count_nonzero(candidates & (scores > scores[item])))


def _without(history: sp.csr_matrix, removals: list[list[int]]) -> sp.csr_matrix:
    """One row per entry of ``removals``: the history with those columns zeroed."""
    rows = np.repeat(history.toarray(), len(removals), axis=0)
    for row, columns in enumerate(removals):
        rows[row, columns] = 0.0
    return sp.csr_matrix(rows)


def explain(
    score: Scorer,
    history: sp.csr_matrix,
    item: int,
    k: int = 10,
    n_reasons: int = 3,
    max_set: int = 10,
) -> Explanation:
    """Explain why ``item`` is scored as it is for the one user whose 1 x n_items ``history`` is given."""
    if history.shape[0] != 1:
        raise ValueError(f"explain takes one user's history (1 row), got {history.shape[0]} rows")
    if not 0 <= item < history.shape[1]:
        raise ValueError(f"item column {item} is outside the catalogue of {history.shape[1]} items")
    seen = history.indices[history.data > 0]
    if item in set(seen.tolist()):
        raise ValueError("the item is already in the user's history: recommendations exclude it")
    if len(seen) == 0:
        raise ValueError("the user has no history: there is nothing to explain the recommendation by")
    candidates, base, leave_one_out = _leave_one_out(score, history, seen)
    drops = base[item] - leave_one_out[:, item]
    order = np.argsort(-drops, kind="stable")
    reasons = [
        Reason(int(seen[i]), float(drops[i]), rank_of(leave_one_out[i], item, candidates))
        for i in order[:n_reasons]
        if drops[i] > 0
    ]
    named = [reason.item for reason in reasons]
    without_named = np.asarray(score(_without(history, [named])), dtype=np.float64)[0] if named else base

    rank = rank_of(base, item, candidates)
    counterfactual, rank_without_set = (
        _greedy_set(score, history, item, k, candidates, seen[order], max_set) if rank <= k else ([], None)
    )
    return Explanation(
        item=item,
        score=float(base[item]),
        rank=rank,
        reasons=reasons,
        rank_without_reasons=rank_of(without_named, item, candidates),
        counterfactual_set=counterfactual,
        rank_without_set=rank_without_set,
    )


def _leave_one_out(
    score: Scorer, history: sp.csr_matrix, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate mask (unseen items), the user's scores, and one row of scores per history item left out."""
    candidates = np.ones(history.shape[1], dtype=bool)
    candidates[seen] = False
    base = np.asarray(score(history), dtype=np.float64)[0]
    removals = [[int(j)] for j in seen]
    leave_one_out = (
        np.asarray(score(_without(history, removals)), dtype=np.float64) if removals else np.empty((0, len(base)))
    )
    return candidates, base, leave_one_out


def _greedy_set(
    score: Scorer,
    history: sp.csr_matrix,
    item: int,
    k: int,
    candidates: np.ndarray,
    by_drop: np.ndarray,
    max_set: int,
) -> tuple[list[int], int | None]:
    """Remove history items in order of their single-removal drop until ``item`` leaves the top-k."""
    prefixes = [[int(j) for j in by_drop[: size + 1]] for size in range(min(max_set, len(by_drop)))]
    if not prefixes:
        return [], None
    scores = np.asarray(score(_without(history, prefixes)), dtype=np.float64)
    for prefix, row in zip(prefixes, scores, strict=True):
        rank = rank_of(row, item, candidates)
        if rank > k:
            return prefix, rank
    return [], None


@dataclass(frozen=True)
class TopReason:
    item: int
    score: float
    reason: int | None  # the history item whose removal lowers ``item``'s score most (None: none lowers it)
    score_drop: float
    rank_without: int  # the item's rank without that history item


def explain_top_k(score: Scorer, history: sp.csr_matrix, k: int) -> list[TopReason]:
    """One user's top-k recommendations, each with its top reason, from one leave-one-out batch.

    The same counterfactual as :func:`explain`, shared by the k items: the history without each of its
    items is scored once, and every recommended item reads its drop from that batch.
    """
    return top_reasons(score, history, None, k)


def top_reasons(score: Scorer, history: sp.csr_matrix, items: np.ndarray | None, k: int = 10) -> list[TopReason]:
    """The top reason of each of ``items`` (columns the user has not seen; None: the user's top-k), from one
    leave-one-out batch (see :func:`explain_top_k`)."""
    seen = history.indices[history.data > 0]
    candidates, base, leave_one_out = _leave_one_out(score, history, seen)
    if items is None:
        items = np.flatnonzero(candidates)[np.argsort(-base[candidates], kind="stable")[:k]]
    found = []
    for item in items:
        drops = base[item] - leave_one_out[:, item]
        best = int(np.argmax(drops)) if len(drops) else -1
        if best >= 0 and drops[best] > 0:
            found.append(
                TopReason(
                    int(item),
                    float(base[item]),
                    int(seen[best]),
                    float(drops[best]),
                    rank_of(leave_one_out[best], item, candidates),
                )
            )
        else:
            found.append(TopReason(int(item), float(base[item]), None, 0.0, rank_of(base, item, candidates)))
    return found
