"""Ranking metrics and full ranking on cases small enough to compute by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp

from recause.evaluation.exposure import exposure_k, gini, inverse_propensity_weights
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


def _fixed_list_case() -> tuple[sp.csr_matrix, sp.csr_matrix, Callable[[sp.csr_matrix], np.ndarray]]:
    # items scored 0 > 1 > 2 > 3 for everyone; each user's seen items are excluded
    history = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32))
    truth = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=np.float32))
    item_scores = np.array([0.4, 0.3, 0.2, 0.1])
    return history, truth, lambda rows: np.tile(item_scores, (rows.shape[0], 1))


def test_snips_weights_each_truth_item_by_its_inverse_propensity() -> None:
    history, truth, score = _fixed_list_case()
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    result = evaluate_ranking(score, history, history, truth, [1, 2], ["recall"], batch_users=1, item_weights=weights)
    # user 0 ranks [1, 2, 3]: truth item 2 at rank 2; user 2 ranks [0, 1, 2]: item 0 at rank 1, item 2 at rank 3;
    # user 1 has no truth. Truth weights: 3 (u0, item 2) + 1 (u2, item 0) + 3 (u2, item 2) = 7
    assert result["snips_recall@1"] == pytest.approx(1 / 7)
    assert result["snips_recall@2"] == pytest.approx((3 + 1) / 7)
    assert result["snips_ndcg@1"] == pytest.approx(1 / 7)
    assert result["snips_ndcg@2"] == pytest.approx((3 / math.log2(3) + 1) / 7)
    # among candidates {0, 1, 3} only user 2's item 0 is truth, and it is ranked first
    candidates = np.array([True, True, False, True])
    ranked = evaluate_ranking(score, history, history, truth, [2], ["recall"], candidates, item_weights=weights)
    assert ranked["snips_recall@2"] == pytest.approx(1.0)


def test_snips_recall_with_unit_weights_is_micro_averaged_recall() -> None:
    rng = np.random.default_rng(5)
    history = sp.csr_matrix((rng.random((120, 40)) < 0.2).astype(np.float32))
    truth = sp.csr_matrix(((rng.random((120, 40)) < 0.15) & (history.toarray() == 0)).astype(np.float32))
    weights = rng.random((40, 40))

    def score(rows: sp.csr_matrix) -> np.ndarray:
        return np.asarray(rows @ weights)

    result = evaluate_ranking(
        score, history, history, truth, [5, 10], ["recall"], batch_users=17, item_weights=np.ones(40)
    )
    top = top_k(score(history), 10, history.toarray() > 0)
    hits = relevance(top, truth)
    for k in (5, 10):
        assert result[f"snips_recall@{k}"] == pytest.approx(hits[:, :k].sum() / truth.nnz, rel=1e-12)
    # the macro average (per-user recall, then the mean) differs: users with few truth items count as much
    assert result["recall@10"] != pytest.approx(result["snips_recall@10"])


def test_new_measures_leave_the_old_keys_untouched() -> None:
    rng = np.random.default_rng(8)
    history = sp.csr_matrix((rng.random((90, 30)) < 0.2).astype(np.float32))
    truth = sp.csr_matrix(((rng.random((90, 30)) < 0.1) & (history.toarray() == 0)).astype(np.float32))
    weights = rng.random((30, 30))

    def score(rows: sp.csr_matrix) -> np.ndarray:
        return np.asarray(rows @ weights)

    plain = evaluate_ranking(score, history, history, truth, [5, 10], ALL)
    extended = evaluate_ranking(
        score,
        history,
        history,
        truth,
        [5, 10],
        ALL,
        item_weights=inverse_propensity_weights(history, 0.5, 0.01),
        popularity=np.asarray(history.sum(axis=0)).ravel(),
    )
    assert {name: extended[name] for name in plain} == plain
    assert list(extended)[: len(plain)] == list(plain)
    assert set(extended) - set(plain) == {
        *(f"snips_{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10)),
        "mean_popularity@10",
        "coverage@10",
        "gini@10",
    }


def test_mean_popularity_coverage_and_gini_by_hand() -> None:
    history, truth, score = _fixed_list_case()
    popularity = np.array([5.0, 1.0, 2.0, 7.0])
    result = evaluate_ranking(score, history, history, truth, [2], ["recall"], batch_users=1, popularity=popularity)
    # users with truth get [1, 2] (user 0) and [0, 1] (user 2): counts per item [1, 2, 1, 0]
    assert result["mean_popularity@2"] == pytest.approx((1 + 2 + 5 + 1) / 4)
    assert result["coverage@2"] == pytest.approx(3 / 4)
    # sorted counts [0, 1, 1, 2]: sum_j (2j - n - 1) x_j / (n sum x) = (0 - 1 + 1 + 6) / (4 * 4)
    assert result["gini@2"] == pytest.approx(6 / 16)


def test_one_list_for_everyone_is_concentrated_and_spread_lists_are_not() -> None:
    n_users, n_items = 20, 200
    history = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    truth = sp.csr_matrix(np.eye(n_users, n_items, dtype=np.float32))
    popularity = np.arange(n_items, dtype=np.float64)

    def same_for_all(rows: sp.csr_matrix) -> np.ndarray:
        return np.tile(-np.arange(n_items, dtype=np.float64), (rows.shape[0], 1))  # items 0..9 on top

    def spread(rows: np.ndarray, _: sp.csr_matrix) -> np.ndarray:
        return (np.arange(n_items)[None, :] // 10 == rows[:, None]).astype(np.float64)  # user u: items 10u..10u+9

    same = evaluate_ranking(same_for_all, history, history, truth, [5, 10, 20], ["recall"], popularity=popularity)
    assert same["coverage@10"] == pytest.approx(10 / n_items)
    assert same["gini@10"] == pytest.approx(1 - 10 / n_items)
    assert same["mean_popularity@10"] == pytest.approx(4.5)
    uniform = evaluate_ranking(
        spread, history, history, truth, [5, 10, 20], ["recall"], popularity=popularity, by_user_rows=True
    )
    assert uniform["coverage@10"] == pytest.approx(1.0)
    assert uniform["gini@10"] == pytest.approx(0.0, abs=1e-12)
    assert uniform["mean_popularity@10"] == pytest.approx(popularity.mean())
    # without k = 10 the smallest k is used
    assert "coverage@5" in evaluate_ranking(
        same_for_all, history, history, truth, [5, 20], ["recall"], popularity=popularity
    )
    assert exposure_k([20, 10, 5]) == 10 and exposure_k([20, 5]) == 5


def test_coverage_and_gini_are_over_the_candidates_when_given() -> None:
    history, truth, score = _fixed_list_case()
    candidates = np.array([False, True, True, True])
    result = evaluate_ranking(score, history, history, truth, [2], ["recall"], candidates, popularity=np.ones(4))
    # only user 0 has candidate truth (item 2); it gets [1, 2] of the three candidates
    assert result["coverage@2"] == pytest.approx(2 / 3)
    assert result["gini@2"] == pytest.approx(gini(np.array([0, 1, 1])))


def test_gini_extremes() -> None:
    assert gini(np.array([3, 3, 3])) == 0.0
    assert gini(np.array([0, 0, 6])) == pytest.approx(2 / 3)
    assert gini(np.array([], dtype=int)) == 0.0 and gini(np.zeros(4)) == 0.0


def test_inverse_propensity_weights_follow_train_counts() -> None:
    # item 0: four train users (one event repeated), item 1: one, item 2: none
    rows, cols = [0, 1, 2, 3, 3, 0], [0, 0, 0, 0, 0, 1]
    train = sp.csr_matrix((np.ones(6, dtype=np.float32), (rows, cols)), shape=(4, 3))
    weights = inverse_propensity_weights(train, eta=0.5, clip=0.01)
    # p = (count / max count)^0.5 clipped at 0.01: [1, 0.5, 0.01]
    np.testing.assert_allclose(weights, [1.0, 2.0, 100.0])
    np.testing.assert_array_equal(inverse_propensity_weights(np.array([4, 1, 0]), 0.5, 0.01), weights)


def test_new_measures_are_bit_identical_whatever_order_users_come_in() -> None:
    rng = np.random.default_rng(4)
    history = sp.csr_matrix((rng.random((300, 50)) < 0.2).astype(np.float32))
    truth = sp.csr_matrix(((rng.random((300, 50)) < 0.1) & (history.toarray() == 0)).astype(np.float32))
    weights = rng.random((50, 50)).astype(np.float32)
    extra = {
        "item_weights": inverse_propensity_weights(history, 0.5, 0.01),
        "popularity": np.asarray(history.sum(axis=0)).ravel(),
    }

    def score(rows: sp.csr_matrix) -> np.ndarray:
        return np.asarray(rows @ weights)

    order = rng.permutation(300)
    first = evaluate_ranking(score, history, history, truth, [5, 10], ALL, batch_users=64, **extra)
    permuted = evaluate_ranking(
        score, history[order], history[order], truth[order], [5, 10], ALL, batch_users=37, **extra
    )
    assert first == permuted


def test_top_k_equals_a_stable_full_sort_cut_at_k_on_tied_excluded_and_restricted_scores() -> None:
    """The partition shortcut must rank exactly as sorting everything would, ties (lower item first) included."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n_users, n_items = int(rng.integers(1, 20)), int(rng.integers(1, 40))
        scores = rng.integers(0, int(rng.integers(1, 5)), size=(n_users, n_items)).astype(float)  # many ties
        excluded = rng.random((n_users, n_items)) < 0.4
        candidates = rng.random(n_items) < 0.7
        priority = rng.permutation(n_items)
        k = int(rng.integers(1, n_items + 3))
        masked = np.where(excluded | ~candidates, -np.inf, scores)[:, priority.argsort(kind="stable")]
        best = np.argsort(-masked, axis=1, kind="stable")[:, : min(k, n_items)]
        expected = np.where(np.take_along_axis(masked, best, axis=1) == -np.inf, -1, priority.argsort()[best])
        assert (top_k(scores, k, excluded, candidates, priority) == expected).all()
        unprioritised = np.where(excluded, -np.inf, scores)
        best = np.argsort(-unprioritised, axis=1, kind="stable")[:, : min(k, n_items)]
        expected = np.where(np.take_along_axis(unprioritised, best, axis=1) == -np.inf, -1, best)
        assert (top_k(scores, k, excluded) == expected).all()


