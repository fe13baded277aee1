"""RecBole's evaluation protocol over the parts of a split.

Models were fit on train only; scoring sees each user's train history; ranking excludes train items
(and valid items when testing); cold items are ranked among the cold items only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recause.config.evaluate import EvaluateParams
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.evaluation.exposure import inverse_propensity_weights
from recause.evaluation.ranking import evaluate_ranking, tie_priority
from recause.evaluation.report import RankingMetrics
from recause.models.base import Recommender
from recause.parallel import LocalRunner, Runner

Progress = Callable[[Iterable, str], Iterable]  # (items, description) -> items, e.g. a tqdm bar
Plan = tuple[sp.csr_matrix, np.ndarray | None]  # what a split may not rank, and its candidate items
Exposure = tuple[np.ndarray, np.ndarray]  # (inverse-propensity weight, train count) per item


# The cold-item variant's one list over warm and cold items, judged on: test + cold, test, cold events.
MIXED_SPLITS = ("mixed_all", "mixed_warm", "mixed_cold")


def evaluate_segment(
    segment: tuple[str, str],
    models: dict[str, Recommender],
    matrices: dict[str, sp.csr_matrix],
    plans: dict[str, Plan],
    priority: np.ndarray,
    params: EvaluateParams,
    exposure: dict[str, Exposure] | None = None,
) -> dict[str, float]:
    """Metrics of one (split, model) segment; every segment is independent of the others.

    Models with user ID embeddings (a ``score_users(rows)`` method) are scored by the users' rows, so
    their user axis must be this split's; others from the users' train histories. ``exposure`` adds the
    SNIPS-weighted metrics and popularity-bias measures on the splits it names.
    """
    split, name = segment
    excluded, candidates = plans[split]
    model = models[name]
    by_rows = hasattr(model, "score_users")
    weights, popularity = (exposure or {}).get(split, (None, None))
    return evaluate_ranking(
        (lambda rows, history: model.score_users(rows)) if by_rows else model.score,
        history=matrices["train"],
        excluded=excluded,
        truth=matrices[split],
        ks=params.ks,
        metrics=params.metrics,
        candidates=candidates,
        priority=priority,
        batch_users=params.batch_users,
        by_user_rows=by_rows,
        item_weights=weights,
        popularity=popularity,
    )


def evaluate_all(
    parts: dict[str, pd.DataFrame],
    models: dict[str, Recommender],
    items: IdIndex,
    params: EvaluateParams,
    progress: Progress = lambda it, desc: it,
    splits: tuple[str, ...] = ("valid", "test", "cold"),
    runner: Runner | None = None,
    unbiased: tuple[str, ...] = (),
) -> RankingMetrics:
    """Metrics for every model on valid, test and cold (those of ``splits`` the parts allow).

    ``cold``: the cold items ranked among themselves. ``mixed_all``, ``mixed_warm``, ``mixed_cold``: one
    list per user over every item (warm and cold together, train and valid excluded), judged against the
    test and cold events together, the test events only and the cold events only (the warm / cold /
    all report of ColdRec, ALDI and DropoutNet).

    On the splits in ``unbiased`` also SNIPS-weighted Recall/NDCG, with propensities from train
    popularity (``params.propensity_eta``, clipped at ``params.propensity_clip``), and the mean
    popularity, coverage and Gini index of the top lists.
    Each (split, model) segment is one ``runner`` task; results do not depend on the runner.
    """
    users = split_users(parts.values())
    matrices = {name: interaction_matrix(frame, users, items) for name, frame in parts.items()}
    train = matrices["train"]
    seen_before_test = train + matrices["valid"]
    plans: dict[str, Plan] = {"valid": (train, None), "test": (seen_before_test, None)}
    if "cold" in matrices:
        cold_items = np.asarray(matrices["cold"].sum(axis=0)).ravel() > 0
        plans["cold"] = (seen_before_test + matrices["test"], cold_items)
        judged = (matrices["test"] + matrices["cold"], matrices["test"], matrices["cold"])
        matrices |= dict(zip(MIXED_SPLITS, judged, strict=True))
        plans |= {split: (seen_before_test, None) for split in MIXED_SPLITS}
    plans = {split: plan for split, plan in plans.items() if split in splits}
    segments = [(split, name) for split in plans for name in models]
    counts = np.asarray(train.sum(axis=0)).ravel()
    weights = inverse_propensity_weights(counts, params.propensity_eta, params.propensity_clip)
    exposure = {split: (weights, counts) for split in unbiased if split in plans}
    values = (runner or LocalRunner()).map(
        evaluate_segment,
        segments,
        lambda it: progress(it, f"evaluate {len(segments)} segments on {', '.join(plans)}"),
        models=models,
        matrices={split: matrices[split] for split in ("train", *plans)},
        plans=plans,
        priority=tie_priority(len(items), params.tie_seed),
        params=params,
        exposure=exposure,
    )
    results: RankingMetrics = {split: {} for split in plans}
    for (split, name), metrics in zip(segments, values, strict=True):
        results[split][name] = metrics
    return results


def evaluate_on_holdout(
    model: Recommender,
    items: IdIndex,
    seen: dict[str, pd.DataFrame],
    holdout: pd.DataFrame,
    metric: str,
    tie_seed: int = 0,
) -> tuple[float, int]:
    """``metric`` (e.g. 'ndcg@10') of one model on a holdout, and how many users it averaged over.

    ``seen`` holds the model's own ``train`` (its input history) and ``valid`` part; both are
    excluded from ranking, as in RecBole's test protocol. Holdout rows of items outside the
    model's vocabulary are dropped, so two models are compared on rows both could rank.
    """
    name, _, k = metric.partition("@")
    holdout = holdout[items.positions(holdout["item_id"]) >= 0]
    frames = [seen["train"], seen["valid"], holdout]
    users = split_users(frames)
    known = {part: frame[items.positions(frame["item_id"]) >= 0] for part, frame in seen.items()}
    train = interaction_matrix(known["train"], users, items)
    truth = interaction_matrix(holdout, users, items)
    n_users = int((np.asarray(truth.sum(axis=1)).ravel() > 0).sum())
    value = evaluate_ranking(
        model.score,
        history=train,
        excluded=train + interaction_matrix(known["valid"], users, items),
        truth=truth,
        ks=[int(k)],
        metrics=[name],
        priority=tie_priority(len(items), tie_seed),
    )[metric]
    return value, n_users
