"""Off-policy estimators of a policy's value from logged bandit feedback, one implementation each.

Notation, per logged round i: action a_i shown at position k_i with reward r_i and logging
propensity p_i; the evaluation policy's probabilities pi(a | x_i, k_i) (``action_dist``, one row per
round, over all actions, at the round's own position); the reward model's q(x_i, a, k_i)
(``q_hat``); importance weight w_i = pi(a_i | x_i, k_i) / p_i, optionally clipped at ``clip``.

Each estimator returns per-round "round rewards" whose mean is the estimate (as obp defines them),
so the standard error and the bootstrap interval are computed the same way for all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoggedRounds:
    """What every estimator sees: logged feedback plus the evaluation policy at each round's position."""

    action: np.ndarray  # (n,) int
    reward: np.ndarray  # (n,) float in {0, 1}
    pscore: np.ndarray  # (n,) logging propensity of the logged action at its position
    action_dist: np.ndarray  # (n, n_actions) evaluation policy at the round's position
    q_hat: np.ndarray | None = None  # (n, n_actions) reward model at the round's position

    def __post_init__(self) -> None:
        n = len(self.action)
        if not (len(self.reward) == len(self.pscore) == self.action_dist.shape[0] == n):
            raise ValueError("action, reward, pscore and action_dist must have one entry per round")
        if (self.pscore <= 0).any() or (self.pscore > 1).any():
            raise ValueError("propensities must lie in (0, 1]")
        if self.q_hat is not None and self.q_hat.shape != self.action_dist.shape:
            raise ValueError("q_hat must have the shape of action_dist")

    @property
    def target_propensity(self) -> np.ndarray:
        return self.action_dist[np.arange(len(self.action)), self.action]


@dataclass(frozen=True)
class Estimate:
    value: float
    standard_error: float
    interval: tuple[float, float]


def importance_weights(rounds: LoggedRounds, clip: float | None = None) -> np.ndarray:
    """w_i = pi(a_i | x_i, k_i) / p_i, clipped from above at ``clip`` when given."""
    weights = rounds.target_propensity / rounds.pscore
    return np.minimum(weights, clip) if clip is not None else weights


def _needs_model(rounds: LoggedRounds, name: str) -> np.ndarray:
    if rounds.q_hat is None:
        raise ValueError(f"{name} needs reward-model predictions (q_hat)")
    return rounds.q_hat


def _direct(rounds: LoggedRounds) -> np.ndarray:
    return (rounds.action_dist * _needs_model(rounds, "the direct method")).sum(axis=1)


def _factual_q(rounds: LoggedRounds) -> np.ndarray:
    return _needs_model(rounds, "a doubly robust estimator")[np.arange(len(rounds.action)), rounds.action]


def replay(rounds: LoggedRounds, **_: float | None) -> np.ndarray:
    """Replay (Li et al., 2011), for uniformly random logs: keep the rounds where the logged action is
    the one the policy would take. For a stochastic policy, in expectation over its draw:
    V = sum_i pi(a_i|x_i) r_i / sum_i pi(a_i|x_i). Ignores p_i, so it is biased on non-uniform logs."""
    match = rounds.target_propensity
    return match * rounds.reward / match.mean() if match.mean() > 0 else np.zeros_like(match)


def ipw(rounds: LoggedRounds, clip: float | None = None, **_: float | None) -> np.ndarray:
    """Inverse propensity weighting: V = 1/n sum_i w_i r_i."""
    return importance_weights(rounds, clip) * rounds.reward


def snipw(rounds: LoggedRounds, clip: float | None = None, **_: float | None) -> np.ndarray:
    """Self-normalised IPW: V = sum_i w_i r_i / sum_i w_i."""
    weights = importance_weights(rounds, clip)
    return weights * rounds.reward / weights.mean()


def dm(rounds: LoggedRounds, **_: float | None) -> np.ndarray:
    """Direct method: V = 1/n sum_i sum_a pi(a|x_i, k_i) q(x_i, a, k_i)."""
    return _direct(rounds)


def dr(rounds: LoggedRounds, clip: float | None = None, **_: float | None) -> np.ndarray:
    """Doubly robust: V = DM + 1/n sum_i w_i (r_i - q(x_i, a_i, k_i))."""
    return _direct(rounds) + importance_weights(rounds, clip) * (rounds.reward - _factual_q(rounds))


def sndr(rounds: LoggedRounds, clip: float | None = None, **_: float | None) -> np.ndarray:
    """Self-normalised DR: V = DM + sum_i w_i (r_i - q_i) / sum_i w_i."""
    weights = importance_weights(rounds, clip)
    return _direct(rounds) + weights * (rounds.reward - _factual_q(rounds)) / weights.mean()


def switch_dr(
    rounds: LoggedRounds, clip: float | None = None, switch_tau: float | None = None, **_: float | None
) -> np.ndarray:
    """Switch-DR (Wang et al., 2017): the DR correction only where w_i <= tau, the DM elsewhere:
    V = DM + 1/n sum_i 1[w_i <= tau] w_i (r_i - q_i)."""
    weights = importance_weights(rounds, clip)
    keep = weights <= (np.inf if switch_tau is None else switch_tau)
    return _direct(rounds) + keep * weights * (rounds.reward - _factual_q(rounds))


def dr_os(
    rounds: LoggedRounds, clip: float | None = None, dr_os_lambda: float | None = None, **_: float | None
) -> np.ndarray:
    """DR with optimistic shrinkage (Su et al., 2020): weights shrunk to w' = lambda w / (w^2 + lambda):
    V = DM + 1/n sum_i w'_i (r_i - q_i). lambda -> inf gives DR, lambda = 0 the DM."""
    weights = importance_weights(rounds, clip)
    lam = np.inf if dr_os_lambda is None else dr_os_lambda
    shrunk = weights if np.isinf(lam) else lam * weights / (weights**2 + lam)
    return _direct(rounds) + shrunk * (rounds.reward - _factual_q(rounds))


ESTIMATORS: dict[str, Callable[..., np.ndarray]] = {
    "replay": replay,
    "ipw": ipw,
    "snipw": snipw,
    "dm": dm,
    "dr": dr,
    "sndr": sndr,
    "switch_dr": switch_dr,
    "dr_os": dr_os,
}


def estimate(
    name: str,
    rounds: LoggedRounds,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    **hyper: float | None,
) -> Estimate:
    """Value, standard error (of the round-reward mean) and a percentile bootstrap interval."""
    values = ESTIMATORS[name](rounds, **hyper)
    n = len(values)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(n_bootstrap, n))].mean(axis=1) if n_bootstrap else np.array([values.mean()])
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Estimate(
        float(values.mean()), float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0, (float(low), float(high))
    )
