"""Causal debiasing of the joint recommender on simulated exposure, where the true preference is known.

True relevance comes from latent factors and does not depend on popularity (each user's top 20% of
items), but a relevant pair is only logged when exposed, with probability (popularity
quantile)^2, optionally times a per-user-group rate. Debiased training should rank the relevant
items that were never logged above what a naive model does; learned propensities should follow
the true exposure, including its user part that popularity cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from recause.models.joint import train_joint
from recause.models.joint.debias import imputation_factors
from recause.models.joint.propensity import positive_propensities
from tests.code.test_joint import params, ranking_quality

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Exposure:
    train: sp.csr_matrix  # the logged positives
    relevant: np.ndarray  # (users, items) bool: the true preference
    exposure: np.ndarray  # (users, items): the true probability that a pair is exposed
    user_group: np.ndarray  # bool per user: the group that is exposed five times less

    def logged_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return np.repeat(np.arange(self.train.shape[0]), np.diff(self.train.indptr)), self.train.indices


def biased_exposure(seed: int, user_effect: bool = False, n_users: int = 2000, n_items: int = 200) -> Exposure:
    rng = np.random.default_rng(seed)
    true_score = rng.normal(size=(n_users, 8)) @ rng.normal(size=(n_items, 8)).T
    relevant = true_score >= np.quantile(true_score, 0.8, axis=1, keepdims=True)
    item_exposure = ((1.0 + rng.permutation(n_items)) / n_items) ** 2.0  # popularity quantile^2: a long tail
    user_group = rng.random(n_users) < 0.5
    user_exposure = np.where(user_group, 0.2, 1.0) if user_effect else np.ones(n_users)
    exposure = user_exposure[:, None] * item_exposure[None, :]
    observed = relevant & (rng.random(relevant.shape) < exposure)
    return Exposure(sp.csr_matrix(observed.astype(np.float32)), relevant, exposure, user_group)


MODES = {
    "none": {},
    "ips": {"debias": "ips"},
    "snips": {"debias": "snips"},
    "pda": {"debias": "pda", "pda_gamma": 1.0},  # exposure is proportional to popularity here: PDA's exponent is 1
    "dr": {"debias": "dr"},
    "ips_learned": {"debias": "ips", "propensity_model": "learned"},
}


@pytest.fixture(scope="module")
def debiasing_results() -> dict[str, float]:
    """NDCG@10 against the true relevant items that were never logged, per debiasing mode."""
    data = biased_exposure(seed=0)
    truth = data.relevant & ~(data.train.toarray() > 0)
    results = {}
    for mode, extra in MODES.items():
        model = train_joint(data.train, params(batch_size=1024, epochs=10, **extra), progress=False)
        results[mode] = ranking_quality(model.score_users(np.arange(data.train.shape[0])), data.train, truth)[0]
    return results


@pytest.mark.parametrize("mode", [mode for mode in MODES if mode != "none"])
def test_debiasing_recovers_true_preference_better_than_naive(debiasing_results: dict[str, float], mode: str) -> None:
    assert debiasing_results[mode] > debiasing_results["none"] + 0.02, debiasing_results


def test_learned_propensities_are_clipped_and_follow_the_true_exposure() -> None:
    """Exposure here also depends on a user group that a side feature reveals: popularity cannot see it."""
    data = biased_exposure(seed=1, user_effect=True)
    users, items = data.logged_pairs()
    n_users, n_items = data.train.shape
    features = np.stack([data.user_group, ~data.user_group], axis=1).astype(np.float32)
    clip = 0.05
    learned = positive_propensities(users, items, n_users, n_items, "learned", 1.0, clip, 0, user_features=features)
    popularity = positive_propensities(users, items, n_users, n_items, "popularity", 1.0, clip, 0)
    assert learned.shape == (len(users),)
    assert learned.min() == pytest.approx(clip) and learned.max() == pytest.approx(1.0)  # clipping binds at both ends
    assert (1.0 / learned).max() <= 1.0 / clip * (1 + 1e-9)
    true = data.exposure[users, items]
    learned_corr, popularity_corr = spearmanr(learned, true)[0], spearmanr(popularity, true)[0]
    assert learned_corr > 0.85 and learned_corr > popularity_corr + 0.15, (learned_corr, popularity_corr)
    # the less exposed group's logged pairs get lower propensities (larger weights), as they should
    in_group = data.user_group[users]
    assert np.median(learned[in_group]) < 0.5 * np.median(learned[~in_group])


def test_learned_propensities_without_side_features_reduce_to_popularity() -> None:
    """With log popularity its only feature, the regression's odds are the item counts: popularity^eta again."""
    data = biased_exposure(seed=2)
    users, items = data.logged_pairs()
    n_users, n_items = data.train.shape
    for eta in (0.5, 1.0):
        learned = positive_propensities(users, items, n_users, n_items, "learned", eta, 0.05, 0)
        popularity = positive_propensities(users, items, n_users, n_items, "popularity", eta, 0.05, 0)
        np.testing.assert_allclose(learned, popularity, atol=0.05)


def test_dr_imputation_targets_relevance_not_exposure() -> None:
    """The SVD of the ips-weighted log estimates relevance; the SVD of the raw log mostly learns exposure."""
    data = biased_exposure(seed=0)
    users, items = data.logged_pairs()
    n_users, n_items = data.train.shape
    weights = 1.0 / np.clip(data.exposure[users, items], 0.05, 1.0)

    def imputed(pair_weights: np.ndarray) -> np.ndarray:
        a, c = imputation_factors(users, items, pair_weights, n_users, n_items, rank=16, seed=0)
        return np.clip(a @ c.T, 0.0, 1.0)

    debiased, raw = imputed(weights), imputed(np.ones_like(weights))
    item_exposure = data.exposure[0]
    assert spearmanr(debiased.mean(axis=0), item_exposure)[0] < spearmanr(raw.mean(axis=0), item_exposure)[0] - 0.3
    rate = data.relevant.mean()
    assert abs(debiased.mean() - rate) < 0.5 * abs(raw.mean() - rate)
    np.testing.assert_array_equal(debiased, imputed(weights))  # seeded: the same factors every time
