"""Id <-> index maps and sparse user-item matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class IdIndex:
    """A fixed, sorted vocabulary of ids with vectorised id -> position lookup."""

    ids: np.ndarray

    @classmethod
    def from_values(cls, values: object) -> IdIndex:
        return cls(np.sort(pd.unique(pd.Series(values, dtype=str))).astype(str))

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Index of each value; -1 for values outside the vocabulary."""
        values = np.asarray(values, dtype=str)
        pos = np.searchsorted(self.ids, values)
        pos = np.clip(pos, 0, max(len(self.ids) - 1, 0))
        found = len(self.ids) > 0
        hit = (self.ids[pos] == values) if found else np.zeros(len(values), dtype=bool)
        return np.where(hit, pos, -1)


def interaction_matrix(interactions: pd.DataFrame, users: IdIndex, items: IdIndex) -> sp.csr_matrix:
    """Binary users x items matrix of who interacted with what (unknown ids are dropped)."""
    rows = users.positions(interactions["user_id"].to_numpy())
    cols = items.positions(interactions["item_id"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    data = np.ones(int(keep.sum()), dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows[keep], cols[keep])), shape=(len(users), len(items)), dtype=np.float32)
    matrix.data[:] = 1.0  # repeated (user, item) events count once
    return matrix
