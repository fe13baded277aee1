"""Evaluating the estimators themselves: estimate one logged policy's value from the other's log.

For each bootstrap run, resample the logged rounds, refit the reward model (cross-fitted), estimate
the evaluation policy's value with every estimator, and compare with the ground truth (the on-policy
mean click rate of the evaluation policy's own log): relative error |V_hat - V| / V.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from recause.ope.estimators import ESTIMATORS, LoggedRounds, estimate
from recause.ope.logs import BanditArrays
from recause.ope.policies import per_round
from recause.ope.reward_model import fit_predict_rewards
from recause.parallel import LocalRunner, Progress, Runner, no_progress

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


def _at_positions(policy: np.ndarray, arrays: BanditArrays) -> np.ndarray:
    return per_round(policy, arrays.position)


def context_free(policy: np.ndarray) -> PolicyFn:
    """A context-free (n_actions, len_list) policy as a PolicyFn that pickles (runs on Dask workers)."""
    return partial(_at_positions, policy)


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


def bootstrap_errors(
    run_seed: int, arrays: BanditArrays, policy: PolicyFn, ground_truth: float, settings: EstimatorSettings
) -> dict[str, float]:
    """One bootstrap run: every estimator's relative error on a resample of the log drawn from ``run_seed``."""
    n = len(arrays.action)
    sample = arrays.subset(np.random.default_rng(run_seed).integers(0, n, size=n))
    rounds = rounds_for(sample, policy, settings, run_seed)
    errors = {}
    for name in settings.estimators:
        value = float(ESTIMATORS[name](rounds, **settings.hyper()).mean())
        errors[name] = abs(value - ground_truth) / ground_truth
    return errors


def relative_errors(
    arrays: BanditArrays,
    policy: PolicyFn,
    ground_truth: float,
    settings: EstimatorSettings,
    n_runs: int,
    seed: int,
    progress: Progress = no_progress,
    runner: Runner | None = None,
) -> dict[str, dict[str, float | list[float]]]:
    """Mean and std over bootstrap runs of every estimator's relative error, plus its full-log estimate.

    Run ``r`` resamples with seed ``seed + r`` wherever ``runner`` executes it, so the numbers do not
    depend on the runner.
    """
    if ground_truth <= 0:
        raise ValueError("the ground truth must be positive to compute relative errors")
    runs = (runner or LocalRunner()).map(
        bootstrap_errors,
        [seed + run for run in range(n_runs)],
        progress,
        arrays=arrays,
        policy=policy,
        ground_truth=ground_truth,
        settings=settings,
    )
    errors = {name: [run[name] for run in runs] for name in settings.estimators}
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
