"""lm_retrieval's collaborative head: item text embeddings mapped to EASE's item-item weights.

Once the encoder is tuned, item embeddings ``e`` (unit length) are fixed. A user is scored against
an item through ``m`` anchor items (the most consumed ones) with an RBF kernel on the sphere,

    phi(e) = exp(gamma * (anchors @ e - 1)),       score(u, i) = phi(u)^T W phi(e_i),

where ``phi(u)`` is the mean of ``phi(e_j)`` over the user's history j. ``W`` is the two-sided
kernel ridge estimate that makes ``Phi W Phi^T`` reproduce EASE's weights ``B`` among the anchors:

    W = (K + reg I)^-1 B (K + reg I)^-1,   K = Phi(anchors) (the anchors' kernel matrix).

A new item needs only its text: its embedding borrows the co-consumption and popularity (both in
``B``) of the anchors whose text resembles it. ``gamma`` sets how local that borrowing is: one
global linear projection of the embeddings (the linear-kernel limit) reached NDCG@10 0.29 on
finetune's validation items, the RBF kernel 0.32. ``reg`` sets how closely ``B`` is followed.
Both are chosen on validation items held out of training (``select_head``). Anchors are capped
(``max_anchors``) because ``K`` and ``B`` are dense m x m solves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp

from recause.evaluation.ranking import evaluate_ranking
from recause.models.baselines.ease import ease_weights
from recause.models.language.retrieval import KernelRetrieval, normalise_rows, rbf_features

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadGrid:
    """What ``select_head`` tries, and the fixed parts of the fit."""

    gammas: list[float]
    regs: list[float]
    item_reg: float  # EASE regularisation of B
    max_anchors: int


def anchor_items(train: sp.csr_matrix, max_anchors: int) -> np.ndarray:
    """Indices of the items with events, the ``max_anchors`` most consumed when there are more (sorted)."""
    counts = np.asarray(train.sum(axis=0)).ravel()
    with_events = np.flatnonzero(counts > 0)
    if not len(with_events):
        raise ValueError("no item has events: nothing to fit the collaborative head to")
    if len(with_events) <= max_anchors:
        return with_events
    log.info(
        "collaborative head: %d items have events; the %d most consumed are anchors", len(with_events), max_anchors
    )
    order = np.argsort(-counts[with_events], kind="stable")[:max_anchors]
    return np.sort(with_events[order])


def _fit_inputs(
    embeddings: np.ndarray, train: sp.csr_matrix, item_reg: float, max_anchors: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-length embeddings, the anchor items and EASE's weights among them (what the head reproduces)."""
    anchors = anchor_items(train, max_anchors)
    item_item = ease_weights(train[:, anchors].tocsr(), item_reg).astype(np.float64)
    return normalise_rows(np.asarray(embeddings, dtype=np.float64)), anchors, item_item


class _KernelSolver:
    """One gamma's eigendecomposition ``K = U diag(s) U^T``, so every reg costs a rescaling:
    ``W = U D U^T B U D U^T`` with ``D = diag(1 / (s + reg))``."""

    def __init__(self, anchors: np.ndarray, item_item: np.ndarray, gamma: float):
        spectrum, self.basis = np.linalg.eigh(rbf_features(anchors, anchors, gamma).astype(np.float64))
        self.spectrum = np.clip(spectrum, 0.0, None)  # K is positive semi-definite; clip round-off
        self.rotated = self.basis.T @ item_item @ self.basis

    def rotated_weights(self, reg: float) -> np.ndarray:
        if reg <= 0:
            raise ValueError(f"reg must be positive, got {reg}")
        shrink = 1.0 / (self.spectrum + reg)
        return shrink[:, None] * self.rotated * shrink[None, :]

    def weights(self, reg: float) -> np.ndarray:
        return self.basis @ self.rotated_weights(reg) @ self.basis.T


