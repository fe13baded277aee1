"""Logged bandit feedback as tidy tables and as the arrays estimators and reward models use.

A tidy log has one row per round: round, timestamp, item_id (0-based action), position (1-based
slot), click, propensity_score, user_feature_* (categorical) and affinity_<item> (user-item).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.data.reader import read_delimited
from recause.data.schemas import SCHEMAS, coerce

OBD_AFFINITY_PREFIX = "user-item_affinity_"


def obd_log(data: bytes, name: str) -> pd.DataFrame:
    """An Open Bandit Dataset log (CSV) as a tidy, typed frame."""
    raw = read_delimited(data, name, SCHEMAS["bandit"].names, sep=",")
    raw = raw.drop(columns=[c for c in raw.columns if c == "" or c.startswith("Unnamed")])
    raw = raw.rename(
        columns=lambda c: "affinity_" + c.removeprefix(OBD_AFFINITY_PREFIX) if c.startswith(OBD_AFFINITY_PREFIX) else c
    )
    frame = coerce(raw, SCHEMAS["bandit"]).reset_index(drop=True)
    frame["item_id"] = pd.to_numeric(frame["item_id"], errors="coerce").astype("Int64")
    for column in [c for c in frame.columns if c.startswith("affinity_")]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float32")
    frame.insert(0, "round", np.arange(len(frame), dtype=np.int64))
    return frame


def obd_item_context(data: bytes, name: str) -> pd.DataFrame:
    """Item features of an OBD campaign: item_id, item_feature_0 (numeric), item_feature_1.. (categorical)."""
    raw = read_delimited(data, name, ("item_id", "item_feature_0"), sep=",")
    raw = raw.drop(columns=[c for c in raw.columns if c == "" or c.startswith("Unnamed")])
    raw["item_id"] = pd.to_numeric(raw["item_id"]).astype(np.int64)
    raw["item_feature_0"] = pd.to_numeric(raw["item_feature_0"]).astype("float64")
    return raw.sort_values("item_id").reset_index(drop=True)


@dataclass(frozen=True)
class BanditArrays:
    """A log in array form. Positions are 0-based here."""

    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    context: np.ndarray  # (n, d_user) one-hot user features
    action_context: np.ndarray  # (n_actions, d_item)
    affinity: np.ndarray  # (n, n_actions) user-item affinity, zeros if the log has none
    n_actions: int
    len_list: int

    def subset(self, rows: np.ndarray) -> BanditArrays:
        per_round = ("action", "position", "reward", "pscore", "context", "affinity")
        return BanditArrays(
            **{f: getattr(self, f)[rows] for f in per_round},
            action_context=self.action_context,
            n_actions=self.n_actions,
            len_list=self.len_list,
        )


def item_features(items: pd.DataFrame) -> np.ndarray:
    """Numeric item_feature_0 (standardised) next to one-hot codes of the categorical features."""
    numeric = items[["item_feature_0"]].to_numpy(dtype=float)
    numeric = (numeric - numeric.mean()) / (numeric.std() or 1.0)
    categorical = pd.get_dummies(items.drop(columns=["item_id", "item_feature_0"]).astype(str), drop_first=True)
    return np.hstack([numeric, categorical.to_numpy(dtype=float)])


def to_arrays(
    log: pd.DataFrame, items: pd.DataFrame, user_categories: dict[str, list[str]] | None = None
) -> BanditArrays:
    """Arrays for a tidy log; ``user_categories`` fixes the one-hot layout across logs."""
    n_actions = len(items)
    user_columns = sorted(c for c in log.columns if c.startswith("user_feature_"))
    categories = user_categories or {c: sorted(log[c].astype(str).unique()) for c in user_columns}
    context = (
        np.hstack(
            [
                (log[c].astype(str).to_numpy()[:, None] == np.asarray(categories[c])[None, :]).astype(float)
                for c in user_columns
            ]
        )
        if user_columns
        else np.zeros((len(log), 0))
    )
    affinity_columns = [f"affinity_{a}" for a in range(n_actions)]
    affinity = (
        log[affinity_columns].to_numpy(dtype=float)
        if all(c in log for c in affinity_columns)
        else np.zeros((len(log), n_actions))
    )
    return BanditArrays(
        action=log["item_id"].to_numpy(dtype=np.int64),
        position=log["position"].to_numpy(dtype=np.int64) - 1,
        reward=log["click"].to_numpy(dtype=float),
        pscore=log["propensity_score"].to_numpy(dtype=float),
        context=context,
        action_context=item_features(items),
        affinity=affinity,
        n_actions=n_actions,
        len_list=int(log["position"].max()),
    )


def user_categories(logs: list[pd.DataFrame]) -> dict[str, list[str]]:
    """The union of user-feature values over logs, so both logs share one feature layout."""
    columns = sorted({c for log in logs for c in log.columns if c.startswith("user_feature_")})
    return {c: sorted(set().union(*(set(log[c].astype(str)) for log in logs if c in log))) for c in columns}
