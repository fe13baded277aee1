"""Id <-> index maps and sparse user-item matrices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class IdIndex:
    """A fixed vocabulary of distinct ids, in a given order, with vectorised id -> position lookup."""

    ids: np.ndarray
    _sorter: np.ndarray = field(init=False, repr=False, compare=False)  # positions of ``ids`` in sorted order

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sorter", np.argsort(self.ids, kind="stable"))

    @classmethod
    def from_values(cls, values: object) -> IdIndex:
        """The distinct values, sorted: the item axis (item ids are the data's own, the same everywhere)."""
        return cls(np.sort(pd.unique(pd.Series(values, dtype=str))).astype(str))

    @classmethod
    def first_seen(cls, values: object) -> IdIndex:
        """The distinct values in the order they first occur.

        The user axis: user ids are keyed pseudonyms, so their sorted order (and every seeded draw,
        batch or sum that follows it) would change with the key. Rows keep the source's order through
        ingest and split, so the order of first occurrence is a function of the data alone.
        """
        return cls(pd.unique(pd.Series(values, dtype=str)).astype(str))

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Index of each value; -1 for values outside the vocabulary."""
        values = np.asarray(values, dtype=str)
        if len(self.ids) == 0:
            return np.full(len(values), -1, dtype=np.int64)
        in_order = self.ids[self._sorter]
        found = np.clip(np.searchsorted(in_order, values), 0, len(self.ids) - 1)
        return np.where(in_order[found] == values, self._sorter[found], -1)


def split_users(parts: Iterable[pd.DataFrame]) -> IdIndex:
    """The user axis of a split: every user of its parts (train first), in order of first occurrence."""
    return IdIndex.first_seen(pd.concat([part["user_id"] for part in parts], ignore_index=True))


def interaction_matrix(interactions: pd.DataFrame, users: IdIndex, items: IdIndex) -> sp.csr_matrix:
    """Binary users x items matrix of who interacted with what (unknown ids are dropped)."""
    rows = users.positions(interactions["user_id"].to_numpy())
    cols = items.positions(interactions["item_id"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    data = np.ones(int(keep.sum()), dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows[keep], cols[keep])), shape=(len(users), len(items)), dtype=np.float32)
    matrix.data[:] = 1.0  # repeated (user, item) events count once
    return matrix


def known_interactions(parts: Iterable[pd.DataFrame], items: IdIndex) -> tuple[IdIndex, sp.csr_matrix]:
    """The split's users and everything they are known to have interacted with (every part), as served."""
    parts = list(parts)
    users = split_users(parts)
    return users, interaction_matrix(pd.concat(parts, ignore_index=True), users, items)
