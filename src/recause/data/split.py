"""Deterministic train/valid/test(/cold) splits.

Protocols:
- ``random``: RecBole's default (``RS: [0.8, 0.1, 0.1]``, ``group_by: user``, ``order: RO``):
  shuffle, then split each user's interactions with RecBole's count rule.
- ``temporal``: one global cut in time; everything in test happened no earlier than train.
- ``cold_item``: a seeded share of items is held out entirely into ``cold``; the rest is split
  like ``random``. Cold items never appear in train or valid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recause.config import SplitParams

Ratios = tuple[float, float, float]


def split_counts(total: int, ratios: Ratios) -> list[int]:
    """How many of ``total`` rows go to each part, exactly as RecBole's ``_calcu_split_ids``.

    Later parts get ``int(ratio * total)`` rows; a part whose share is below one row still gets
    one while the first part keeps more than one; the first part takes the rest.
    """
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def _label_by_position(position: np.ndarray, size: np.ndarray, ratios: Ratios) -> np.ndarray:
    """Part index (0 train, 1 valid, 2 test) of each row given its position within its group."""
    labels = np.empty(len(position), dtype=np.int8)
    for group_size in np.unique(size):
        bounds = np.cumsum(split_counts(int(group_size), ratios))
        rows = size == group_size
        labels[rows] = np.searchsorted(bounds, position[rows], side="right")
    return labels


def _per_user_random(interactions: pd.DataFrame, ratios: Ratios, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(interactions))
    shuffled_users = interactions["user_id"].to_numpy()[order]
    # A stable sort by user keeps the shuffled order inside each user's group.
    by_user = order[np.argsort(shuffled_users, kind="stable")]
    users_sorted = interactions["user_id"].to_numpy()[by_user]
    _, start, size = np.unique(users_sorted, return_index=True, return_counts=True)
    group_start = np.repeat(start, size)
    position = np.arange(len(by_user)) - group_start
    labels = np.empty(len(interactions), dtype=np.int8)
    labels[by_user] = _label_by_position(position, np.repeat(size, size), ratios)
    return labels


def _temporal(interactions: pd.DataFrame, ratios: Ratios) -> np.ndarray:
    order = np.lexsort(
        (
            interactions["item_id"].to_numpy(),
            interactions["user_id"].to_numpy(),
            interactions["timestamp"].to_numpy(),
        )
    )
    labels = np.empty(len(interactions), dtype=np.int8)
    labels[order] = _label_by_position(np.arange(len(order)), np.full(len(order), len(order)), ratios)
    return labels


def cold_items(item_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The seeded share of distinct items held out as cold (sorted)."""
    distinct = np.sort(np.unique(item_ids))
    n_cold = max(1, int(round(fraction * len(distinct))))
    return np.sort(np.random.default_rng(seed).choice(distinct, size=n_cold, replace=False))


def split_interactions(interactions: pd.DataFrame, params: SplitParams) -> dict[str, pd.DataFrame]:
    """Split interactions by ``params.protocol``; returns frames keyed by part name."""
    names = ("train", "valid", "test")
    if params.protocol == "temporal":
        labels = _temporal(interactions, params.ratios)
        return {name: interactions[labels == i].reset_index(drop=True) for i, name in enumerate(names)}

    parts: dict[str, pd.DataFrame] = {}
    warm = interactions
    if params.protocol == "cold_item":
        held_out = cold_items(interactions["item_id"].to_numpy(), params.cold_item_fraction, params.seed)
        is_cold = interactions["item_id"].isin(set(held_out)).to_numpy()
        parts["cold"] = interactions[is_cold].reset_index(drop=True)
        warm = interactions[~is_cold].reset_index(drop=True)
    labels = _per_user_random(warm, params.ratios, params.seed)
    for i, name in enumerate(names):
        parts[name] = warm[labels == i].reset_index(drop=True)
    return {name: parts[name] for name in ("train", "valid", "test", "cold") if name in parts}


def to_recbole_atomic(part: pd.DataFrame) -> str:
    """Render a split part as a RecBole ``.inter`` atomic file, for running peers on it."""
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    body = part.loc[:, ["user_id", "item_id", "rating", "timestamp"]].to_csv(sep="\t", header=False, index=False)
    return header + body
