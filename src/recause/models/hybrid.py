"""Hybrid EASE: one closed-form item-item model over interactions and item content, for warm and cold items.

EASE (Steck, WWW 2019) solves ``B = argmin ||X - XB||^2 + ||Lambda^(1/2) B||^2`` with ``diag(B) = 0``:
``P = (G + Lambda)^-1``, ``B_ij = -P_ij / P_jj``, ``B_jj = 0``, where ``G = X^T X`` is the item Gram matrix
of the binary train interactions. Two changes make it hybrid:

- **Content as pseudo-users** (Jeunen, Van Balen & Goethals, "Closed-form models for collaborative
  filtering with side-information", RecSys 2020): stacking rows ``sqrt(beta) Phi^T`` under ``X`` adds
  ``beta Phi^T Phi`` to the Gram. Here ``Phi^T Phi = K``, the Hadamard power ``(E E^T)^p`` of the cosine
  similarities of the items' language-model embeddings ``E`` (positive semi-definite by the Schur product
  theorem, so it is a real feature map). An item without interactions still has a column of ``G + beta K``,
  so the model scores cold items from what they are, as MARec's alignment term does (Monteil et al. 2024).
- **Popularity-scaled ridge** ``Lambda = diag(lambda + rho g_jj)`` (``g_jj``: item j's train count), the
  emphasised-denoising penalty of EDLAE (Steck, NeurIPS 2020) and ADMM-SLIM's popularity weighting:
  frequent items are shrunk more, so the long tail is not drowned.

``rho = beta = 0`` is EASE itself; the grid the stage searches includes it, so the choice on valid is never
worse than EASE there. Every setting is fit on train and judged on valid (``select_on_valid``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recause.config.base import StrictModel
from recause.evaluation.ranking import evaluate_ranking
from recause.models.base import DenseItemItem
from recause.models.baselines.ease import ease_solve, gram_matrix


class HybridEASEParams(StrictModel):
    """One setting of the hybrid model (the stage's grid, `models.hybrid`, holds lists of these values)."""

    reg_weight: float = Field(default=400.0, gt=0.0)
    popularity_reg: float = Field(default=0.5, ge=0.0)
    content_weight: float = Field(default=100.0, ge=0.0)
    content_power: int = Field(default=3, ge=1)


def content_kernel(embeddings: np.ndarray, power: int) -> np.ndarray:
    """``(E E^T)^p`` elementwise, ``E`` the L2-normalised embeddings (float64): items x items."""
    unit = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    unit = np.divide(unit, norms, out=np.zeros_like(unit), where=norms > 0)
    return (unit @ unit.T) ** power


def hybrid_weights(gram: np.ndarray, kernel: np.ndarray | None, params: HybridEASEParams) -> np.ndarray:
    """The (n_items, n_items) weights for a train Gram matrix and a content kernel (see the module docstring)."""
    matrix = gram + params.content_weight * kernel if kernel is not None and params.content_weight else gram
    return ease_solve(matrix, params.reg_weight + params.popularity_reg * np.diag(gram))


class HybridEASE(DenseItemItem):
    """EASE over interactions plus a language-model content kernel; scores warm and cold items alike."""

    name = "hybrid_ease"
    params_type = HybridEASEParams
    params: HybridEASEParams

    def __init__(self, params: HybridEASEParams | None = None, embeddings: np.ndarray | None = None) -> None:
        super().__init__(params)
        self.embeddings = embeddings  # (n_items, d) in the item order of the train matrix; None: EASE + ridge

    def fit(self, train: sp.csr_matrix) -> Self:
        kernel = None if self.embeddings is None else content_kernel(self.embeddings, self.params.content_power)
        self.weights = hybrid_weights(gram_matrix(train), kernel, self.params)
        return self


@dataclass(frozen=True)
class Selection:
    """The setting chosen on valid, its fitted model, and every setting's valid score (in grid order)."""

    best: HybridEASEParams
    model: HybridEASE
    scores: list[tuple[HybridEASEParams, float]]


def settings(
    reg_weights: list[float], popularity_regs: list[float], content_weights: list[float], content_power: int
) -> list[HybridEASEParams]:
    """Every combination of the grid's values, in a fixed order (ties go to the first)."""
    grid = itertools.product(reg_weights, popularity_regs, content_weights)
    return [
        HybridEASEParams(reg_weight=r, popularity_reg=p, content_weight=c, content_power=content_power)
        for r, p, c in grid
    ]


def select_on_valid(
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    embeddings: np.ndarray | None,
    grid: list[HybridEASEParams],
    metric: str = "ndcg@10",
    priority: np.ndarray | None = None,
) -> Selection:
    """Fit every setting of ``grid`` on ``train``; keep the best by ``metric`` on ``valid`` (train items excluded).

    Only train and valid are read: the held-out test never takes part in the choice.
    """
    name, _, k = metric.partition("@")
    gram = gram_matrix(train)
    kernels = (
        {p: content_kernel(embeddings, p) for p in {s.content_power for s in grid}} if embeddings is not None else {}
    )
    scores, best_model, best_value = [], None, -np.inf
    for setting in grid:
        model = HybridEASE(setting, embeddings)
        model.weights = hybrid_weights(gram, kernels.get(setting.content_power), setting)
        value = evaluate_ranking(model.score, train, train, valid, [int(k)], [name], priority=priority)[metric]
        scores.append((setting, value))
        if value > best_value:
            best_model, best_value = model, value
    assert best_model is not None, "an empty grid"
    return Selection(best_model.params, best_model, scores)
