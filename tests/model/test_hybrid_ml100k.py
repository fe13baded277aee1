"""The hybrid EASE (recause.models.hybrid) on MovieLens-100K: the content kernel and the popularity-scaled
ridge beat plain EASE on valid, items without interactions get scores from what they are, and the setting
is chosen on valid alone.

Item content here is the items' genres and release decade (one-hot), which the test can build without the
language model; the pipeline gives the model the `embed` stage's embeddings instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recause.config import SplitParams
from recause.data.features import item_side_features, one_hot
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.data.schemas import Tables
from recause.data.split import split_interactions
from recause.models.baselines import EASE
from recause.models.hybrid import HybridEASE, HybridEASEParams, select_on_valid, settings


@pytest.fixture(scope="module")
def data(ml100k: Tables) -> tuple[dict[str, sp.csr_matrix], np.ndarray]:
    parts = split_interactions(ml100k.interactions, SplitParams())
    items = IdIndex.from_values(ml100k.items["item_id"])
    users = split_users(parts.values())
    matrices = {name: interaction_matrix(frame, users, items) for name, frame in parts.items()}
    catalogue = ml100k.items.set_index(ml100k.items["item_id"].astype(str)).reindex(items.ids).reset_index(drop=True)
    genres = item_side_features(catalogue, items.ids)[:, :-1]  # the last column is the standardised year
    decade = one_hot((pd.to_numeric(catalogue["year"], errors="coerce") // 10).astype("Int64").astype("string"))
    return matrices, np.hstack([genres, decade])


@pytest.mark.slow
def test_content_and_popularity_ridge_beat_ease_on_valid_and_the_choice_holds_on_test(data) -> None:  # noqa: ANN001
    matrices, content = data
    grid = settings([250.0, 400.0], [0.0, 0.5], [0.0, 100.0], content_power=1)
    chosen = select_on_valid(matrices["train"], matrices["valid"], content, grid)
    by_setting = {(s.reg_weight, s.popularity_reg, s.content_weight): v for s, v in chosen.scores}
    ease_on_valid = by_setting[250.0, 0.0, 0.0]  # EASE's default, as RecBole ships it
    assert max(by_setting.values()) > 1.01 * ease_on_valid
    assert (chosen.best.popularity_reg, chosen.best.content_weight) != (0.0, 0.0)

    def test_ndcg(model: object) -> float:
        from recause.evaluation.ranking import evaluate_ranking

        seen = matrices["train"] + matrices["valid"]
        return evaluate_ranking(model.score, matrices["train"], seen, matrices["test"], [10], ["ndcg"])["ndcg@10"]  # type: ignore[attr-defined]

    assert test_ndcg(chosen.model) > 1.01 * test_ndcg(EASE().fit(matrices["train"]))


def test_an_item_nobody_consumed_is_scored_from_its_content_only_when_content_is_weighted(data) -> None:  # noqa: ANN001
    matrices, content = data
    train = matrices["train"].tolil()
    cold = int(np.argmax(np.asarray(train.sum(axis=0)).ravel()))  # the most popular item, made cold
    train[:, cold] = 0
    train = train.tocsr()
    train.eliminate_zeros()
    with_content = HybridEASE(HybridEASEParams(content_power=1), content).fit(train)
    without = HybridEASE(HybridEASEParams(content_weight=0.0), content).fit(train)
    histories = train[:50]
    assert np.all(without.score(histories)[:, cold] == 0)
    assert np.count_nonzero(with_content.score(histories)[:, cold]) > 40
    restored = HybridEASE.from_state(with_content.config(), with_content.arrays())
    np.testing.assert_array_equal(restored.score(histories), with_content.score(histories))


def test_the_setting_is_chosen_on_valid_even_when_test_would_choose_another(data) -> None:  # noqa: ANN001
    """A planted disagreement: valid is made of what setting A ranks first, test of what setting B ranks
    first. The selector is given train and valid only, and must pick A."""
    matrices, content = data
    train = matrices["train"]
    a, b = (
        HybridEASEParams(reg_weight=250.0, content_weight=0.0, popularity_reg=0.0),
        HybridEASEParams(reg_weight=2000.0, content_weight=300.0, popularity_reg=2.0, content_power=1),
    )
    firsts = {}
    for name, setting in (("a", a), ("b", b)):
        scores = HybridEASE(setting, content).fit(train).score(train)
        scores[train.toarray() > 0] = -np.inf
        firsts[name] = np.argmax(scores, axis=1)
    differ = np.flatnonzero(firsts["a"] != firsts["b"])
    assert len(differ) > 100  # the two settings do disagree

    def truth(columns: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(differ)), (differ, columns[differ])), shape=train.shape)

    planted_valid = truth(firsts["a"])
    for grid in ([a, b], [b, a]):  # whatever the grid order
        assert select_on_valid(train, planted_valid, content, grid).best == a
    assert select_on_valid(train, truth(firsts["b"]), content, [a, b]).best == b  # the same data as "test"


def _cold_train(matrices: dict[str, sp.csr_matrix], n_cold: int = 40) -> tuple[sp.csr_matrix, np.ndarray]:
    """Train with the ``n_cold`` most popular items' events removed: cold items that valid still asks for."""
    train = matrices["train"].tolil()
    cold = np.argsort(-np.asarray(matrices["train"].sum(axis=0)).ravel(), kind="stable")[:n_cold]
    train[:, cold] = 0
    train = train.tocsr()
    train.eliminate_zeros()
    return train, cold