class _FixedScores:
    """Every user gets the same item scores (a stand-in model for the protocol's bookkeeping)."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.scores, (history.shape[0], 1))


def test_the_mixed_list_ranks_warm_and_cold_items_together_and_reports_each_side() -> None:
    """Items 0-3 warm, 4-5 cold. One user; train {0}, valid {1}, test {2}, cold {4}."""
    import pandas as pd

    from recause.config import EvaluateParams
    from recause.data.matrix import IdIndex
    from recause.evaluation.protocol import evaluate_all

    frame = lambda item: pd.DataFrame({"user_id": ["u"], "item_id": [str(item)]})  # noqa: E731
    parts = {"train": frame(0), "valid": frame(1), "test": frame(2), "cold": frame(4)}
    items = IdIndex.from_values([str(i) for i in range(6)])
    models = {
        "warm_first": _FixedScores([9, 8, 7, 6, 2, 1]),  # list (train, valid out): 2, 3, 4, 5
        "cold_first": _FixedScores([1, 1, 1, 1, 5, 4]),  # list: 4, 5, then 2, 3 by the tie order
    }
    params = EvaluateParams(ks=(1, 3), metrics=("recall",))
    found = evaluate_all(parts, models, items, params, splits=("mixed_all", "mixed_warm", "mixed_cold", "cold"))
    assert found["mixed_warm"]["warm_first"]["recall@1"] == 1.0  # item 2 first
    assert found["mixed_cold"]["warm_first"] == {"recall@1": 0.0, "recall@3": 1.0}  # item 4 third
    assert found["mixed_all"]["warm_first"] == {"recall@1": 0.5, "recall@3": 1.0}  # 2 and 4 in the top 3
    assert found["mixed_cold"]["cold_first"]["recall@1"] == 1.0
    assert found["mixed_warm"]["cold_first"]["recall@1"] == 0.0
    assert found["cold"]["warm_first"]["recall@1"] == 1.0  # among the cold items alone, 4 beats 5
