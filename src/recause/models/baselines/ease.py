"""EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder with a zero diagonal.

B = argmin ||X - XB||^2 + reg ||B||^2  s.t. diag(B) = 0, solved as
P = (X^T X + reg I)^-1,  B_ij = -P_ij / P_jj,  B_jj = 0.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recause.config.base import StrictModel
from recause.models.base import DenseItemItem
from recause.models.registry import Capabilities, register_baseline


class EASEParams(StrictModel):
    """`models.baselines.ease` in params.yaml."""

    reg_weight: float = Field(default=250.0, gt=0.0)
    # the dense solve takes time ~ n_items^3 and memory ~ n_items^2: skipped above this many items (None: never)
    max_items: int | None = Field(default=8_000, ge=1)


def gram_matrix(train: sp.csr_matrix) -> np.ndarray:
    """``X^T X`` of the binary users x items matrix, dense float64 (items x items)."""
    return np.asarray((train.T @ train).todense(), dtype=np.float64)


def ease_solve(matrix: np.ndarray, ridge: float | np.ndarray) -> np.ndarray:
    """EASE's closed form for a (Gram-like) matrix: ``P = (matrix + diag(ridge))^-1``, ``B = -P / diag(P)``
    with a zero diagonal; ``matrix`` is not modified. float32 weights, solved in float64."""
    regularised = matrix.copy()
    regularised[np.diag_indices_from(regularised)] += ridge
    precision = np.linalg.inv(regularised)
    weights = precision / (-np.diag(precision))
    weights[np.diag_indices_from(weights)] = 0.0
    return weights.astype(np.float32)


def ease_weights(train: sp.csr_matrix, reg_weight: float) -> np.ndarray:
    """The dense (n_items, n_items) EASE weight matrix, solved in float64."""
    return ease_solve(gram_matrix(train), reg_weight)


@register_baseline(
    order=30, params=EASEParams, capabilities=Capabilities(warm_items=True, cold_items=False, debiases=False)
)
class EASE(DenseItemItem):
    name = "ease"
    params_type = EASEParams
    params: EASEParams

    def fit(self, train: sp.csr_matrix) -> Self:
        return self.fit_gram(gram_matrix(train))

    def fit_gram(self, gram: np.ndarray, extra_ridge: float = 0.0) -> Self:
        """Fit on a (Gram-like) items x items matrix alone, e.g. a differentially private release
        (``recause.privacy.gram``), with the ridge grown by ``extra_ridge`` (kept in ``params``, so the saved
        config is the ridge used): the model then reads nothing else of train."""
        if extra_ridge:
            self.params = self.params.model_copy(update={"reg_weight": self.params.reg_weight + extra_ridge})
        self.weights = ease_solve(gram, self.params.reg_weight)
        return self

    def skip_reason(self, train: sp.csr_matrix) -> str | None:
        n_items, cap = train.shape[1], self.params.max_items
        if cap is None or n_items <= cap:
            return None
        return f"{n_items:,} items exceed max_items {cap:,} (the dense solve grows with the cube of the item count)"