def test_the_cold_head_scores_items_without_train_events_and_ranks_them_as_the_head_does(data) -> None:  # noqa: ANN001
    matrices, content = data
    train, cold = _cold_train(matrices)
    head = content @ content.T / content.shape[1]  # any item-item head: here shared genres and decade
    model = HybridEASE(HybridEASEParams(content_power=1, cold_weight=3.0), content, head).fit(train)
    plain = HybridEASE(HybridEASEParams(content_power=1), content).fit(train)
    histories = train[:50]
    scores = model.score(histories)
    without_events = np.asarray(train.sum(axis=0)).ravel() == 0  # the 40 made cold, and items train never had
    assert without_events[cold].all()
    expected = 3.0 * (histories @ head[:, without_events])
    np.testing.assert_allclose(scores[:, without_events], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scores[:, ~without_events], plain.score(histories)[:, ~without_events])


def test_the_cold_weight_is_chosen_on_valid_even_when_test_would_choose_another(data) -> None:  # noqa: ANN001
    """A planted disagreement: valid holds each user's first item under cold weight 4, "test" under weight 0."""
    from recause.models.hybrid import select_cold_weight

    matrices, content = data
    train, _ = _cold_train(matrices)
    head = content @ content.T / content.shape[1]
    firsts = {}
    for weight in (0.0, 4.0):
        scores = (
            HybridEASE(HybridEASEParams(content_power=1, cold_weight=weight), content, head).fit(train).score(train)
        )
        scores[train.toarray() > 0] = -np.inf
        firsts[weight] = np.argmax(scores, axis=1)
    differ = np.flatnonzero(firsts[0.0] != firsts[4.0])
    assert len(differ) > 100

    def planted(weight: float) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(differ)), (differ, firsts[weight][differ])), shape=train.shape)

    model = HybridEASE(HybridEASEParams(content_power=1), content, head)
    for truth, expected in ((planted(4.0), 4.0), (planted(0.0), 0.0)):
        values = select_cold_weight(train, truth, model, [0.0, 4.0], held_out_fraction=0.0, seed=0)
        assert max(values, key=lambda pair: pair[1])[0] == expected


def test_debiasing_divides_scores_by_popularity_and_its_exponent_is_chosen_on_valid(data) -> None:  # noqa: ANN001
    matrices, content = data
    train = matrices["train"]
    counts = np.asarray(train.sum(axis=0)).ravel()
    debiased = HybridEASE(HybridEASEParams(content_weight=0.0, debias_exponent=0.5, debias_offset=10.0)).fit(train)
    plain = HybridEASE(HybridEASEParams(content_weight=0.0)).fit(train)
    np.testing.assert_allclose(
        debiased.score(train[:20]), plain.score(train[:20]) / np.sqrt(counts + 10.0)[None, :], rtol=1e-4, atol=1e-7
    )
    # valid = each user's first unseen item under the debiased setting: the selector must find that exponent
    scores = debiased.score(train)
    scores[train.toarray() > 0] = -np.inf
    first = np.argmax(scores, axis=1)
    valid = sp.csr_matrix((np.ones(train.shape[0]), (np.arange(train.shape[0]), first)), shape=train.shape)
    grid = [HybridEASEParams(content_weight=0.0)]
    chosen = select_on_valid(train, valid, None, grid, debias_exponents=(0.0, 0.5, 1.0))
    assert chosen.debiased.debias_exponent == 0.5 and chosen.best.debias_exponent == 0.0
    assert len(chosen.scores) == 3
