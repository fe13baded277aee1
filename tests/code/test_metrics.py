"""Ranking metrics and full ranking on cases small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recause.evaluation.metrics import per_user_metrics
from recause.evaluation.ranking import evaluate_ranking, relevance, top_k

ALL = ("recall", "ndcg", "mrr", "hit", "precision")


def test_metrics_match_hand_computation() -> None:
    # user 0: relevant {1, 3}, ranking [3, 0, 1] -> hits at ranks 1 and 3
    # user 1: relevant {2},    ranking [0, 1, 2] -> hit at rank 3
    hits = np.array([[True, False, True], [False, False, True]])
    values = per_user_metrics(hits, np.array([2, 1]), [3], ALL)
    ideal0 = 1 + 1 / math.log2(3)
    assert values["recall@3"] == pytest.approx([1.0, 1.0])
    assert values["precision@3"] == pytest.approx([2 / 3, 1 / 3])
    assert values["hit@3"] == pytest.approx([1.0, 1.0])
    assert values["mrr@3"] == pytest.approx([1.0, 1 / 3])
    assert values["ndcg@3"] == pytest.approx([(1 + 1 / math.log2(4)) / ideal0, (1 / math.log2(4)) / 1.0])


def test_cutoff_and_ideal_dcg_when_more_relevant_than_k() -> None:
    hits = np.array([[False, True, True, True]])
    values = per_user_metrics(hits, np.array([5]), [2], ALL)
    assert values["recall@2"] == pytest.approx([1 / 5])
    assert values["precision@2"] == pytest.approx([1 / 2])
    assert values["mrr@2"] == pytest.approx([1 / 2])
    # the ideal list for k=2 has two relevant items on top, not five
    assert values["ndcg@2"] == pytest.approx([(1 / math.log2(3)) / (1 + 1 / math.log2(3))])


def test_users_without_relevant_items_are_left_out() -> None:
    hits = np.array([[True, False], [False, False]])
    values = per_user_metrics(hits, np.array([1, 0]), [2], ALL)
    assert all(len(v) == 1 for v in values.values())
    assert values["hit@2"] == pytest.approx([1.0])


def test_ties_follow_the_given_priority_and_excluded_items_never_appear() -> None:
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.5]])
    # items 1, 2, 3 tie; priority says 3 first, then 1, then 2
    priority = np.array([4, 1, 2, 0, 3])
    assert top_k(scores, 3, priority=priority).tolist() == [[3, 1, 2]]
    excluded = np.array([[False, False, False, True, False]])
    assert top_k(scores, 3, excluded=excluded, priority=priority).tolist() == [[1, 2, 0]]
    # without a priority, ties fall back to item index
    assert top_k(scores, 2).tolist() == [[1, 2]]


def test_fewer_allowed_items_than_k_pads_with_minus_one() -> None:
    scores = np.array([[0.3, 0.2, 0.1]])
    candidates = np.array([False, True, True])
    excluded = np.array([[False, True, False]])
    assert top_k(scores, 3, excluded=excluded, candidates=candidates).tolist() == [[2, -1, -1]]


def test_nan_scores_are_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([[np.nan, 1.0]]), 1)


def test_relevance_marks_hits_and_ignores_padding() -> None:
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1]], dtype=np.float32))
    assert relevance(np.array([[3, 0, -1]]), truth).tolist() == [[True, False, False]]


def test_evaluate_ranking_end_to_end_in_batches() -> None:
    history = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32))
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=np.float32))
    item_scores = np.array([0.4, 0.3, 0.2, 0.1])

    def score(rows: sp.csr_matrix) -> np.ndarray:
        return np.tile(item_scores, (rows.shape[0], 1))

    result = evaluate_ranking(score, history, history, truth, [2], ALL, batch_users=1)
    # user 0 (seen 0): ranking [1, 2] -> hit at 1; user 1 has no truth; user 2 (seen 3): [0, 1] -> hit at 1
    assert result["hit@2"] == pytest.approx(1.0)
    assert result["recall@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert result["ndcg@2"] == pytest.approx((1.0 + 1 / (1 + 1 / math.log2(3))) / 2)
    assert result["precision@2"] == pytest.approx(0.5)


def test_means_are_bit_identical_whatever_order_users_come_in() -> None:
    """Pseudonyms reorder users; the published metrics must not move in the last digit."""
    rng = np.random.default_rng(3)
    history = sp.csr_matrix((rng.random((300, 50)) < 0.2).astype(np.float32))
    truth = sp.csr_matrix(((rng.random((300, 50)) < 0.1) & (history.toarray() == 0)).astype(np.float32))
    weights = rng.random((50, 50)).astype(np.float32)

    def score(rows: sp.csr_matrix) -> np.ndarray:
        return np.asarray(rows @ weights)

    order = rng.permutation(300)
    first = evaluate_ranking(score, history, history, truth, [5, 10], ALL, batch_users=64)
    permuted = evaluate_ranking(score, history[order], history[order], truth[order], [5, 10], ALL, batch_users=37)
    assert first == permuted
