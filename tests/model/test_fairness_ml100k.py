"""Fairness measures on MovieLens-100K with EASE under RecBole's protocol: its lists under-expose the long tail,
the long-tail re-ranker closes much of that gap for little NDCG, and the user groups partition the test users."""

from __future__ import annotations

import numpy as np
import pytest

from recause.config import SplitParams
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.data.schemas import Tables
from recause.data.split import split_interactions
from recause.evaluation.metrics import per_user_metrics
from recause.evaluation.ranking import relevance, tie_priority, top_k
from recause.fairness.groups import attribute_labels, group_metrics
from recause.fairness.longtail import short_head, tail_exposure
from recause.fairness.rerank import TailReranker
from recause.models.baselines import EASE


@pytest.fixture(scope="module")
def test_lists(ml100k: Tables) -> dict:
    parts = split_interactions(ml100k.interactions, SplitParams())
    items = IdIndex.from_values(ml100k.items["item_id"])
    users = split_users(parts.values())
    train, valid, test = (interaction_matrix(parts[p], users, items) for p in ("train", "valid", "test"))
    rows = np.flatnonzero(np.asarray(test.sum(axis=1)).ravel() > 0)
    scores = EASE().fit(train).score(train[rows])
    excluded = (train + valid)[rows].toarray() > 0
    counts = np.asarray(train.sum(axis=0)).ravel()
    priority = tie_priority(len(items), 0)
    return {
        "scores": scores, "excluded": excluded, "truth": test[rows], "counts": counts, "priority": priority,
        "tail": ~short_head(counts, 0.2), "ids": users.ids[rows], "users": ml100k.users,
    }  # fmt: skip


def _ndcg(found: dict, top: np.ndarray) -> np.ndarray:
    n_relevant = np.asarray(found["truth"].sum(axis=1)).ravel()
    return per_user_metrics(relevance(top, found["truth"]), n_relevant, [10], ["ndcg"])["ndcg@10"]


def test_the_reranker_closes_much_of_the_long_tail_gap_for_little_ndcg(test_lists: dict) -> None:
    found = test_lists
    plain = top_k(found["scores"], 10, found["excluded"], priority=found["priority"])
    reranked = TailReranker(found["tail"], 1.0, 100).top_k(found["scores"], 10, found["excluded"], found["priority"])
    before, after = (tail_exposure(t, found["tail"], found["counts"]) for t in (plain, reranked))
    # the short head is a few dozen items holding a fifth of the interactions; EASE gives it about half the slots
    assert (~found["tail"]).sum() < 100 and before.interaction_share == pytest.approx(0.8, abs=0.01)
    assert before.gap > 0.3
    assert after.gap < 0.6 * before.gap and after.aclt > before.aclt + 1.0
    assert _ndcg(found, reranked).mean() > 0.95 * _ndcg(found, plain).mean()
    assert ((reranked >= 0).sum(axis=1) == 10).all() and not found["excluded"][
        np.repeat(np.arange(len(reranked)), 10), reranked.ravel()
    ].any()


def test_user_groups_partition_the_test_users(test_lists: dict) -> None:
    found = test_lists
    plain = top_k(found["scores"], 10, found["excluded"], priority=found["priority"])
    labels = attribute_labels(found["users"], found["ids"], ["gender", "age", "occupation"])
    assert (labels != "unknown").all().all()
    values = {"ndcg@10": _ndcg(found, plain)}
    for attribute in labels:
        groups = group_metrics(values, labels[attribute])["groups"]
        assert sum(g["users"] for g in groups.values()) == len(found["ids"])
        weighted = sum(g["users"] * g["ndcg@10"] for g in groups.values()) / len(found["ids"])
        assert weighted == pytest.approx(values["ndcg@10"].mean())
    assert set(labels["gender"]) == {"F", "M"} and labels["occupation"].nunique() == 21
