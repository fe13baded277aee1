"""Off-policy estimators on a simulated bandit whose policy value is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from recause.ope.estimators import ESTIMATORS, LoggedRounds, estimate, importance_weights

N_ACTIONS = 5


def simulate(seed: int, n: int = 4000, logging: str = "skewed", model_noise: float = 0.0):
    """Contextual bandit: click prob theta[x, a]; logging policy mu(a|x), evaluation policy pi(a|x)."""
    rng = np.random.default_rng(seed)
    contexts = rng.integers(0, 3, size=n)
    theta = np.array([[0.1, 0.3, 0.5, 0.2, 0.4], [0.6, 0.2, 0.1, 0.3, 0.2], [0.2, 0.2, 0.7, 0.1, 0.3]])
    mu = (
        np.full((3, N_ACTIONS), 1 / N_ACTIONS)
        if logging == "uniform"
        else np.array([[0.4, 0.3, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.3, 0.3], [0.3, 0.3, 0.1, 0.2, 0.1]])
    )
    pi = np.array([[0.1, 0.1, 0.6, 0.1, 0.1], [0.7, 0.1, 0.1, 0.05, 0.05], [0.05, 0.05, 0.8, 0.05, 0.05]])
    actions = (rng.random(n)[:, None] > np.cumsum(mu[contexts], axis=1)).sum(axis=1)
    rewards = (rng.random(n) < theta[contexts, actions]).astype(float)
    q_hat = np.clip(theta[contexts] + model_noise * rng.standard_normal((n, N_ACTIONS)), 0, 1)
    truth = float(np.mean([(pi[x] * theta[x]).sum() for x in range(3)]))  # contexts are uniform
    rounds = LoggedRounds(actions, rewards, mu[contexts, actions], pi[contexts], q_hat)
    return rounds, truth


@pytest.mark.parametrize("name", ["ipw", "snipw", "dm", "dr", "sndr", "switch_dr", "dr_os"])
def test_estimators_are_unbiased_when_their_assumptions_hold(name: str) -> None:
    """Mean over seeds within 2 standard errors of the true value (the reward model is exact here)."""
    values = np.array(
        [ESTIMATORS[name](simulate(seed)[0], switch_tau=1e9, dr_os_lambda=1e9).mean() for seed in range(40)]
    )
    truth = simulate(0)[1]
    assert abs(values.mean() - truth) <= 2 * values.std(ddof=1) / np.sqrt(len(values)) + 1e-12


def test_replay_is_unbiased_on_uniform_logs_only() -> None:
    uniform = np.array([ESTIMATORS["replay"](simulate(seed, logging="uniform")[0]).mean() for seed in range(40)])
    truth = simulate(0)[1]
    assert abs(uniform.mean() - truth) <= 2 * uniform.std(ddof=1) / np.sqrt(40)
    skewed = np.array([ESTIMATORS["replay"](simulate(seed)[0]).mean() for seed in range(40)])
    assert abs(skewed.mean() - truth) > 4 * skewed.std(ddof=1) / np.sqrt(40)  # it ignores the propensities


def test_dm_is_biased_by_a_wrong_model_and_dr_corrects_it() -> None:
    def biased(seed: int) -> LoggedRounds:
        rounds, _ = simulate(seed)
        return LoggedRounds(
            rounds.action, rounds.reward, rounds.pscore, rounds.action_dist, np.clip(rounds.q_hat + 0.15, 0, 1)
        )

    truth = simulate(0)[1]
    dm = np.array([ESTIMATORS["dm"](biased(s)).mean() for s in range(30)])
    dr = np.array([ESTIMATORS["dr"](biased(s)).mean() for s in range(30)])
    assert dm.mean() - truth > 0.1
    assert abs(dr.mean() - truth) <= 2 * dr.std(ddof=1) / np.sqrt(30)


def test_snipw_equals_ipw_when_weights_average_one() -> None:
    rounds, _ = simulate(1)
    weights = importance_weights(rounds)
    rescaled = LoggedRounds(
        rounds.action, rounds.reward, rounds.pscore * weights.mean(), rounds.action_dist, rounds.q_hat
    )
    assert importance_weights(rescaled).mean() == pytest.approx(1.0)
    assert ESTIMATORS["snipw"](rescaled).mean() == pytest.approx(ESTIMATORS["ipw"](rescaled).mean(), rel=1e-12)


def test_dr_reduces_to_dm_with_zero_weights_and_to_ipw_with_a_zero_model() -> None:
    rounds, _ = simulate(2)
    never_logged = rounds.action_dist.copy()
    never_logged[np.arange(len(rounds.action)), rounds.action] = 0.0  # pi never takes the logged action
    zero_weights = LoggedRounds(rounds.action, rounds.reward, rounds.pscore, never_logged, rounds.q_hat)
    assert (importance_weights(zero_weights) == 0).all()
    assert ESTIMATORS["dr"](zero_weights).mean() == pytest.approx(ESTIMATORS["dm"](zero_weights).mean(), rel=1e-12)
    zero_model = LoggedRounds(
        rounds.action, rounds.reward, rounds.pscore, rounds.action_dist, np.zeros_like(rounds.q_hat)
    )
    assert ESTIMATORS["dr"](zero_model).mean() == pytest.approx(ESTIMATORS["ipw"](zero_model).mean(), rel=1e-12)


def test_clipping_bounds_every_weight() -> None:
    rounds, _ = simulate(3)
    assert importance_weights(rounds).max() > 5
    clipped = importance_weights(rounds, clip=2.5)
    assert clipped.max() <= 2.5 and (clipped == np.minimum(importance_weights(rounds), 2.5)).all()
    assert ESTIMATORS["ipw"](rounds, clip=2.5).max() <= 2.5


def test_switch_and_shrinkage_limits() -> None:
    rounds, _ = simulate(4)
    dr, dm = ESTIMATORS["dr"](rounds).mean(), ESTIMATORS["dm"](rounds).mean()
    assert ESTIMATORS["switch_dr"](rounds, switch_tau=1e9).mean() == pytest.approx(dr)
    assert ESTIMATORS["switch_dr"](rounds, switch_tau=1e-9).mean() == pytest.approx(dm)
    assert ESTIMATORS["dr_os"](rounds, dr_os_lambda=0.0).mean() == pytest.approx(dm)
    assert ESTIMATORS["dr_os"](rounds, dr_os_lambda=1e12).mean() == pytest.approx(dr, rel=1e-6)


def test_estimate_reports_value_standard_error_and_an_interval_around_it() -> None:
    rounds, truth = simulate(5, n=20_000)
    found = estimate("dr", rounds, n_bootstrap=300, seed=1)
    low, high = found.interval
    assert low < found.value < high and low < truth < high
    assert found.standard_error == pytest.approx((high - low) / (2 * 1.96), rel=0.25)


def test_bad_inputs_are_rejected() -> None:
    rounds, _ = simulate(6, n=50)
    with pytest.raises(ValueError, match="propensities"):
        LoggedRounds(rounds.action, rounds.reward, np.zeros(50), rounds.action_dist)
    with pytest.raises(ValueError, match="needs reward-model predictions"):
        ESTIMATORS["dm"](LoggedRounds(rounds.action, rounds.reward, rounds.pscore, rounds.action_dist))
