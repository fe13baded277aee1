"""Ranking by causal effect beats ranking by accuracy on planted truth over the real ML-100K users x items.

After Sato et al. (RecSys 2020): the planted recommendation effect is largest for moderately liked
items and the logging policy favours liked ones, so a model that predicts consumption recommends
what users would consume anyway. The uplift model, trained on inverse-propensity effect labels,
must cause more consumption in its top 10 (CP@10) and over its whole ranking (CDCG).

The realised tau of the same world leaks into the training labels (a pair recommended and consumed
has Y1 = 1), so every claim is also checked against the expected effect p1 - p0, which does not.
The metrics are checked on hand-computed arrays and against a plain per-user loop.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from recause.causal.semi_synthetic import PlantedWorld, plant
from recause.causal.uplift import fit_accuracy, fit_uplift, ips_effect_labels
from recause.config.causal import SemiSyntheticParams, UpliftParams
from recause.data.matrix import IdIndex, interaction_matrix
from recause.data.schemas import Tables
from recause.evaluation import causal_metrics
from recause.evaluation.causal_metrics import causal_precision_at_k, cdcg

SEED = 0


@pytest.fixture(scope="module")
def world(ml100k: Tables) -> PlantedWorld:
    users = IdIndex.from_values(ml100k.interactions["user_id"])
    items = IdIndex.from_values(ml100k.items["item_id"])
    return plant(interaction_matrix(ml100k.interactions, users, items), SemiSyntheticParams(), SEED)


@pytest.fixture(scope="module")
def scores(world: PlantedWorld) -> dict[str, np.ndarray]:
    params = UpliftParams()
    return {
        "uplift": fit_uplift(world.treatment, world.outcome, world.propensity, params, SEED).scores(),
        "accuracy": fit_accuracy(world.outcome, params, SEED).scores(),
        # Its own stream: plant(seed=0) draws treatment and outcomes from default_rng(0), so a ranking
        # drawn from default_rng(0) would replay those draws and put tau = 0 items first.
        "random": np.random.default_rng([SEED, 12345]).random(world.outcome.shape),
    }


@pytest.mark.parametrize("truth", ["realised_effect", "effect"])
def test_uplift_causes_more_than_accuracy(world: PlantedWorld, scores: dict[str, np.ndarray], truth: str) -> None:
    tau = getattr(world, truth)
    uplift, accuracy = scores["uplift"], scores["accuracy"]
    assert causal_precision_at_k(uplift, tau, 10) >= 1.2 * causal_precision_at_k(accuracy, tau, 10)
    assert cdcg(uplift, tau) > cdcg(accuracy, tau)


@pytest.mark.parametrize("truth", ["realised_effect", "effect"])
def test_random_ranking_causes_less_than_uplift(world: PlantedWorld, scores: dict[str, np.ndarray], truth: str) -> None:
    tau = getattr(world, truth)
    random_cp = causal_precision_at_k(scores["random"], tau, 10)
    # A random top 10 hits the average effect (943 users x 10 items: standard error ~0.004).
    assert random_cp == pytest.approx(tau.mean(), abs=0.02)
    assert random_cp < causal_precision_at_k(scores["uplift"], tau, 10)
    assert cdcg(scores["random"], tau) < cdcg(scores["uplift"], tau)


def test_accuracy_model_wins_on_what_users_consume(world: PlantedWorld, scores: dict[str, np.ndarray]) -> None:
    # The trade-off is real: the baseline is a working recommender by the accuracy yardstick.
    consumed = world.outcome
    assert causal_precision_at_k(scores["accuracy"], consumed, 10) > causal_precision_at_k(
        scores["uplift"], consumed, 10
    )


def test_fits_are_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(7)
    propensity = rng.uniform(0.05, 0.95, (30, 20))
    treatment = (rng.random((30, 20)) < propensity).astype(np.int8)
    outcome = (rng.random((30, 20)) < 0.3).astype(np.int8)
    params = UpliftParams(dim=4, epochs=3, batch_users=8)
    first = fit_uplift(treatment, outcome, propensity, params, seed=3).scores()
    assert np.array_equal(first, fit_uplift(treatment, outcome, propensity, params, seed=3).scores())
    assert not np.array_equal(first, fit_uplift(treatment, outcome, propensity, params, seed=4).scores())
    assert np.array_equal(
        fit_accuracy(outcome, params, seed=3).scores(), fit_accuracy(outcome, params, seed=3).scores()
    )


def test_ips_labels_weigh_by_inverse_capped_propensity() -> None:
    treatment = np.array([[1, 1, 0, 0, 1, 0]])
    outcome = np.array([[1, 0, 1, 0, 1, 1]])
    propensity = np.array([[0.5, 0.5, 0.5, 0.5, 0.01, 0.99]])
    # Z=1,Y=1: 1/e = 2; Y=0 contributes 0; Z=0,Y=1: -1/(1-e) = -2; e=0.01 capped to 0.05: 1/0.05 = 20;
    # e=0.99 capped to 0.95: -1/0.05 = -20.
    labels = ips_effect_labels(treatment, outcome, propensity, cap=0.05)
    np.testing.assert_allclose(labels, [[2.0, 0.0, -2.0, 0.0, 20.0, -20.0]])


# Two users, four items. User 0 ranks items 0, 2, 3, 1 (tau 1, 0, 1, 0). User 1 has items 1 and 2
# tied at 0.8: the lower index comes first, so it ranks items 1, 2, 3, 0 (tau 1, 0, 0, 0); broken the
# other way its top 1 would hold no effect.
SCORES = np.array([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.8, 0.4]])
TAU = np.array([[1, 0, 0, 1], [0, 1, 0, 0]])


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, (1 + 1) / 2),  # both top items have an effect (user 1's only through the tie order)
        (2, (1 / 2 + 1 / 2) / 2),
        (3, (2 / 3 + 1 / 3) / 2),
        (4, (2 / 4 + 1 / 4) / 2),
    ],
)
def test_causal_precision_by_hand(k: int, expected: float) -> None:
    assert causal_precision_at_k(SCORES, TAU, k) == pytest.approx(expected)


def test_cdcg_by_hand() -> None:
    # Discounts 1/log2(1 + rank): 1, 0.6309, 0.5, 0.4307. User 0: 1 + 0.5; user 1: 1.
    assert cdcg(SCORES, TAU) == pytest.approx((1.5 + 1.0) / 2)
    assert cdcg(SCORES, TAU, k=2) == pytest.approx((1.0 + 1.0) / 2)
    assert cdcg(SCORES, TAU, k=4) == pytest.approx(cdcg(SCORES, TAU))


def test_all_tied_scores_rank_in_item_order() -> None:
    flat, tau = np.zeros((1, 4)), np.array([[0, 0, 1, 1]])
    assert causal_precision_at_k(flat, tau, 2) == 0.0
    assert cdcg(flat, tau) == pytest.approx(1 / math.log2(4) + 1 / math.log2(5))


@pytest.mark.parametrize("k", [0, 5])
def test_k_outside_the_catalogue_raises(k: int) -> None:
    with pytest.raises(ValueError, match="k="):
        causal_precision_at_k(SCORES, TAU, k)
    with pytest.raises(ValueError, match="k="):
        cdcg(SCORES, TAU, k)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="same 2-d shape"):
        causal_precision_at_k(SCORES, TAU[:, :3], 1)


def test_metrics_match_a_per_user_loop_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(causal_metrics, "_CHUNK_CELLS", 20)  # two users per chunk
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 3, (7, 9)).astype(float)  # many ties
    tau = rng.integers(0, 2, (7, 9))
    for k in (1, 4, 9):
        top = [sorted(range(9), key=lambda i, u=u: (-scores[u, i], i))[:k] for u in range(7)]
        precision = np.mean([tau[u, items].sum() / k for u, items in enumerate(top)])
        gain = np.mean([sum(tau[u, i] / math.log2(2 + r) for r, i in enumerate(items)) for u, items in enumerate(top)])
        assert causal_precision_at_k(scores, tau, k) == pytest.approx(precision)
        assert cdcg(scores, tau, k) == pytest.approx(gain)
