"""Planted causal truth on real interaction structure (after Sato et al., RecSys 2020).

Real data never reveals what a recommendation *did*: we see the outcome under the treatment the
logging policy chose, never under the other one. So, as Sato et al. do on MovieLens, we keep the
real users and items and plant the rest:

1. A low-rank preference model fitted to the real interactions gives each (user, item) a
   preference ``z``, normalised to a standard normal by rank.
2. Potential outcomes. Without a recommendation the user consumes the item with probability
   ``p0 = sigmoid(base + w * z [+ s * u])``. With one, the logit is lifted by
   ``effect * exp(-(z - peak)^2 / (2 width^2))``, so ``p1 >= p0``. The lift is largest for items the
   user likes moderately: the ones they love they consume anyway, which is why ranking by
   predicted consumption is not ranking by effect. ``Y0`` and ``Y1`` share one uniform draw, so
   ``tau = Y1 - Y0`` is 0 or 1 and the expected effect is ``p1 - p0``.
3. The logging policy recommends with propensity ``e = sigmoid(a + b * z [+ s * u])``, kept within
   ``[floor, 1 - floor]`` (it explores): it favours liked items, which confounds the naive
   comparison of recommended and not recommended items.
4. Options: ``confounder_on_treatment`` / ``confounder_on_outcome`` plant ``u ~ N(0, 1)`` in the
   propensity and the outcome (``hide_confounder`` keeps it from the estimator); ``zero_effect``
   makes ``p1 = p0``.

Everything is a deterministic function of the interactions and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recause.config.causal import SemiSyntheticParams


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class PlantedWorld:
    """Dense (n_users, n_items) arrays of the planted world; ``ate`` is the mean of ``p1 - p0``."""

    preference: np.ndarray  # z: standardised predicted preference (the observed confounder)
    confounder: np.ndarray  # u (zeros when none is planted)
    propensity: np.ndarray  # e = P(recommended)
    p0: np.ndarray
    p1: np.ndarray
    treatment: np.ndarray  # Z in {0, 1}
    y0: np.ndarray  # potential outcomes in {0, 1}
    y1: np.ndarray
    confounder_observed: bool

    @property
    def outcome(self) -> np.ndarray:
        return np.where(self.treatment == 1, self.y1, self.y0)

    @property
    def effect(self) -> np.ndarray:
        """Expected individual effect p1 - p0 of recommending item i to user u."""
        return self.p1 - self.p0

    @property
    def realised_effect(self) -> np.ndarray:
        """tau = Y1 - Y0, in {0, 1}: did this recommendation cause the consumption?"""
        return self.y1 - self.y0

    @property
    def ate(self) -> float:
        return float(self.effect.mean())

    def table(self, rows: int, seed: int) -> tuple[pd.DataFrame, float]:
        """A seeded sample of (user, item) rows for an estimator, and the true ATE of that sample.

        Columns: ``preference`` (and ``confounder`` when it is observed), ``recommended``, ``consumed``.
        """
        rng = np.random.default_rng(seed)
        flat = rng.choice(self.preference.size, size=min(rows, self.preference.size), replace=False)
        frame = pd.DataFrame(
            {
                "preference": self.preference.ravel()[flat],
                "recommended": self.treatment.ravel()[flat].astype(bool),
                "consumed": self.outcome.ravel()[flat].astype(float),
            }
        )
        if self.confounder_observed:
            frame.insert(1, "confounder", self.confounder.ravel()[flat])
        return frame, float(self.effect.ravel()[flat].mean())


def interaction_grid(events: pd.DataFrame) -> sp.csr_matrix:
    """Binary users x items matrix whose rows are ordered by behaviour, never by user id.

    The planted world draws its randomness cell by cell, so row order decides who gets which draw.
    User ids are keyed pseudonyms that differ between workspaces; ordering users by what they did
    (first and last event time, number of events, then their items) gives every workspace the
    same world from the same data and seed. Items keep their (public) id order.
    """
    from recause.data.matrix import IdIndex, interaction_matrix

    users, items = IdIndex.first_seen(events["user_id"]), IdIndex.from_values(events["item_id"])
    matrix = interaction_matrix(events, users, items)
    rows = users.positions(events["user_id"].to_numpy())
    times = events["timestamp"].to_numpy()
    first = np.full(len(users), np.iinfo(np.int64).max)
    last = np.full(len(users), np.iinfo(np.int64).min)
    np.minimum.at(first, rows, times)
    np.maximum.at(last, rows, times)
    counts = np.diff(matrix.indptr)
    item_signature = matrix @ np.arange(1, len(items) + 1, dtype=np.float64)  # ties beyond this are identical users
    return matrix[np.lexsort((item_signature, counts, last, first))]


def preference_scores(interactions: sp.csr_matrix, rank: int, seed: int) -> np.ndarray:
    """Scores of a rank-``rank`` truncated SVD of the binary users x items matrix, mapped through
    their ranks onto a standard normal (SVD scores are heavy-tailed; propensities must not be 0 or 1)."""
    from scipy.stats import norm, rankdata
    from sklearn.utils.extmath import randomized_svd

    left, singular, right = randomized_svd(interactions.astype(np.float64), rank, random_state=seed)
    scores = (left * singular) @ right
    quantiles = (rankdata(scores, method="ordinal").reshape(scores.shape) - 0.5) / scores.size
    return norm.ppf(quantiles)


def plant(interactions: sp.csr_matrix, params: SemiSyntheticParams, seed: int) -> PlantedWorld:
    """The planted world on the users and items of ``interactions`` (binary users x items)."""
    rng = np.random.default_rng(seed)
    z = preference_scores(interactions, params.rank, seed)
    planted = params.confounder_on_treatment != 0 or params.confounder_on_outcome != 0
    u = rng.standard_normal(z.shape) if planted else np.zeros_like(z)
    natural = params.base_logit + params.preference_weight * z + params.confounder_on_outcome * u
    lift = params.effect_logit * np.exp(-((z - params.effect_peak) ** 2) / (2 * params.effect_width**2))
    p0 = _sigmoid(natural)
    p1 = p0 if params.zero_effect else _sigmoid(natural + lift)
    policy = _sigmoid(params.propensity_logit + params.propensity_weight * z + params.confounder_on_treatment * u)
    propensity = np.clip(policy, params.propensity_floor, 1.0 - params.propensity_floor)
    treatment = (rng.random(z.shape) < propensity).astype(np.int8)
    shared = rng.random(z.shape)  # one draw for both potential outcomes: Y1 >= Y0 always
    return PlantedWorld(
        preference=z,
        confounder=u,
        propensity=propensity,
        p0=p0,
        p1=p1,
        treatment=treatment,
        y0=(shared < p0).astype(np.int8),
        y1=(shared < p1).astype(np.int8),
        confounder_observed=planted and not params.hide_confounder,
    )
