"""Serving policies: the lists they show and the propensities they log, checked against draws of the policy."""

from __future__ import annotations

import numpy as np
import pytest

from recause.evaluation.ranking import top_k
from recause.online.policy import PolicySettings, choose, marginals

N_ITEMS, K = 40, 5


def _user(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=N_ITEMS).astype(np.float32)
    seen = np.zeros(N_ITEMS, dtype=bool)
    seen[rng.choice(N_ITEMS, 8, replace=False)] = True
    return scores, seen


def _empirical(settings: PolicySettings, scores: np.ndarray, seen: np.ndarray, draws: int) -> np.ndarray:
    counts = np.zeros((K, N_ITEMS))
    for draw in range(draws):
        shown = choose(scores, seen, K, settings, np.random.default_rng(1000 + draw))
        counts[np.arange(len(shown.items)), shown.items] += 1
    return counts / draws


def test_greedy_shows_the_top_k_with_propensity_one() -> None:
    scores, seen = _user()
    shown = choose(scores, seen, K, PolicySettings("greedy"), np.random.default_rng(0))
    assert shown.items.tolist() == top_k(scores[None, :], K, seen[None, :])[0].tolist()
    assert np.all(shown.propensities == 1.0) and np.allclose(shown.scores, scores[shown.items])


def test_epsilon_marginals_are_exact_and_match_the_lists_it_draws() -> None:
    scores, seen = _user(1)
    settings = PolicySettings("epsilon", epsilon=0.3, pool=12)
    expected = marginals(scores, seen, K, settings)
    greedy = top_k(scores[None, :], K, seen[None, :])[0]
    pool = top_k(scores[None, :], 12, seen[None, :])[0]
    assert np.allclose(expected.sum(axis=1), 1.0) and np.all(expected[:, seen] == 0)
    assert np.allclose(expected[np.arange(K), greedy], 0.7 + 0.3 / 12)
    assert np.count_nonzero(expected.sum(axis=0)) == 12 and set(np.flatnonzero(expected.sum(axis=0))) == set(pool)
    observed = _empirical(settings, scores, seen, 4000)
    assert np.abs(observed - expected).max() < 4 * np.sqrt(0.25 / 4000)  # within 4 standard errors everywhere


def test_softmax_propensities_estimate_the_plackett_luce_marginals() -> None:
    scores, seen = _user(2)
    settings = PolicySettings("softmax", temperature=0.5, pool=15, samples=20_000)
    estimated = marginals(scores, seen, K, settings, seed=7)
    assert np.allclose(estimated.sum(axis=1), 1.0) and np.all(estimated[:, seen] == 0)
    observed = _empirical(settings.__class__("softmax", temperature=0.5, pool=15, samples=64), scores, seen, 3000)
    assert np.abs(observed - estimated).max() < 4 * np.sqrt(0.25 / 3000) + 4 * np.sqrt(0.25 / 20_000)
    assert estimated[0].max() < 0.9  # it explores: the best item is not always first


@pytest.mark.parametrize("name", ["greedy", "epsilon", "softmax"])
def test_every_policy_keeps_k_unseen_distinct_items_with_propensities_in_0_1(name: str) -> None:
    scores, seen = _user(3)
    for seed in range(50):
        shown = choose(
            scores, seen, K, PolicySettings(name, epsilon=0.5, pool=10, samples=256), np.random.default_rng(seed)
        )
        assert len(shown.items) == K == len(set(shown.items.tolist())) and not seen[shown.items].any()
        assert np.all((shown.propensities > 0) & (shown.propensities <= 1))


def test_fewer_allowed_items_than_k_gives_a_shorter_list() -> None:
    scores, seen = _user(4)
    seen[:] = True
    seen[[3, 9]] = False
    shown = choose(scores, seen, K, PolicySettings("epsilon", pool=10), np.random.default_rng(0))
    assert sorted(shown.items.tolist()) == [3, 9]


def test_an_unknown_policy_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown serving policy 'boltzmann'"):
        PolicySettings("boltzmann")
