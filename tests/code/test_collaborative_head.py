"""The collaborative kernel head behind lm_retrieval: closed form, cold-item transfer, grid choice."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from recause.evaluation.ranking import evaluate_ranking
from recause.models.baselines.ease import ease_weights
from recause.models.language.collaborative_head import (
    HeadGrid,
    anchor_items,
    fit_collaborative_head,
    fit_head,
    select_head,
)
from recause.models.language.retrieval import KernelRetrieval, lm_retrieval_from_heads, normalise_rows, rbf_features

TYPES = 4  # text "types" A, B, C, D: items of one type have similar text
PER_TYPE = 6


def typed_items(seed: int = 0, noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of TYPES x PER_TYPE items, each near its type's (orthogonal) centre, and their types."""
    rng = np.random.default_rng(seed)
    centres = np.eye(TYPES, 16)
    kinds = np.repeat(np.arange(TYPES), PER_TYPE)
    return normalise_rows(centres[kinds] + noise * rng.normal(size=(len(kinds), 16))), kinds


def consumption(kinds: np.ndarray, n_users: int, seed: int, cold: np.ndarray) -> sp.csr_matrix:
    """Half the users consume types A and B, half C and D (never the cold items)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        liked = (0, 1) if user % 2 == 0 else (2, 3)
        pool = np.flatnonzero(np.isin(kinds, liked) & ~cold)
        rows.append(np.isin(np.arange(len(kinds)), rng.choice(pool, size=6, replace=False)).astype(np.float32))
    return sp.csr_matrix(np.array(rows))


def test_the_head_reproduces_ease_among_the_anchors_when_regularisation_vanishes() -> None:
    rng = np.random.default_rng(0)
    embeddings = normalise_rows(rng.normal(size=(6, 8)))
    train = sp.csr_matrix((rng.random((30, 6)) < 0.4).astype(np.float32))
    head = fit_head(embeddings, train, gamma=2.0, reg=1e-9, item_reg=3.0, max_anchors=10)
    kernel = rbf_features(embeddings, head.anchors, head.gamma)  # anchors = all six items here
    np.testing.assert_allclose(kernel @ head.weights @ kernel.T, ease_weights(train, 3.0), atol=2e-3)
    smoother = fit_head(embeddings, train, gamma=2.0, reg=10.0, item_reg=3.0, max_anchors=10)
    assert np.abs(kernel @ smoother.weights @ kernel.T - ease_weights(train, 3.0)).max() > 0.05  # reg shrinks


def test_a_cold_item_is_recommended_through_the_co_consumption_of_items_with_similar_text() -> None:
    embeddings, kinds = typed_items()
    cold = np.zeros(len(kinds), dtype=bool)
    cold_b, cold_d = PER_TYPE * 1, PER_TYPE * 3  # the first B item and the first D item never have events
    cold[[cold_b, cold_d]] = True
    train = consumption(kinds, 40, seed=0, cold=cold)
    retrieval = fit_head(embeddings, train, gamma=2.0, reg=0.1, item_reg=1.0, max_anchors=100)
    assert not np.isin(np.flatnonzero(cold), anchor_items(train, 100)).any()
    only_a = sp.csr_matrix(np.isin(np.arange(len(kinds)), np.flatnonzero(kinds == 0)[:3]).astype(np.float32)[None])
    only_c = sp.csr_matrix(np.isin(np.arange(len(kinds)), np.flatnonzero(kinds == 2)[:3]).astype(np.float32)[None])
    # A-readers also consume B: the head carries an A history to the cold B item, a C history to D.
    for history, preferred, other in ((only_a, cold_b, cold_d), (only_c, cold_d, cold_b)):
        scores = retrieval.score(history)[0]
        assert scores[preferred] - scores[other] > 0.5 * abs(scores[preferred])  # clearly, not by a hair
    # Plain text similarity cannot tell: neither cold item resembles an A item.
    profile = normalise_rows(embeddings[kinds == 0][:3].mean(axis=0, keepdims=True))
    cosine = (profile @ embeddings.T)[0]
    assert abs(cosine[cold_b] - cosine[cold_d]) < 0.2


def test_anchors_are_the_most_consumed_items_with_events_and_a_cap_says_so(caplog: pytest.LogCaptureFixture) -> None:
    train = sp.csr_matrix(np.array([[1, 0, 1, 1, 0], [1, 0, 0, 1, 0], [1, 0, 0, 0, 1]], dtype=np.float32))
    assert anchor_items(train, 10).tolist() == [0, 2, 3, 4]  # item 1 has no events
    with caplog.at_level(logging.INFO):
        assert anchor_items(train, 2).tolist() == [0, 3]  # 3 and 2 events; ties would keep the lower index
    assert "4 items have events; the 2 most consumed are anchors" in caplog.text
    with pytest.raises(ValueError, match="no item has events"):
        anchor_items(sp.csr_matrix((3, 4), dtype=np.float32), 2)


def held_out_world(noise: float) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    embeddings, kinds = typed_items(seed=1, noise=noise)
    held = np.zeros(len(kinds), dtype=bool)
    held[[1, PER_TYPE + 1, 2 * PER_TYPE + 1, 3 * PER_TYPE + 1]] = True
    everything = consumption(kinds, 60, seed=2, cold=np.zeros(len(kinds), dtype=bool)).toarray()
    return embeddings, sp.csr_matrix(everything * ~held), sp.csr_matrix(everything * held)


def test_select_head_scores_every_grid_point_as_a_directly_fitted_head_would_and_keeps_the_best() -> None:
    embeddings, train, held_out = held_out_world(noise=0.6)
    grid = HeadGrid(gammas=[0.5, 4.0, 40.0], regs=[1e-3, 1.0, 1e3], item_reg=1.0, max_anchors=100)
    choice = select_head(embeddings, train, held_out, grid)
    assert set(choice.validation) == {(g, r) for g in grid.gammas for r in grid.regs}
    candidates = np.asarray(held_out.sum(axis=0)).ravel() > 0
    for (gamma, reg), score in choice.validation.items():  # the eigendecomposition shortcut is exact
        head = fit_head(embeddings, train, gamma, reg, grid.item_reg, grid.max_anchors)
        direct = evaluate_ranking(head.score, train, train, held_out, [10], ["ndcg"], candidates=candidates)
        assert score == pytest.approx(direct["ndcg@10"], abs=1e-9)
    assert choice.validation[(choice.gamma, choice.reg)] == max(choice.validation.values())
    assert max(choice.validation.values()) > min(choice.validation.values()) + 0.05  # the grid matters here
    with pytest.raises(ValueError, match="grid is empty"):
        select_head(embeddings, train, held_out, HeadGrid([], [1.0], 1.0, 100))


def test_select_head_breaks_ties_towards_the_smoother_fit() -> None:
    embeddings, train, held_out = held_out_world(noise=0.15)
    held_out = sp.csr_matrix(held_out.multiply(np.arange(held_out.shape[1]) == 1))  # one candidate: all tie
    grid = HeadGrid(gammas=[2.0, 1.0], regs=[0.1, 1.0], item_reg=1.0, max_anchors=100)
    tied = select_head(embeddings, train, held_out, grid)
    assert len(set(tied.validation.values())) == 1
    assert (tied.gamma, tied.reg) == (1.0, 1.0)  # the widest kernel, the strongest ridge


def test_fit_collaborative_head_refits_on_the_validation_items_too() -> None:
    embeddings, kinds = typed_items(seed=2)
    held = kinds == 3
    everything = consumption(kinds, 40, seed=3, cold=np.zeros(len(kinds), dtype=bool)).toarray()
    train, held_out = sp.csr_matrix(everything * ~held), sp.csr_matrix(everything * held)
    grid = HeadGrid(gammas=[1.0, 3.0], regs=[0.5, 5.0], item_reg=1.0, max_anchors=100)
    head, summary = fit_collaborative_head(embeddings, train, held_out, grid)
    assert summary["anchors"] == len(kinds) and (summary["gamma"], summary["reg"]) in {(1.0, 0.5), (1.0, 5.0),
                                                                                        (3.0, 0.5), (3.0, 5.0)}  # fmt: skip
    assert set(summary["validation_ndcg@10"]) == {
        "gamma=1,reg=0.5",
        "gamma=1,reg=5",
        "gamma=3,reg=0.5",
        "gamma=3,reg=5",
    }
    expected = fit_head(embeddings, sp.csr_matrix(everything), summary["gamma"], summary["reg"], 1.0, 100)
    np.testing.assert_allclose(head.weights, expected.weights, rtol=1e-4, atol=1e-5)
    without_head, without = fit_collaborative_head(embeddings, train, None, grid)
    assert (without["gamma"], without["reg"]) == (1.0, 0.5) and "validation_ndcg@10" not in without
    assert without["anchors"] == int((~held).sum()) == len(without_head.anchors)


def test_lm_retrieval_from_heads_scores_with_the_kernel_head_when_finetune_saved_one() -> None:
    rng = np.random.default_rng(4)
    embeddings = normalise_rows(rng.normal(size=(7, 5))).astype(np.float32)
    learned = {
        "user_projection.weight": rng.normal(size=(5, 5)),
        "user_projection.bias": rng.normal(size=5),
        "item_bias.weight": rng.normal(size=(1, 5)),
        "item_bias.bias": rng.normal(size=1),
    }
    head = KernelRetrieval(embeddings, embeddings[[0, 2, 5]], rng.normal(size=(3, 3)).astype(np.float32), 3.0)
    history = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1]], dtype=np.float32))
    collaborative = lm_retrieval_from_heads(embeddings, {**learned, **head.heads()}, 0.05)
    features = np.exp(3.0 * (embeddings @ embeddings[[0, 2, 5]].T - 1.0))
    expected = (history @ features) @ head.weights @ features.T  # (sum of history features)^T W phi(item)
    scores = collaborative.score(history)
    for user in range(2):  # the same ranking: equal up to a positive per-user scale
        ratio = scores[user] / expected[user]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
        assert ratio[0] > 0
    restored = KernelRetrieval.from_state(head.config(), head.arrays())
    np.testing.assert_array_equal(restored.score(history), head.score(history))
    fallback = lm_retrieval_from_heads(embeddings, learned, 0.05)  # retrieval_head: learned
    bias = embeddings @ learned["item_bias.weight"].ravel() + learned["item_bias.bias"][0]
    np.testing.assert_allclose(fallback.item_bias, bias, rtol=1e-5)
    assert not np.allclose(np.argsort(fallback.score(history)), np.argsort(scores))
