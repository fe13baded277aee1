"""Exposure propensities of the logged positives: from popularity, or learned from side features.

The learned model is a logistic regression of "this pair was logged" on the user's and the item's
side features and log(1 + item count), fitted on the logged pairs (label 1) against as many
uniformly drawn pairs (label 0); see ``debias.py`` for what it estimates and when. A drawn pair may
happen to be logged; at the sparsity of recommendation logs that contamination is negligible.

The fitted model is linear, so a pair's logit is a user part plus an item part: scoring every
logged pair is two gathers and an add, whatever the number of positives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recause.models.joint.debias import propensities

MAX_FIT_PAIRS = 50_000  # logged pairs the regression is fitted on (and as many drawn pairs): plenty for its few weights


@dataclass(frozen=True)
class ExposureModel:
    """A fitted linear exposure model: logit(u, i) = user_logit[u] + item_logit[i] (intercept included)."""

    user_logit: np.ndarray  # (n_users,) float64
    item_logit: np.ndarray  # (n_items,) float64
    top: float  # the largest logit over the logged pairs: that pair gets propensity 1
    eta: float
    clip: float

    def propensities(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Relative exposure of the pairs (users[k], items[k]) to the power eta, clipped to [clip, 1] (float64)."""
        logit = self.user_logit[users] + self.item_logit[items]
        return np.clip(np.exp(self.eta * np.minimum(logit - self.top, 0.0)), self.clip, 1.0)


def _features(side: np.ndarray | None, rows: int, extra: np.ndarray | None = None) -> np.ndarray:
    columns = [np.zeros((rows, 0))] if side is None else [np.asarray(side, dtype=np.float64)]
    if extra is not None:
        columns.append(extra[:, None])
    return np.hstack(columns)


def fit_exposure_model(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    eta: float,
    clip: float,
    seed: int,
    user_features: np.ndarray | None = None,
    item_features: np.ndarray | None = None,
) -> ExposureModel:
    """Fit the logistic exposure model on the logged pairs (``users[k]``, ``items[k]``)."""
    from sklearn.linear_model import LogisticRegression  # imported when needed: slow to import, rarely used

    if not 0.0 < clip <= 1.0:
        raise ValueError(f"clip must be in (0, 1], got {clip}")
    rng = np.random.default_rng([seed, 0x9E05])
    log_popularity = np.log1p(np.bincount(items, minlength=n_items).astype(np.float64))
    user_x = _features(user_features, n_users)
    item_x = _features(item_features, n_items, log_popularity)
    logged = rng.choice(len(users), min(len(users), MAX_FIT_PAIRS), replace=False)
    drawn_users, drawn_items = rng.integers(0, n_users, len(logged)), rng.integers(0, n_items, len(logged))
    x = np.vstack(
        [
            np.hstack([user_x[users[logged]], item_x[items[logged]]]),
            np.hstack([user_x[drawn_users], item_x[drawn_items]]),
        ]
    )
    y = np.repeat([1, 0], len(logged))
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # constant columns (e.g. all-zero features) carry no signal
    regression = LogisticRegression(C=1.0, max_iter=500).fit((x - mean) / scale, y)
    weights = regression.coef_[0] / scale  # back to the raw features: logit = x @ weights + intercept
    intercept = float(regression.intercept_[0] - mean @ weights)
    n_user_columns = user_x.shape[1]
    user_logit = user_x @ weights[:n_user_columns] + intercept
    item_logit = item_x @ weights[n_user_columns:]
    top = float((user_logit[users] + item_logit[items]).max())
    return ExposureModel(user_logit, item_logit, top, eta, clip)


def positive_propensities(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    model: str,
    eta: float,
    clip: float,
    seed: int,
    user_features: np.ndarray | None = None,
    item_features: np.ndarray | None = None,
) -> np.ndarray:
    """The exposure propensity of every logged positive, in [clip, 1] (float64), by ``model``."""
    if model == "popularity":
        return propensities(np.bincount(items, minlength=n_items), eta, clip)[items]
    fitted = fit_exposure_model(users, items, n_users, n_items, eta, clip, seed, user_features, item_features)
    return fitted.propensities(users, items)
