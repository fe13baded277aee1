"""Full ranking: score every item for every user, exclude what must not be recommended, cut at K."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp

from recause.evaluation.auc import WHOLE_RANKING, AucTally
from recause.evaluation.exposure import ExposureTally, SnipsTally, exposure_k
from recause.evaluation.metrics import METRICS, per_user_metrics

ScoreFn = Callable[[sp.csr_matrix], np.ndarray]
UserScoreFn = Callable[[np.ndarray, sp.csr_matrix], np.ndarray]  # (user rows, their histories) -> scores


def tie_priority(n_items: int, seed: int) -> np.ndarray:
    """A fixed random rank per item that breaks score ties the same way for every model."""
    return np.random.default_rng(seed).permutation(n_items)


def top_k(
    scores: np.ndarray,
    k: int,
    excluded: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    priority: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the k best-scored allowed items per row, best first; -1 pads missing slots.

    ``excluded`` (n_users, n_items) bool marks items a user must not get (e.g. already seen);
    ``candidates`` (n_items,) bool restricts ranking to a subset (e.g. cold items). Equal scores
    are ordered by ``priority`` (lower first; item index when None).
    """
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    n_users, n_items = scores.shape
    masked = scores.astype(np.float64, copy=True)
    if excluded is not None:
        masked[excluded] = -np.inf
    if candidates is not None:
        masked[:, ~candidates] = -np.inf
    k = min(k, n_items)
    if priority is None:
        permuted, best = masked, best_first(masked, k)
        items = best.copy()
    else:
        order = np.argsort(priority, kind="stable")
        permuted = masked[:, order]
        best = best_first(permuted, k)
        items = order[best]
    items[np.take_along_axis(permuted, best, axis=1) == -np.inf] = -1
    return items


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k highest scores per row, highest first, equal scores by column (lower first).

    The same result as a stable full argsort cut at k, in linear time per row: a partition finds each
    row's k-th best score; every score above it is in, and of the scores equal to it, the lowest columns
    fill the remaining places. Only those k are then sorted (benchmarks/top_k.py measures it against the full sort).
    """
    n_rows, n_columns = scores.shape
    if k == n_columns:
        return np.argsort(-scores, axis=1, kind="stable")
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    places_left = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= places_left))
    columns = np.nonzero(chosen)[1].reshape(n_rows, k)  # ascending columns within each row
    ranked = np.argsort(-np.take_along_axis(scores, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, ranked, axis=1)


def relevance(top_items: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean hits (n_users, K): whether each ranked item is in the user's truth row."""
    rows = np.repeat(np.arange(top_items.shape[0]), top_items.shape[1])
    cols = np.clip(top_items.ravel(), 0, None)
    found = np.asarray(truth[rows, cols]).ravel() > 0
    return (found & (top_items.ravel() >= 0)).reshape(top_items.shape)


def result_names(metrics: Iterable[str], ks: Iterable[int]) -> list[str]:
    """``evaluate_ranking``'s metric keys in order: ``name@k`` for every k, or ``name`` for ``gauc`` and ``auc``."""
    ks = sorted(set(ks))
    return [key for m in metrics for key in ([m] if m in WHOLE_RANKING else [f"{m}@{k}" for k in ks])]


def evaluate_ranking(
    score: ScoreFn | UserScoreFn,
    history: sp.csr_matrix,
    excluded: sp.csr_matrix,
    truth: sp.csr_matrix,
    ks: Iterable[int],
    metrics: Iterable[str],
    candidates: np.ndarray | None = None,
    priority: np.ndarray | None = None,
    batch_users: int = 2048,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
    by_user_rows: bool = False,
    item_weights: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    per_user_out: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Mean of every ``metric@k`` over users with at least one truth item, in user batches.

    ``history`` is what the model sees (train); ``excluded`` what may not be ranked (train, plus
    valid when testing); ``truth`` the held-out items. All three are aligned users x items.
    ``by_user_rows``: ``score`` also takes the users' row numbers (models with user ID embeddings).
    ``metrics`` may also name ``gauc`` and ``auc`` (``recause.evaluation.auc``), each one key without
    ``@k``, in the metrics' order; ``auc`` keeps every rankable score until the end (memory: ``AucTally``).

    Optional, each adding keys after the ``metric@k`` ones (see ``recause.evaluation.exposure``):
    ``item_weights`` (n_items,), inverse propensities 1/p_i (``inverse_propensity_weights``), add
    ``snips_recall@k`` and ``snips_ndcg@k`` for every k; ``popularity`` (n_items,), train counts,
    adds ``mean_popularity@k``, ``coverage@k`` and ``gini@k`` of the top-k lists for one k
    (``exposure_k``: 10 when in ``ks``, else the smallest). Both are over the users with truth.
    ``per_user_out``, when given, receives each ``metric@k``'s value per user and those users' rows
    (``"user_rows"``): what a paired test between two models over the same users needs; with ``gauc``,
    also each user's AUC under ``"gauc"`` (NaN for a user without a rankable positive or negative).
    """
    ks, metrics = sorted(set(ks)), list(metrics)
    unknown = [m for m in metrics if m not in METRICS and m not in WHOLE_RANKING]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: expected some of {[*METRICS, *WHOLE_RANKING]}")
    at_k = [m for m in metrics if m in METRICS]
    n_items = history.shape[1]
    for name, vector in (("item_weights", item_weights), ("popularity", popularity)):
        if vector is not None and np.shape(vector) != (n_items,):
            raise ValueError(f"{name} must hold one value per item ({n_items}), got shape {np.shape(vector)}")
    snips = SnipsTally(item_weights, ks, candidates) if item_weights is not None else None
    exposure = ExposureTally(popularity, exposure_k(ks), candidates) if popularity is not None else None
    auc = AucTally(pooled="auc" in metrics) if set(WHOLE_RANKING) & set(metrics) else None
    n_relevant_all = np.asarray(truth.sum(axis=1)).ravel()
    if candidates is not None:
        n_relevant_all = np.asarray(truth[:, candidates].sum(axis=1)).ravel()
    users = np.flatnonzero(n_relevant_all > 0)
    per_user: dict[str, list[np.ndarray]] = {}
    for start in progress(range(0, len(users), batch_users)):
        batch = users[start : start + batch_users]
        scores = score(batch, history[batch]) if by_user_rows else score(history[batch])
        banned = excluded[batch].toarray() > 0
        top = top_k(scores, max(ks), banned, candidates, priority)
        hits = relevance(top, truth[batch])
        for name, values in per_user_metrics(hits, n_relevant_all[batch], ks, at_k).items():
            per_user.setdefault(name, []).append(values)
        if auc is not None:
            rankable = ~banned if candidates is None else ~banned & candidates
            auc.add(scores, rankable, truth[batch].toarray() > 0)
        if snips is not None:
            snips.add(top, hits, truth[batch])
        if exposure is not None:
            exposure.add(top)
    if per_user_out is not None:
        per_user_out["user_rows"] = users
        per_user_out.update({name: np.concatenate(values) for name, values in per_user.items()})
        if auc is not None and "gauc" in metrics:
            per_user_out["gauc"] = auc.per_user()
    n_users = max(len(users), 1)
    # fsum is exactly rounded, so the mean does not depend on the order users were scored in
    found = {name: math.fsum(np.concatenate(values).tolist()) / n_users for name, values in per_user.items()}
    found |= auc.result() if auc is not None else {}
    result = {name: found.get(name, 0.0) for name in result_names(metrics, ks)}
    for tally in (snips, exposure):
        if tally is not None:
            result.update(tally.result())
    return result
