"""RecBole's evaluation protocol over the parts of a split.

Models were fit on train only; scoring sees each user's train history; ranking excludes train items
(and valid items when testing); cold items are ranked among the cold items only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from recause.config import EvaluateParams
from recause.data.matrix import IdIndex, interaction_matrix
from recause.evaluation.ranking import evaluate_ranking, tie_priority
from recause.evaluation.report import RankingMetrics
from recause.models.base import Recommender

Progress = Callable[[Iterable[int], str], Iterable[int]]


def evaluate_all(
    parts: dict[str, pd.DataFrame],
    models: dict[str, Recommender],
    items: IdIndex,
    params: EvaluateParams,
    progress: Progress = lambda it, desc: it,
    splits: tuple[str, ...] = ("valid", "test", "cold"),
) -> RankingMetrics:
    """Metrics for every model on valid, test and cold (those of ``splits`` the parts allow)."""
    users = IdIndex.from_values(pd.concat([frame["user_id"] for frame in parts.values()]))
    matrices = {name: interaction_matrix(frame, users, items) for name, frame in parts.items()}
    train = matrices["train"]
    seen_before_test = train + matrices["valid"]
    plans = {"valid": (train, None), "test": (seen_before_test, None)}
    if "cold" in matrices:
        cold_items = np.asarray(matrices["cold"].sum(axis=0)).ravel() > 0
        plans["cold"] = (seen_before_test + matrices["test"], cold_items)
    priority = tie_priority(len(items), params.tie_seed)
    results: RankingMetrics = {}
    for split, (excluded, candidates) in plans.items():
        if split not in splits:
            continue
        results[split] = {}
        for name, model in models.items():
            results[split][name] = evaluate_ranking(
                model.score,
                history=train,
                excluded=excluded,
                truth=matrices[split],
                ks=params.ks,
                metrics=params.metrics,
                candidates=candidates,
                priority=priority,
                batch_users=params.batch_users,
                progress=lambda it, s=split, n=name: progress(it, f"evaluate {n} on {s}"),
            )
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
    users = IdIndex.from_values(pd.concat([frame["user_id"] for frame in frames]))
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
