"""Baselines against independent references on tiny matrices, and the no-pickle round trip."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recause.artifacts import load_model, save_model
from recause.config import EASEParams, ItemKNNParams
from recause.models.baselines import BASELINES, EASE, ItemKNN, Pop


@pytest.fixture
def binary_matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(7)
    return sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float32))


def test_ease_equals_per_item_ridge_regression(binary_matrix: sp.csr_matrix) -> None:
    """EASE's closed form must solve its own objective: per item j, ridge-regress x_j on the others."""
    x = binary_matrix.toarray().astype(np.float64)
    reg = 3.0
    n_items = x.shape[1]
    reference = np.zeros((n_items, n_items))
    for j in range(n_items):
        others = [i for i in range(n_items) if i != j]
        a = x[:, others]
        reference[others, j] = np.linalg.solve(a.T @ a + reg * np.eye(n_items - 1), a.T @ x[:, j])
    model = EASE(EASEParams(reg_weight=reg)).fit(binary_matrix)
    np.testing.assert_allclose(model.weights, reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.score(binary_matrix[:3]), x[:3] @ reference, rtol=1e-4, atol=1e-5)


def _dense_cosine(x: np.ndarray, shrink: float) -> np.ndarray:
    norms = np.sqrt((x**2).sum(axis=0))
    sims = (x.T @ x) / (np.outer(norms, norms) + shrink + 1e-6)
    np.fill_diagonal(sims, 0.0)
    return sims


def test_itemknn_keeping_all_neighbours_is_plain_cosine(binary_matrix: sp.csr_matrix) -> None:
    x = binary_matrix.toarray().astype(np.float64)
    model = ItemKNN(ItemKNNParams(k=x.shape[1] - 1, shrink=2.0)).fit(binary_matrix)
    np.testing.assert_allclose(model.weights.toarray(), _dense_cosine(x, 2.0), rtol=1e-5, atol=1e-6)


def test_itemknn_keeps_the_k_most_similar_items_per_target(binary_matrix: sp.csr_matrix) -> None:
    x = binary_matrix.toarray().astype(np.float64)
    sims = _dense_cosine(x, 0.0)
    weights = ItemKNN(ItemKNNParams(k=3)).fit(binary_matrix).weights.toarray()
    for j in range(x.shape[1]):
        kept = np.flatnonzero(weights[:, j])
        assert len(kept) <= 3
        dropped = np.setdiff1d(np.arange(x.shape[1]), np.append(kept, j))
        assert sims[kept, j].min() >= sims[dropped, j].max() - 1e-9
        np.testing.assert_allclose(weights[kept, j], sims[kept, j], rtol=1e-5)


def test_pop_scores_items_by_train_count(binary_matrix: sp.csr_matrix) -> None:
    scores = Pop().fit(binary_matrix).score(binary_matrix[:2])
    counts = binary_matrix.toarray().sum(axis=0)
    assert scores.shape == (2, binary_matrix.shape[1])
    np.testing.assert_array_equal(scores[0], counts)
    np.testing.assert_array_equal(scores[1], counts)


def test_scoring_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        EASE().score(sp.csr_matrix((1, 3)))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_models_round_trip_through_safetensors_and_json(name: str, binary_matrix: sp.csr_matrix, tmp_path) -> None:
    model = BASELINES[name]().fit(binary_matrix)
    save_model(tmp_path, model, {"item_ids": [str(i) for i in range(binary_matrix.shape[1])]})
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.json", f"{name}.safetensors"]
    restored, meta = load_model(tmp_path, name, BASELINES)
    assert meta["model"] == name and len(meta["item_ids"]) == binary_matrix.shape[1]
    np.testing.assert_array_equal(restored.score(binary_matrix), model.score(binary_matrix))
