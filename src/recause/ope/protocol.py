"""Evaluating the estimators themselves: estimate one logged policy's value from the other's log.

For each bootstrap run, resample the logged rounds, refit the reward model (cross-fitted), estimate
the evaluation policy's value with every estimator, and compare with the ground truth (the on-policy
mean click rate of the evaluation policy's own log): relative error |V_hat - V| / V.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from recause.ope.estimators import ESTIMATORS, LoggedRounds, estimate
from recause.ope.logs import BanditArrays
from recause.ope.reward_model import fit_predict_rewards

PolicyFn = Callable[[BanditArrays], np.ndarray]  # arrays -> (n_rounds, n_actions) at each round's position


@dataclass(frozen=True)
class EstimatorSettings:
    estimators: tuple[str, ...]
    n_folds: int = 3
    clip: float | None = None
    switch_tau: float | None = None
    dr_os_lambda: float | None = None
    n_bootstrap: int = 200

    def hyper(self) -> dict[str, float | None]:
        return {"clip": self.clip, "switch_tau": self.switch_tau, "dr_os_lambda": self.dr_os_lambda}


def rounds_for(arrays: BanditArrays, policy: PolicyFn, settings: EstimatorSettings, seed: int) -> LoggedRounds:
    q_hat = fit_predict_rewards(arrays, settings.n_folds, seed=seed)
    return LoggedRounds(arrays.action, arrays.reward, arrays.pscore, policy(arrays), q_hat)


def estimate_all(arrays: BanditArrays, policy: PolicyFn, settings: EstimatorSettings, seed: int) -> dict[str, dict]:
    """Every estimator's value, standard error and bootstrap interval on the full log."""
    rounds = rounds_for(arrays, policy, settings, seed)
    results = {}
    for name in settings.estimators:
        found = estimate(name, rounds, n_bootstrap=settings.n_bootstrap, seed=seed, **settings.hyper())
        results[name] = {"estimate": found.value, "standard_error": found.standard_error, "ci": list(found.interval)}
    return results


def relative_errors(
    arrays: BanditArrays,
    policy: PolicyFn,
    ground_truth: float,
    settings: EstimatorSettings,
    n_runs: int,
    seed: int,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> dict[str, dict[str, float | list[float]]]:
    """Mean and std over bootstrap runs of every estimator's relative error, plus its full-log estimate."""
    if ground_truth <= 0:
        raise ValueError("the ground truth must be positive to compute relative errors")
    errors: dict[str, list[float]] = {name: [] for name in settings.estimators}
    n = len(arrays.action)
    for run in progress(range(n_runs)):
        sample = arrays.subset(np.random.default_rng(seed + run).integers(0, n, size=n))
        rounds = rounds_for(sample, policy, settings, seed + run)
        for name in settings.estimators:
            value = float(ESTIMATORS[name](rounds, **settings.hyper()).mean())
            errors[name].append(abs(value - ground_truth) / ground_truth)
    full = estimate_all(arrays, policy, settings, seed)
    return {
        name: {
            "relative_ee_mean": float(np.mean(errors[name])),
            "relative_ee_std": float(np.std(errors[name])),
            "estimate": full[name]["estimate"],
            "ci": full[name]["ci"],
            "ground_truth": ground_truth,
        }
        for name in settings.estimators
    }
