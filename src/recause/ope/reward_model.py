"""Click models q(x, a, k) for the direct method and doubly robust estimators.

One classifier per position (as obp's RegressionModel), fitted with K-fold cross-fitting: each
round's predictions come from a model that did not see it. Features of (round i, action a):
user features of i, item features of a, and the user-item affinity of (i, a). The base model is
pluggable (anything with fit / predict_proba); the default is logistic regression.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from recause.ope.logs import BanditArrays

BaseModel = Callable[[], object]


def default_base_model() -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=1000)


def features(arrays: BanditArrays, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Feature rows for (round, action) pairs."""
    return np.hstack([arrays.context[rows], arrays.action_context[actions], arrays.affinity[rows, actions][:, None]])


def _fit(model: object, x: np.ndarray, y: np.ndarray) -> object | float:
    if len(np.unique(y)) < 2:  # a fold with no clicks (or only clicks): a constant model
        return float(y.mean()) if len(y) else 0.0
    return clone(model).fit(x, y)  # type: ignore[attr-defined]


def _predict(model: object | float, x: np.ndarray) -> np.ndarray:
    if isinstance(model, float):
        return np.full(len(x), model)
    return model.predict_proba(x)[:, 1]  # type: ignore[attr-defined]


def _predict_every_action(model: object | float, arrays: BanditArrays, rows: np.ndarray) -> np.ndarray:
    """q(x_i, a) for every round of ``rows`` and every action: (len(rows), n_actions).

    A binary logistic regression is linear in the three feature blocks, so its logit is
    ``context_i w_c + action_a w_a + affinity_ia w_f + b`` and the (rounds x actions) grid of feature rows
    never has to be built (on the Open Bandit sample that grid is 800k rows, seconds per fit). Any other
    base model is given the grid.
    """
    n_actions = arrays.n_actions
    if isinstance(model, LogisticRegression) and model.coef_.shape[0] == 1:
        weights = model.coef_[0]
        n_context = arrays.context.shape[1]
        logit = (arrays.context[rows] @ weights[:n_context])[:, None]
        logit = logit + (arrays.action_context @ weights[n_context:-1])[None, :]
        logit = logit + arrays.affinity[rows] * weights[-1] + model.intercept_[0]
        return 1.0 / (1.0 + np.exp(-logit))
    grid_rows = np.repeat(rows, n_actions)
    grid_actions = np.tile(np.arange(n_actions), len(rows))
    return _predict(model, features(arrays, grid_rows, grid_actions)).reshape(len(rows), n_actions)


def fit_predict_rewards(
    arrays: BanditArrays, n_folds: int = 3, seed: int = 0, base_model: BaseModel = default_base_model
) -> np.ndarray:
    """Cross-fitted q(x_i, a, k_i) for every round i and action a at the round's own position: (n, n_actions)."""
    n, n_actions = len(arrays.action), arrays.n_actions
    q_hat = np.zeros((n, n_actions))
    folds = (
        KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.arange(n))
        if n_folds > 1
        else [(np.arange(n), np.arange(n))]
    )
    for train, test in folds:
        for k in range(arrays.len_list):
            fit_rows = train[arrays.position[train] == k]
            model = _fit(base_model(), features(arrays, fit_rows, arrays.action[fit_rows]), arrays.reward[fit_rows])
            rows = test[arrays.position[test] == k]
            if len(rows) == 0:
                continue
            q_hat[rows] = _predict_every_action(model, arrays, rows)
    return q_hat
