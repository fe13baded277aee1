"""The fairness audit of one model's lists: accuracy by user group, long-tail exposure, and the re-ranker's curve.

On valid and test, ranked as `evaluate` ranks them (the excluded history and the tie order the caller passes),
each user's ``rerank.candidates`` best items are kept, and every list is cut from them: the plain top-k and the
re-ranked one (``recause.fairness.rerank``) at each strength of ``rerank.curve``. Each list set is scored by
mean NDCG/Recall@k, its long-tail exposure (``recause.fairness.longtail``) and the largest user-group NDCG gap
(``recause.fairness.groups``, small groups pooled); the target and its verdicts are ``recause.fairness.target``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recause.config.fairness import FairnessParams
from recause.evaluation.metrics import per_user_metrics
from recause.evaluation.ranking import relevance, top_k
from recause.fairness.groups import group_metrics, pooled
from recause.fairness.longtail import short_head, tail_exposure
from recause.fairness.rerank import rerank_candidates
from recause.fairness.target import LONG_TAIL, largest_group_gap, targeted, verdict

BATCH_USERS = 2048  # users scored at a time: memory is batch x items whatever the user count


@dataclass(frozen=True)
class Holdout:
    """One split's users with held-out events, their truth and the model's best candidates for them."""

    truth: sp.csr_matrix  # those users' rows
    n_relevant: np.ndarray
    candidates: np.ndarray  # (users, n) item indices best first, -1 pads
    scores: np.ndarray  # the candidates' scores
    labels: pd.DataFrame  # one group label column per attribute (no columns without a users table)


def holdout(
    score_rows: Callable[[np.ndarray], np.ndarray],
    excluded: sp.csr_matrix,
    truth: sp.csr_matrix,
    n: int,
    priority: np.ndarray,
    labels: pd.DataFrame,
) -> Holdout:
    """The users of ``truth`` with events, and each one's ``n`` best allowed items by ``score_rows(rows)``."""
    n_relevant = np.asarray(truth.sum(axis=1)).ravel()
    rows = np.flatnonzero(n_relevant > 0)
    found, values = [], []
    for start in range(0, len(rows), BATCH_USERS):
        batch = rows[start : start + BATCH_USERS]
        scores = np.asarray(score_rows(batch), dtype=np.float64)
        best = top_k(scores, n, excluded[batch].toarray() > 0, priority=priority)
        found.append(best)
        values.append(np.take_along_axis(scores, np.clip(best, 0, None), axis=1))
    return Holdout(truth[rows], n_relevant[rows], np.vstack(found), np.vstack(values), labels.iloc[rows])


def per_user(split: Holdout, top: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """NDCG@k and Recall@k of each user's list ``top`` (the split's users, in order)."""
    return per_user_metrics(relevance(top, split.truth), split.n_relevant, [k], ["ndcg", "recall"])


def assess(split: Holdout, top: np.ndarray, settings: FairnessParams, tail: np.ndarray, counts: np.ndarray) -> dict:
    """Mean NDCG/Recall@k of the lists ``top``, their long-tail exposure and the largest relative NDCG@k gap
    between the pooled groups of any attribute."""
    k = settings.k
    values = per_user(split, top, k)
    ndcg = {f"ndcg@{k}": values[f"ndcg@{k}"]}
    summaries = {
        attribute: group_metrics(ndcg, pooled(split.labels[attribute], settings.min_group_users))["summary"]
        for attribute in split.labels
    }
    attribute, gap = largest_group_gap(summaries, f"ndcg@{k}")
    return {
        f"ndcg@{k}": float(values[f"ndcg@{k}"].mean()),
        f"recall@{k}": float(values[f"recall@{k}"].mean()),
        **{f"long_tail_{key}": value for key, value in tail_exposure(top, tail, counts).as_dict().items()},
        "largest_group_gap": gap,
        "largest_group_attribute": attribute,
    }


def curve(splits: dict[str, Holdout], settings: FairnessParams, tail: np.ndarray, counts: np.ndarray) -> list[dict]:
    """Each strength's ``assess`` of the re-ranked lists on every split (strength 0: the plain lists)."""
    points = []
    for strength in sorted({*settings.rerank.curve, settings.rerank.strength}):
        point: dict = {"strength": strength, "default": strength == settings.rerank.strength}
        for name, split in splits.items():
            top = rerank_candidates(split.candidates, split.scores, tail, settings.k, strength)
            point[name] = assess(split, top, settings, tail, counts)
        points.append(point)
    return points


def gap_target(points: list[dict], settings: FairnessParams) -> dict:
    """The gap the re-ranker targets (the larger on test, plain) and the verdict of the default strength per split."""
    metric = f"ndcg@{settings.k}"
    plain = next(p for p in points if p["strength"] == 0.0)  # the params require 0 in the curve
    chosen = next(p for p in points if p["default"])
    today = plain["test"]
    aim = targeted(today["long_tail_gap"], today["largest_group_attribute"], today["largest_group_gap"])
    gap_key = "long_tail_gap" if aim == LONG_TAIL else "largest_group_gap"
    checks = {
        split: verdict(
            {"gap": plain[split][gap_key], "ndcg": plain[split][metric]},
            {"gap": chosen[split][gap_key], "ndcg": chosen[split][metric]},
            settings.target.gap_reduction,
            settings.target.max_ndcg_loss,
        )
        for split in ("valid", "test")
    }
    return {
        "today": {"long_tail_gap": today["long_tail_gap"], "largest_group_gap": today["largest_group_gap"],
                  "largest_group_attribute": today["largest_group_attribute"]},
        "targeted": aim,
        "strength": settings.rerank.strength,
        **checks,
    }  # fmt: skip


def user_groups(split: Holdout, settings: FairnessParams) -> dict:
    """Per attribute, for the plain lists: every group with intervals, and the pooled groups' gap with intervals."""
    values = per_user(split, split.candidates[:, : settings.k], settings.k)
    boot = (settings.n_boot, settings.confidence, settings.seed, settings.n_permutations)
    found = {}
    for attribute in split.labels:
        labels = split.labels[attribute]
        groups = group_metrics(values, labels, *boot)
        merged = pooled(labels, settings.min_group_users)
        found[attribute] = {
            **groups,
            "pooled": groups if merged.nunique() == labels.nunique() else group_metrics(values, merged, *boot),
        }
    return found


def audit(
    score_rows: Callable[[np.ndarray], np.ndarray],
    matrices: dict[str, sp.csr_matrix],
    labels: pd.DataFrame,
    priority: np.ndarray,
    settings: FairnessParams,
) -> dict:
    """The long tail, the user groups on test, the target and the re-ranker's curve of the model ``score_rows``
    (by user row) on the ``train``/``valid``/``test`` interaction ``matrices``: valid excludes train, test
    excludes train and valid, as `evaluate` ranks them; the tail is the train counts' (``short_head``)."""
    train = matrices["train"]
    counts = np.asarray(train.sum(axis=0)).ravel()
    tail = ~short_head(counts, settings.head_share)
    n = settings.rerank.candidates
    splits = {
        "valid": holdout(score_rows, train, matrices["valid"], n, priority, labels),
        "test": holdout(score_rows, train + matrices["valid"], matrices["test"], n, priority, labels),
    }
    points = curve(splits, settings, tail, counts)
    return {
        "long_tail": {
            "head_share": settings.head_share,
            "head_items": int((~tail).sum()),
            "tail_items": int(tail.sum()),
        },
        "user_groups": user_groups(splits["test"], settings),
        "target": gap_target(points, settings),
        "rerank": {**settings.rerank.model_dump(), "curve": points},
    }
