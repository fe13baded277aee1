"""Evaluation policies as action distributions pi(a | x, k): per position, over all actions."""

from __future__ import annotations

from typing import Any

import numpy as np

from recause.ope.logs import BanditArrays
from recause.ope.reward_model import BaseModel, default_base_model, features


def uniform_policy(n_actions: int, len_list: int) -> np.ndarray:
    """(n_actions, len_list): every action with probability 1/n_actions at every position."""
    return np.full((n_actions, len_list), 1.0 / n_actions)


def bernoulli_ts_policy(
    alpha: np.ndarray, beta: np.ndarray, len_list: int, n_simulations: int, seed: int
) -> np.ndarray:
    """Bernoulli Thompson sampling with a fixed Beta(alpha, beta) posterior, by simulation: draw a
    click rate per action, show the top len_list in order; (n_actions, len_list) frequencies."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(alpha), len_list))
    for start in range(0, n_simulations, 10_000):
        size = min(10_000, n_simulations - start)
        draws = rng.beta(alpha, beta, size=(size, len(alpha)))
        top = np.argsort(-draws, axis=1)[:, :len_list]
        for k in range(len_list):
            counts[:, k] += np.bincount(top[:, k], minlength=len(alpha))
    return counts / n_simulations


def bts_prior(prior: dict[str, Any], campaign: str, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, beta) of ZOZOTOWN's BTS prior for a campaign (obp/policy/conf/prior_bts.yaml)."""
    if campaign not in prior:
        raise KeyError(f"no BTS prior for campaign '{campaign}'; have {', '.join(prior)}")
    alpha, beta = (np.asarray(prior[campaign][key], dtype=float) for key in ("alpha", "beta"))
    if len(alpha) != n_actions or len(beta) != n_actions:
        raise ValueError(f"BTS prior for '{campaign}' has {len(alpha)} actions, the log {n_actions}")
    return alpha, beta


def per_round(policy: np.ndarray, position: np.ndarray) -> np.ndarray:
    """A context-free (n_actions, len_list) policy as (n_rounds, n_actions) at each round's position."""
    return policy[:, position].T


class GreedyClickPolicy:
    """recause's own policy: rank items for a user by a click model fitted on logged data with
    importance weights 1/p (so a non-uniform log does not bias it); show the top len_list, best first."""

    def __init__(self, base_model: BaseModel = default_base_model) -> None:
        self.base_model = base_model
        self.model: object | None = None

    def fit(self, arrays: BanditArrays) -> GreedyClickPolicy:
        rows = np.arange(len(arrays.action))
        weights = 1.0 / arrays.pscore
        self.model = self.base_model().fit(  # type: ignore[attr-defined]
            features(arrays, rows, arrays.action), arrays.reward, sample_weight=weights / weights.mean()
        )
        return self

    def action_dist(self, arrays: BanditArrays) -> np.ndarray:
        """(n_rounds, n_actions): probability 1 on the item the policy ranks at each round's position."""
        if self.model is None:
            raise RuntimeError("fit the policy first")
        n, n_actions = len(arrays.action), arrays.n_actions
        grid_rows, grid_actions = np.repeat(np.arange(n), n_actions), np.tile(np.arange(n_actions), n)
        scores = self.model.predict_proba(features(arrays, grid_rows, grid_actions))[:, 1].reshape(n, n_actions)  # type: ignore[attr-defined]
        ranked = np.argsort(-scores, axis=1, kind="stable")
        dist = np.zeros((n, n_actions))
        dist[np.arange(n), ranked[np.arange(n), arrays.position]] = 1.0
        return dist
