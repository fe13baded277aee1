"""What the served traffic says about a challenger: its off-policy value on the exposure log `recause api` wrote.

The champion served lists with known propensities (``recause.online.exposure``); clicks came back as events that
name the response. A challenger's greedy list for each logged user gives, position by position, the probability
that it would have shown each logged item there; an importance-weighted estimator (``recause.ope.estimators``)
turns the log into the challenger's expected click rate per shown slot, with a bootstrap interval. It is reported
beside the holdout verdict, which it does not change: under a greedy logging policy most of the challenger's items
were never shown (propensity 0), so only an exploring ``serving.policy`` makes the estimate informative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recause.data.matrix import IdIndex, known_interactions
from recause.layout import LAYOUT
from recause.models.base import Recommender
from recause.online.exposure import logged_rounds, read_clicks, read_exposure
from recause.online.policy import PolicySettings, marginals
from recause.ope.estimators import estimate


def off_policy_value(
    root: Path, model: Recommender, items: IdIndex, parts: dict[str, pd.DataFrame], estimator: str
) -> dict | None:
    """``estimator``'s value of ``model``'s greedy lists on the workspace's exposure log (None: no log, or no
    logged user and item the model knows). Users are scored on every interaction of ``parts``."""
    layout = LAYOUT.under(root)
    exposure = read_exposure(layout.exposure) if layout.exposure.exists() else pd.DataFrame()
    if exposure.empty:
        return None
    users, history = known_interactions(parts.values(), items)
    exposure = exposure[
        (users.positions(exposure["user_id"].astype(str)) >= 0)
        & (items.positions(exposure["item_id"].astype(str)) >= 0)
    ].reset_index(drop=True)
    if exposure.empty:
        return None
    k = int(exposure["position"].max())

    def greedy(user: str) -> np.ndarray:
        row = history[int(users.positions(np.asarray([user]))[0])]
        return marginals(np.asarray(model.score(row), dtype=np.float64)[0], row.toarray()[0] > 0, k, PolicySettings())

    clicks = read_clicks(layout.incoming) if layout.incoming.exists() else pd.DataFrame(columns=["round", "item_id"])
    rounds = logged_rounds(exposure, clicks, items.ids, greedy)
    found = estimate(estimator, rounds, n_bootstrap=200, seed=0)
    return {
        "estimator": estimator,
        "value": found.value,
        "interval": list(found.interval),
        "logged_click_rate": float(rounds.reward.mean()),
        "rounds": len(exposure),
    }
