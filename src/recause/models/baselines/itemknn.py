"""Item-based k-nearest neighbours with cosine similarity, as RecBole's ItemKNN computes it.

For each target item j, keep its ``k`` most similar other items i (cosine over the columns of the
binary train matrix, ``shrink`` added to the denominator); a user's score for j is the sum of
those similarities over the items in the user's history.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recause.config.base import StrictModel
from recause.evaluation.ranking import best_first
from recause.models.base import Recommender, require_fitted
from recause.models.registry import Capabilities, register_baseline

# Columns of the item-item similarity computed at once: bounds memory at n_items * block floats.
_BLOCK = 512


class ItemKNNParams(StrictModel):
    """`models.baselines.itemknn` in params.yaml."""

    k: int = Field(default=100, ge=1)
    shrink: float = Field(default=0.0, ge=0.0)


def cosine_topk(train: sp.csr_matrix, k: int, shrink: float) -> sp.csr_matrix:
    """Sparse (n_items, n_items) W with W[i, j] = sim(i, j) for the k nearest i of each j."""
    x = sp.csc_matrix(train, dtype=np.float64)
    n_items = x.shape[1]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    k = min(k, n_items - 1)
    xt = x.T.tocsr()
    rows, cols, vals = [], [], []
    for start in range(0, n_items, _BLOCK):
        stop = min(start + _BLOCK, n_items)
        sims = (xt @ x[:, start:stop]).toarray()  # (n_items, block)
        sims /= np.outer(norms, norms[start:stop]) + shrink + 1e-6
        sims[np.arange(start, stop), np.arange(stop - start)] = 0.0
        if k <= 0:
            continue
        # equal similarities go to the lower item index: np.argpartition breaks ties by its SIMD path,
        # so the kept neighbours (and every metric after them) changed between AVX2 and AVX-512 CPUs
        top = best_first(sims.T, k).T  # (k, block)
        top_vals = np.take_along_axis(sims, top, axis=0)
        rows.append(top.ravel())
        cols.append(np.broadcast_to(np.arange(start, stop), top.shape).ravel())
        vals.append(top_vals.ravel())
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    weights = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
        dtype=np.float32,
    )
    weights.eliminate_zeros()
    return weights


@register_baseline(
    order=20, params=ItemKNNParams, capabilities=Capabilities(warm_items=True, cold_items=False, debiases=False)
)
class ItemKNN(Recommender):
    name = "itemknn"

    def __init__(self, params: ItemKNNParams | None = None) -> None:
        self.params = params or ItemKNNParams()
        self.weights: sp.csr_matrix | None = None

    def fit(self, train: sp.csr_matrix) -> Self:
        self.weights = cosine_topk(train, self.params.k, self.params.shrink)
        return self

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        require_fitted(self.weights, self.name)
        return np.asarray((history @ self.weights).todense(), dtype=np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        require_fitted(self.weights, self.name)
        w = self.weights
        return {
            "data": w.data,
            "indices": w.indices.astype(np.int64),
            "indptr": w.indptr.astype(np.int64),
            "shape": np.asarray(w.shape, dtype=np.int64),
        }

    def config(self) -> dict[str, Any]:
        return self.params.model_dump()

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        model = cls(ItemKNNParams(**config))
        shape = tuple(int(n) for n in arrays["shape"])
        model.weights = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return model
