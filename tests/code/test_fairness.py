"""The fairness library: the long-tail re-ranker's guarantees, group metrics, APLT/ACLT and the counterfactual
pieces on small hand-checked examples, and the greedy serving policy with a re-ranker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recause.config import parse_params
from recause.errors import ParamsError
from recause.evaluation.ranking import tie_priority, top_k
from recause.fairness.counterfactual import (
    attribute_columns,
    flipped,
    list_jaccard,
    mean_imputed,
    shifted_user_vectors,
)
from recause.fairness.groups import (
    age_band_labels,
    attribute_labels,
    group_metrics,
    permutation_null,
    pooled,
    relative_gap,
)
from recause.fairness.longtail import short_head, tail_exposure
from recause.fairness.rerank import TailReranker, rerank_candidates, standardised
from recause.fairness.target import LONG_TAIL, targeted, verdict
from recause.online.policy import PolicySettings, choose

STRENGTHS = (0.0, 0.3, 1.0, 3.0, 100.0)


@pytest.fixture(scope="module")
def ranked() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """60 users x 400 items: scores with many ties, ~40% of items seen, one user with only 6 unseen items."""
    rng = np.random.default_rng(7)
    scores = np.round(rng.normal(size=(60, 400)), 1)  # rounding makes ties the tie rule must settle
    seen = rng.random((60, 400)) < 0.4
    seen[0] = True
    seen[0, [3, 50, 51, 200, 300, 399]] = False
    tail = rng.random(400) < 0.7
    return scores, seen, tail


@pytest.mark.parametrize("strength", STRENGTHS)
def test_the_reranker_never_recommends_a_seen_item_and_keeps_k(ranked, strength: float) -> None:  # noqa: ANN001
    scores, seen, tail = ranked
    top = TailReranker(tail, strength, n_candidates=30).top_k(scores, 10, seen)
    assert top.shape == (60, 10)
    listed = top >= 0
    assert not seen[np.nonzero(listed)[0], top[listed]].any()
    assert listed[1:].all(), "every user with >= k unseen items gets k"
    assert sorted(top[0][listed[0]].tolist()) == [3, 50, 51, 200, 300, 399] and (top[0, 6:] == -1).all()
    assert all(len(set(row[row >= 0].tolist())) == (row >= 0).sum() for row in top), "an item listed twice"


def test_strength_zero_is_the_plain_top_k_ties_included(ranked) -> None:  # noqa: ANN001
    scores, seen, tail = ranked
    priority = tie_priority(400, 3)
    plain = top_k(scores, 10, seen, priority=priority)
    assert np.array_equal(TailReranker(tail, 0.0, 50).top_k(scores, 10, seen, priority), plain)
    assert np.array_equal(TailReranker(tail, 0.0, 10).top_k(scores, 10, seen, priority), plain)


def test_a_larger_strength_shows_more_tail_items_up_to_all_candidates(ranked) -> None:  # noqa: ANN001
    scores, seen, tail = ranked
    counts = np.ones(400)
    shares = [tail_exposure(TailReranker(tail, s, 30).top_k(scores, 10, seen), tail, counts).aplt for s in STRENGTHS]
    assert shares == sorted(shares) and shares[-1] > shares[0]
    candidates = top_k(scores, 30, seen)
    strongest = TailReranker(tail, 100.0, 30).top_k(scores, 10, seen)
    for row in range(1, 60):  # with enough tail candidates the list is the best of them, in score order
        tail_candidates = [c for c in candidates[row] if tail[c]]
        if len(tail_candidates) >= 10:
            assert strongest[row].tolist() == tail_candidates[:10]


def test_rerank_candidates_pads_short_rows_and_refuses_a_negative_strength() -> None:
    candidates = np.array([[4, 2, -1, -1]])
    values = np.array([[2.0, 1.0, 0.0, 0.0]])
    tail = np.array([False, False, True, False, False])
    assert rerank_candidates(candidates, values, tail, 3, 5.0).tolist() == [[2, 4, -1]]
    assert rerank_candidates(candidates[:, :2], values[:, :2], tail, 3, 0.0).tolist() == [[4, 2, -1]]
    with pytest.raises(ValueError, match="strength"):
        rerank_candidates(candidates, values, tail, 3, -1.0)


def test_standardised_scores_by_hand() -> None:
    values = np.array([[1.0, 2.0, 3.0, 9.0], [5.0, 5.0, 0.0, 0.0]])
    valid = np.array([[True, True, True, False], [True, True, False, False]])
    z = standardised(values, valid)
    spread = np.sqrt(2.0 / 3.0)
    assert np.allclose(z[0], [-1 / spread, 0.0, 1 / spread, 0.0])
    assert np.allclose(z[1], 0.0)  # equal scores: no spread, all zero


def test_short_head_holds_the_share_of_interactions() -> None:
    counts = np.array([10, 1, 5, 0, 4])
    assert short_head(counts, 0.5).tolist() == [True, False, False, False, False]
    assert short_head(counts, 0.6).tolist() == [True, False, True, False, False]
    with pytest.raises(ValueError, match="head_share"):
        short_head(counts, 1.0)


def test_aplt_and_aclt_by_hand() -> None:
    tail = np.array([False, False, True, True, True])
    counts = np.array([5, 4, 1, 0, 0])
    exposure = tail_exposure(np.array([[0, 2, 3], [1, 4, -1]]), tail, counts)
    assert exposure.aplt == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert exposure.aclt == pytest.approx(1.5)
    assert exposure.catalogue_share == pytest.approx(0.6)
    assert exposure.interaction_share == pytest.approx(0.1)
    assert exposure.gap == pytest.approx(1 - (7 / 12) / 0.1)  # over-exposed: a negative gap


def test_group_metrics_by_hand() -> None:
    labels = pd.Series(["a", "a", "b", "b", "b"], name="group")
    values = {"ndcg@10": np.array([0.2, 0.4, 0.6, 0.6, 0.9]), "recall@10": np.array([1.0, 0.0, 0.5, 0.5, 0.5])}
    found = group_metrics(values, labels, n_boot=50, seed=1)
    assert found["groups"]["a"]["ndcg@10"] == pytest.approx(0.3)
    assert found["groups"]["b"]["ndcg@10"] == pytest.approx(0.7)
    assert found["groups"]["b"]["users"] == 3
    ndcg = found["summary"]["ndcg@10"]
    assert ndcg["gap"] == pytest.approx(0.4) and ndcg["ratio"] == pytest.approx(3 / 7)
    assert ndcg["relative_gap"] == pytest.approx(4 / 7)
    low, high = found["groups"]["a"]["ndcg@10_ci"]
    assert 0.2 - 1e-9 <= low <= 0.3 <= high <= 0.4 + 1e-9  # bootstrap means of {0.2, 0.4} stay between them
    assert found["summary"]["recall@10"]["gap"] == pytest.approx(0.0)
    assert "ndcg@10_ci" not in group_metrics(values, labels)["groups"]["a"]


def test_age_bands_and_pooling_of_small_groups() -> None:
    ages = pd.Series([17, 18, 24, 25, 56, 70, None], dtype="Int32")
    assert age_band_labels(ages).tolist() == ["<18", "18-24", "18-24", "25-34", "56+", "56+", "unknown"]
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "gender": ["F", None, "M"], "age": [30, 40, 20]})
    labels = attribute_labels(users, np.array(["u3", "u1", "nobody"]), ["gender", "age"])
    assert labels["gender"].tolist() == ["M", "F", "unknown"]
    assert labels["age"].tolist() == ["18-24", "25-34", "unknown"]
    merged = pooled(pd.Series(["x"] * 5 + ["y"] * 2 + ["z"]), 3)
    assert merged.tolist() == ["x"] * 5 + ["2 groups under 3 users"] * 3


def test_flip_and_the_feature_blocks_it_moves() -> None:
    users = pd.DataFrame(
        {"user_id": ["a", "b", "c"], "age": [20, 40, 60], "gender": ["F", "M", None], "occupation": ["x", "y", "x"]}
    )
    genders = flipped(users, "gender")["gender"]
    assert genders.tolist()[:2] == ["M", "F"] and pd.isna(genders[2])
    with pytest.raises(ValueError, match="binary"):
        flipped(users, "age")
    ids = np.array(["a", "b", "c"])
    columns = attribute_columns(users, ids)
    assert [columns[c].stop - columns[c].start for c in ("age", "gender", "occupation")] == [3, 2, 2]
    features = np.eye(3, 7, dtype=np.float32)
    imputed = mean_imputed(features, [columns["age"]])
    assert np.allclose(imputed[:, columns["age"]], 1 / 3) and np.array_equal(imputed[:, 3:], features[:, 3:])
    weight = np.arange(14, dtype=np.float32).reshape(2, 7)  # (dim 2, 7 features)
    moved = shifted_user_vectors(np.zeros((3, 2), np.float32), features, imputed, weight)
    assert np.allclose(moved, (imputed - features) @ weight.T)


def test_list_jaccard_by_hand() -> None:
    first = np.array([[1, 2, 3], [5, -1, -1], [-1, -1, -1]])
    second = np.array([[2, 3, 4], [5, -1, -1], [-1, -1, -1]])
    assert list_jaccard(first, second).tolist() == [0.5, 1.0, 1.0]


def test_target_and_verdict() -> None:
    assert targeted(0.46, "occupation", 0.42) == LONG_TAIL
    assert targeted(0.40, "occupation", 0.42) == "occupation"
    assert targeted(0.40, None, 0.0) == LONG_TAIL
    met = verdict({"gap": 0.46, "ndcg": 0.34}, {"gap": 0.22, "ndcg": 0.333}, 0.5, 0.03)
    assert met["met"] and met["relative_ndcg_loss"] == pytest.approx(1 - 0.333 / 0.34)
    assert not verdict({"gap": 0.46, "ndcg": 0.34}, {"gap": 0.24, "ndcg": 0.34}, 0.5, 0.03)["met"]
    assert not verdict({"gap": 0.46, "ndcg": 0.34}, {"gap": 0.1, "ndcg": 0.32}, 0.5, 0.03)["met"]


def test_params_need_the_plain_point_and_enough_candidates() -> None:
    with pytest.raises(ParamsError, match="include 0"):
        parse_params({"fairness": {"rerank": {"curve": [0.5, 1.0]}}})
    with pytest.raises(ParamsError, match="smaller than k"):
        parse_params({"fairness": {"k": 20, "rerank": {"candidates": 10}}})


def test_the_greedy_policy_shows_the_reranked_list_and_exploration_ignores_it(ranked) -> None:  # noqa: ANN001
    scores, seen, tail = ranked
    reranker = TailReranker(tail, 1.0, 30)
    expected = reranker.top_k(scores[5:6], 8, seen[5:6])[0]
    shown = choose(scores[5], seen[5], 8, PolicySettings("greedy"), np.random.default_rng(0), reranker.top_k)
    assert shown.items.tolist() == expected.tolist() and np.allclose(shown.propensities, 1.0)
    assert np.allclose(shown.scores, scores[5, expected])
    plain = choose(scores[5], seen[5], 8, PolicySettings("greedy"), np.random.default_rng(0))
    assert plain.items.tolist() == top_k(scores[5:6], 8, seen[5:6])[0].tolist()
    exploring = PolicySettings("epsilon", epsilon=0.0, pool=20)
    assert choose(scores[5], seen[5], 8, exploring, np.random.default_rng(0), reranker.top_k).items.tolist() == (
        plain.items.tolist()
    )


def test_random_groups_of_the_same_sizes_show_how_much_gap_noise_alone_gives() -> None:
    """A planted difference between two groups is far outside the shuffled labels' gaps (p at its floor); labels
    unrelated to the values give a p-value that is not small; the relative gap is that of the group means."""
    rng = np.random.default_rng(3)
    values = rng.uniform(0.0, 1.0, 400)
    planted = pd.Series(np.where(np.arange(400) < 200, "a", "b"))
    shifted = values + np.where(planted == "a", 0.5, 0.0)
    means = pd.Series(shifted).groupby(planted).mean()
    assert relative_gap(shifted, pd.factorize(planted)[0], 2)[0] == pytest.approx(1 - means.min() / means.max())
    real = permutation_null(shifted, planted, 500, seed=0)
    assert real["p_value"] == pytest.approx(1 / 501) and real["interval"][1] < real["observed"]
    unrelated = permutation_null(values, pd.Series(rng.choice(["x", "y", "z"], 400)), 500, seed=0)
    assert unrelated["p_value"] > 0.05 and unrelated["interval"][0] <= unrelated["observed"] <= unrelated["interval"][1]
    assert permutation_null(values, planted, 50, seed=1) == permutation_null(values, planted, 50, seed=1)