def fit_head(
    embeddings: np.ndarray, train: sp.csr_matrix, gamma: float, reg: float, item_reg: float, max_anchors: int
) -> KernelRetrieval:
    """The head (anchors, W, gamma) fitted to ``train`` as a ``KernelRetrieval`` over ``embeddings``."""
    unit, anchors, item_item = _fit_inputs(embeddings, train, item_reg, max_anchors)
    weights = _KernelSolver(unit[anchors], item_item, gamma).weights(reg)
    return KernelRetrieval(embeddings, unit[anchors].astype(np.float32), weights.astype(np.float32), gamma)


def _scores(history: sp.csr_matrix, rotated_items: np.ndarray, item_side: np.ndarray) -> np.ndarray:
    """Mean history features (in the solver's basis) against the chosen items' side of the head."""
    users = np.asarray(history @ rotated_items) / np.maximum(np.asarray(history.sum(axis=1)), 1.0)
    return users @ item_side


@dataclass(frozen=True)
class HeadChoice:
    gamma: float
    reg: float
    validation: dict[tuple[float, float], float]  # (gamma, reg) -> validation NDCG@k


def select_head(
    embeddings: np.ndarray, train: sp.csr_matrix, held_out: sp.csr_matrix, grid: HeadGrid, k: int = 10
) -> HeadChoice:
    """Fit the head on ``train`` for every (gamma, reg); keep the one that ranks the held-out (cold)
    items best for the users who consumed them, by NDCG@k among those items only. Ties go to the
    smoother fit (smaller gamma, then larger reg)."""
    if not grid.gammas or not grid.regs:
        raise ValueError("the collaborative head's grid is empty: give at least one gamma and one reg")
    unit, anchors, item_item = _fit_inputs(embeddings, train, grid.item_reg, grid.max_anchors)
    candidates = np.flatnonzero(np.asarray(held_out.sum(axis=0)).ravel() > 0)
    scores: dict[tuple[float, float], float] = {}
    for gamma in grid.gammas:
        solver = _KernelSolver(unit[anchors], item_item, gamma)
        rotated_items = rbf_features(unit, unit[anchors], gamma) @ solver.basis
        for reg in grid.regs:
            # Only the candidates' columns are scored: the held-out items are ranked among themselves.
            item_side = solver.rotated_weights(reg) @ rotated_items[candidates].T
            score = partial(_scores, rotated_items=rotated_items, item_side=item_side)
            metrics = evaluate_ranking(score, train, train[:, candidates], held_out[:, candidates], [k], ["ndcg"])
            scores[(gamma, reg)] = float(metrics[f"ndcg@{k}"])
    best = max(scores, key=lambda key: (scores[key], -key[0], key[1]))
    return HeadChoice(best[0], best[1], scores)


def fit_collaborative_head(
    embeddings: np.ndarray, train: sp.csr_matrix, held_out: sp.csr_matrix | None, grid: HeadGrid
) -> tuple[KernelRetrieval, dict[str, object]]:
    """The head ``lm_retrieval`` ships with, and a summary for the stage's metrics.

    With validation items (``held_out``, same users x items as ``train``), (gamma, reg) is chosen
    on them with the head fitted on ``train``, then refitted on both, so the shipped head also
    knows the validation items' co-consumption. Without them the first gamma and reg are used.
    """
    summary: dict[str, object] = {"item_reg": grid.item_reg}
    gamma, reg = grid.gammas[0], grid.regs[0]
    if held_out is not None and held_out.nnz:
        choice = select_head(embeddings, train, held_out, grid)
        gamma, reg = choice.gamma, choice.reg
        summary["validation_ndcg@10"] = {
            f"gamma={g:g},reg={r:g}": round(v, 6) for (g, r), v in choice.validation.items()
        }
        train = train + held_out
    head = fit_head(embeddings, train, gamma, reg, grid.item_reg, grid.max_anchors)
    return head, summary | {"gamma": gamma, "reg": reg, "anchors": len(head.anchors)}
