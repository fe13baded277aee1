"""The collaborative projection behind lm_retrieval: closed form, cold-item transfer, reg choice."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recause.models.baselines.ease import ease_weights
from recause.models.language.projection import (
    collaborative_projection,
    fit_retrieval_projection,
    item_item_weights,
    select_projection,
)
from recause.models.language.retrieval import lm_retrieval_from_heads, normalise_rows

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


def test_the_projection_reproduces_the_item_item_weights_when_regularisation_vanishes() -> None:
    embeddings = normalise_rows(np.random.default_rng(0).normal(size=(5, 8)))
    target = np.random.default_rng(1).normal(size=(5, 5))
    projection = collaborative_projection(embeddings, target, np.ones(5, dtype=bool), reg=1e-8)
    np.testing.assert_allclose(embeddings @ projection @ embeddings.T, target, atol=1e-5)
    smoother = collaborative_projection(embeddings, target, np.ones(5, dtype=bool), reg=10.0)
    assert np.abs(embeddings @ smoother @ embeddings.T - target).max() > 0.1  # reg shrinks the fit


def test_a_cold_item_is_recommended_through_the_co_consumption_of_items_with_similar_text() -> None:
    embeddings, kinds = typed_items()
    cold = np.zeros(len(kinds), dtype=bool)
    cold_b, cold_d = PER_TYPE * 1, PER_TYPE * 3  # the first B item and the first D item never have events
    cold[[cold_b, cold_d]] = True
    train = consumption(kinds, 40, seed=0, cold=cold)
    item_item, has_events = item_item_weights(train, item_reg=1.0)
    assert not has_events[cold].any()
    retrieval = lm_retrieval_from_heads(
        embeddings, {"retrieval_projection": collaborative_projection(embeddings, item_item, has_events, 1.0)}, 1.0
    )
    only_a = sp.csr_matrix(np.isin(np.arange(len(kinds)), np.flatnonzero(kinds == 0)[:3]).astype(np.float32)[None])
    only_c = sp.csr_matrix(np.isin(np.arange(len(kinds)), np.flatnonzero(kinds == 2)[:3]).astype(np.float32)[None])
    # A-readers also consume B: the projection carries an A history to the cold B item, a C history to D.
    assert retrieval.score(only_a)[0, cold_b] > retrieval.score(only_a)[0, cold_d] + 0.5
    assert retrieval.score(only_c)[0, cold_d] > retrieval.score(only_c)[0, cold_b] + 0.5
    # Plain text similarity cannot tell: neither cold item resembles an A item.
    profile = normalise_rows(embeddings[kinds == 0][:3].mean(axis=0, keepdims=True))
    cosine = (profile @ embeddings.T)[0]
    assert abs(cosine[cold_b] - cosine[cold_d]) < 0.2


def test_item_item_weights_are_ease_on_the_items_with_events() -> None:
    train = sp.csr_matrix(np.array([[1, 0, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]], dtype=np.float32))
    weights, has_events = item_item_weights(train, item_reg=2.0)
    assert has_events.tolist() == [True, False, True, True]
    np.testing.assert_allclose(weights, ease_weights(train[:, [0, 2, 3]].tocsr(), 2.0), rtol=1e-6)
    with pytest.raises(ValueError, match="no item has events"):
        item_item_weights(sp.csr_matrix((3, 4), dtype=np.float32), 2.0)


def held_out_world(noise: float) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    embeddings, kinds = typed_items(seed=1, noise=noise)
    held = np.zeros(len(kinds), dtype=bool)
    held[[1, PER_TYPE + 1, 2 * PER_TYPE + 1, 3 * PER_TYPE + 1]] = True
    everything = consumption(kinds, 60, seed=2, cold=np.zeros(len(kinds), dtype=bool)).toarray()
    return embeddings, sp.csr_matrix(everything * ~held), sp.csr_matrix(everything * held)


def test_select_projection_keeps_the_reg_that_ranks_the_held_out_items_best() -> None:
    embeddings, train, held_out = held_out_world(noise=1.0)  # noisy text: detail pays, smoothing loses it
    choice = select_projection(embeddings, train, held_out, [1e4, 1e-4, 1.0], item_reg=1.0)
    assert sorted(choice.validation) == [1e-4, 1.0, 1e4]
    assert choice.reg == 1e-4 and choice.validation[1e-4] > choice.validation[1e4] + 0.05
    np.testing.assert_array_equal(
        choice.projection, collaborative_projection(embeddings, *item_item_weights(train, 1.0), 1e-4)
    )
    embeddings, train, held_out = held_out_world(noise=0.15)  # clean text: every reg ranks alike
    tied = select_projection(embeddings, train, held_out, [1.0, 1e4, 10.0], item_reg=1.0)
    assert len(set(tied.validation.values())) == 1 and tied.reg == 1e4  # ties go to the smoother fit
    with pytest.raises(ValueError, match="no projection regularisation"):
        select_projection(embeddings, train, held_out, [], item_reg=1.0)
    with pytest.raises(ValueError, match="reg must be positive"):
        collaborative_projection(embeddings, np.eye(len(embeddings)), np.ones(len(embeddings), dtype=bool), 0.0)


def test_fit_retrieval_projection_refits_on_the_validation_items_too() -> None:
    embeddings, kinds = typed_items(seed=2)
    held = kinds == 3
    everything = consumption(kinds, 40, seed=3, cold=np.zeros(len(kinds), dtype=bool)).toarray()
    train, held_out = sp.csr_matrix(everything * ~held), sp.csr_matrix(everything * held)
    projection, summary = fit_retrieval_projection(embeddings, train, held_out, [0.5, 5.0], item_reg=1.0)
    assert summary["items_fitted"] == len(kinds) and summary["reg"] in (0.5, 5.0)
    assert set(summary["validation_ndcg@10"]) == {"0.5", "5.0"}
    item_item, has_events = item_item_weights(sp.csr_matrix(everything), 1.0)
    expected = collaborative_projection(embeddings, item_item, has_events, summary["reg"])
    np.testing.assert_allclose(projection, expected, rtol=1e-4, atol=1e-6)
    _, without = fit_retrieval_projection(embeddings, train, None, [5.0, 0.5], item_reg=1.0)
    assert without["reg"] == 5.0 and "validation_ndcg@10" not in without
    assert without["items_fitted"] == int((~held).sum())


def test_lm_retrieval_from_heads_scores_with_the_projection_when_finetune_saved_one() -> None:
    rng = np.random.default_rng(4)
    embeddings = normalise_rows(rng.normal(size=(7, 5)))
    learned = {
        "user_projection.weight": rng.normal(size=(5, 5)),
        "user_projection.bias": rng.normal(size=5),
        "item_bias.weight": rng.normal(size=(1, 5)),
        "item_bias.bias": rng.normal(size=1),
    }
    projection = rng.normal(size=(5, 5))
    history = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1]], dtype=np.float32))
    collaborative = lm_retrieval_from_heads(embeddings, {**learned, "retrieval_projection": projection}, 0.05)
    expected = (history @ embeddings) @ projection @ embeddings.T  # (sum of history)^T W e_item
    scores = collaborative.score(history)
    for user in range(2):  # the same ranking: equal up to a positive per-user scale
        ratio = scores[user] / expected[user]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
        assert ratio[0] > 0
    fallback = lm_retrieval_from_heads(embeddings, learned, 0.05)  # retrieval_head: learned
    bias = embeddings @ learned["item_bias.weight"].ravel() + learned["item_bias.bias"][0]
    np.testing.assert_allclose(fallback.item_bias, bias, rtol=1e-6)
    assert not np.allclose(np.argsort(fallback.score(history)), np.argsort(scores))
