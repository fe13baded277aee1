"""F1@K, per-user AUC, GAUC and pooled AUC, and the @k metrics, against independent implementations.

On real data: Pop (many tied scores) and EASE fit on the train part of 300 ML-100K users. AUC is checked
against ``sklearn.metrics.roc_auc_score`` on the same scores, NDCG/Recall/MRR/Precision/F1 against ``ranx``
on the same ranked lists, all at 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from recause.config import SplitParams
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.data.sampling import sample_users
from recause.data.schemas import Tables
from recause.data.split import split_interactions
from recause.evaluation.auc import pooled_auc
from recause.evaluation.metrics import per_user_metrics
from recause.evaluation.ranking import evaluate_ranking, relevance, result_names, tie_priority, top_k
from recause.models.base import Recommender
from recause.models.baselines import EASE, Pop

Case = tuple[dict[str, sp.csr_matrix], dict[str, Recommender]]


@pytest.fixture(scope="module")
def case(ml100k: Tables) -> Case:
    """Train/valid/test matrices of 300 ML-100K users (RecBole's random 80/10/10 per user) and two models."""
    tables = sample_users(ml100k, 300, seed=0)
    parts = split_interactions(tables.interactions, SplitParams())
    users, items = split_users(parts.values()), IdIndex.from_values(tables.interactions["item_id"])
    matrices = {name: interaction_matrix(frame, users, items) for name, frame in parts.items()}
    return matrices, {m.name: m.fit(matrices["train"]) for m in (Pop(), EASE())}


def _candidates(n_items: int) -> np.ndarray:
    return np.random.default_rng(1).random(n_items) < 0.3


def _sklearn_aucs(
    scores: np.ndarray, excluded: np.ndarray, truth: np.ndarray, candidates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-user AUC (NaN without both classes), positives per user, and the pooled AUC -- all by sklearn."""
    rankable = ~excluded & (True if candidates is None else candidates)
    labels, pooled_scores, per_user, positives = [], [], [], []
    for row in range(len(scores)):
        y, s = truth[row][rankable[row]], scores[row][rankable[row]]
        labels.append(y)
        pooled_scores.append(s)
        positives.append(int(y.sum()))
        per_user.append(roc_auc_score(y, s) if 0 < y.sum() < len(y) else np.nan)
    return np.array(per_user), np.array(positives), roc_auc_score(np.concatenate(labels), np.concatenate(pooled_scores))


@pytest.mark.parametrize("model_name", ["pop", "ease"])
@pytest.mark.parametrize("restricted", [False, True])
def test_auc_and_gauc_match_sklearn_on_the_same_scores(case: Case, model_name: str, restricted: bool) -> None:
    matrices, models = case
    train, test = matrices["train"], matrices["test"]
    excluded = train + matrices["valid"]
    candidates = _candidates(train.shape[1]) if restricted else None
    per_user: dict[str, np.ndarray] = {}
    model = models[model_name]
    found = evaluate_ranking(
        model.score, train, excluded, test, [10], ["gauc", "auc"], candidates, per_user_out=per_user, batch_users=64
    )
    rows = per_user["user_rows"]
    scores = model.score(train[rows])
    if model_name == "pop":  # ties between positives and negatives: the half-counted pairs are exercised
        assert len(np.unique(scores[0])) < scores.shape[1] / 2
    expected, positives, pooled = _sklearn_aucs(
        scores, excluded[rows].toarray() > 0, test[rows].toarray() > 0, candidates
    )
    np.testing.assert_array_equal(np.isnan(per_user["gauc"]), np.isnan(expected))
    np.testing.assert_allclose(per_user["gauc"], expected, rtol=0, atol=1e-9)
    kept = ~np.isnan(expected)
    assert found["gauc"] == pytest.approx((expected[kept] * positives[kept]).sum() / positives[kept].sum(), abs=1e-9)
    assert found["auc"] == pytest.approx(pooled, abs=1e-9)
    assert 0.5 < found["gauc"] < 1 and 0.5 < found["auc"] < 1  # both models beat a random order


def test_gauc_and_auc_by_hand_with_ties_exclusions_and_a_user_without_negatives() -> None:
    # items scored 3, 2, 2, 1 for everyone
    history = sp.csr_matrix((3, 4), dtype=np.float32)
    excluded = sp.csr_matrix(np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]], dtype=np.float32))

    def score(rows: sp.csr_matrix) -> np.ndarray:
        return np.tile([3.0, 2.0, 2.0, 1.0], (rows.shape[0], 1))

    per_user: dict[str, np.ndarray] = {}
    found = evaluate_ranking(score, history, excluded, truth, [2], ["gauc", "auc"], per_user_out=per_user)
    # user 0: positive 1 (score 2) against 3 (lost), 2 (tie, 1/2), 1 (won) -> 1.5 / 3
    # user 1: item 0 excluded; every rankable item is positive -> no negative, left out
    # user 2: no negative either
    np.testing.assert_array_equal(per_user["gauc"], [0.5, np.nan, np.nan])
    assert found["gauc"] == 0.5
    # pooled: positives (2 | 2, 2, 1 | 3, 2, 2, 1) against user 0's negatives (3, 2, 1)
    wins = {3.0: 2.5, 2.0: 1.5, 1.0: 0.5}  # per positive score: negatives below + half the equal ones
    positives = [2.0, 2.0, 2.0, 1.0, 3.0, 2.0, 2.0, 1.0]
    assert found["auc"] == pytest.approx(sum(wins[p] for p in positives) / (8 * 3), abs=1e-15)
    assert pooled_auc(np.array([1.0]), np.array([])) == 0.0


def test_f1_is_the_harmonic_mean_of_precision_and_recall_from_the_same_hits(case: Case) -> None:
    matrices, models = case
    train, test = matrices["train"], matrices["test"]
    top = top_k(models["ease"].score(train), 20, (train + matrices["valid"]).toarray() > 0)
    n_relevant = np.asarray(test.sum(axis=1)).ravel()
    values = per_user_metrics(relevance(top, test), n_relevant, [5, 20], ("precision", "recall", "f1"))
    for k in (5, 20):
        p, r, f1 = values[f"precision@{k}"], values[f"recall@{k}"], values[f"f1@{k}"]
        assert (f1[(p + r) == 0] == 0).all() and ((p + r) == 0).any() and ((p + r) > 0).any()
        both = (p + r) > 0
        np.testing.assert_allclose(f1[both], 2 * p[both] * r[both] / (p[both] + r[both]), rtol=0, atol=1e-15)
        hits = relevance(top, test)[n_relevant > 0][:, :k].sum(axis=1)
        np.testing.assert_allclose(f1, 2 * hits / (k + n_relevant[n_relevant > 0]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("restricted", [False, True])
def test_the_k_metrics_match_ranx_on_the_same_ranked_lists(case: Case, restricted: bool) -> None:
    from ranx import Qrels, Run, evaluate

    matrices, models = case
    train, test = matrices["train"], matrices["test"]
    excluded = train + matrices["valid"]
    candidates = _candidates(train.shape[1]) if restricted else None
    priority = tie_priority(train.shape[1], 0)
    names = ("ndcg", "recall", "mrr", "precision", "f1")
    for model in models.values():
        per_user: dict[str, np.ndarray] = {}
        evaluate_ranking(
            model.score, train, excluded, test, [10, 20], names, candidates, priority, per_user_out=per_user
        )
        rows = per_user["user_rows"]
        top = top_k(model.score(train[rows]), 20, excluded[rows].toarray() > 0, candidates, priority)
        judged = test[rows] if candidates is None else test[rows].multiply(candidates[None, :]).tocsr()
        judged.eliminate_zeros()  # the multiply keeps the non-candidate items as explicit zeros
        ids = [f"u{row:05d}" for row in rows]
        qrels = Qrels({q: {f"i{i}": 1 for i in judged[n].indices} for n, q in enumerate(ids)})
        # scores K - rank: no ties, so ranx orders each list exactly as top_k did
        run = Run({q: {f"i{i}": float(20 - r) for r, i in enumerate(top[n]) if i >= 0} for n, q in enumerate(ids)})
        keys = result_names(names, [10, 20])
        theirs = evaluate(qrels, run, keys, return_mean=False)
        for key in keys:
            np.testing.assert_allclose(per_user[key], theirs[key], rtol=0, atol=1e-9, err_msg=f"{model.name} {key}")


def test_gauc_and_auc_do_not_depend_on_batching_or_user_order(case: Case) -> None:
    matrices, models = case
    train, valid, test = matrices["train"], matrices["valid"], matrices["test"]
    names = ("ndcg", "f1", "gauc", "auc")
    first = evaluate_ranking(models["ease"].score, train, train + valid, test, [10], names, batch_users=7)
    order = np.random.default_rng(2).permutation(train.shape[0])
    train, valid, test = train[order], valid[order], test[order]
    second = evaluate_ranking(models["ease"].score, train, train + valid, test, [10], names, batch_users=2048)
    assert first == second
    assert list(first) == ["ndcg@10", "f1@10", "gauc", "auc"]


def test_unknown_metric_names_are_one_clear_error() -> None:
    history = sp.csr_matrix((1, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown metrics \\['gauc@10'\\]"):
        evaluate_ranking(lambda rows: np.zeros((rows.shape[0], 2)), history, history, history, [10], ["gauc@10"])
