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
