"""Most-popular: every user gets items ranked by how many train users interacted with them."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recause.models.base import Recommender, require_fitted
from recause.models.registry import Capabilities, register_baseline


@register_baseline(order=10, capabilities=Capabilities(warm_items=True, cold_items=False, debiases=False))
class Pop(Recommender):
    name = "pop"

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix) -> Self:
        self.counts = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        require_fitted(self.counts, self.name)
        return np.broadcast_to(self.counts, (history.shape[0], len(self.counts))).copy()

    def arrays(self) -> dict[str, np.ndarray]:
        require_fitted(self.counts, self.name)
        return {"counts": self.counts}

    def config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        model = cls()
        model.counts = arrays["counts"]
        return model
