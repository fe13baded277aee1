"""The user tower's projection fitted in closed form to collaborative item-item weights.

Once the encoder is tuned, item embeddings ``e`` are fixed and ``lm_retrieval`` scores

    score(u, i) = (sum of e_j over the user's history j)^T W e_i,

i.e. the pooled history embedding through a projection ``W``, then the inner product with the
item's embedding. Fitting ``W`` by SGD inside the two-tower run sees only ~0.2 epochs on CPU;
here it is solved instead so that ``E W E^T`` reproduces EASE's item-item weights ``B`` over the
items that have events (a two-sided ridge estimate):

    W = K E^T B E K,   K = (E^T E + reg I)^-1.

The items' text is then the only thing a new item needs: its embedding borrows the collaborative
structure (co-consumption and popularity, both in ``B``) of the items whose text resembles it.
``reg`` trades fidelity to ``B`` against smoothness across the embedding space and is chosen on
validation items held out of training (``select_projection``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recause.evaluation.ranking import evaluate_ranking
from recause.models.baselines.ease import ease_weights
from recause.models.language.retrieval import normalise_rows, projected_retrieval


def item_item_weights(train: sp.csr_matrix, item_reg: float) -> tuple[np.ndarray, np.ndarray]:
    """EASE weights among the items with events in ``train``, and the boolean mask of those items."""
    has_events = np.asarray(train.sum(axis=0)).ravel() > 0
    if not has_events.any():
        raise ValueError("no item has events: nothing to fit the collaborative projection to")
    weights = ease_weights(train[:, has_events].tocsr(), item_reg).astype(np.float64)
    return weights, has_events


def collaborative_projection(
    embeddings: np.ndarray, item_item: np.ndarray, has_events: np.ndarray, reg: float
) -> np.ndarray:
    """The (d, d) projection W with ``E W E^T ~ B`` on the items with events (embeddings L2-normalised)."""
    if reg <= 0:
        raise ValueError(f"reg must be positive, got {reg}")
    known = normalise_rows(np.asarray(embeddings, dtype=np.float64))[has_events]
    if item_item.shape != (len(known), len(known)):
        raise ValueError(f"item_item is {item_item.shape}, expected {(len(known), len(known))}")
    inverse = np.linalg.inv(known.T @ known + reg * np.eye(known.shape[1]))
    return inverse @ known.T @ item_item @ known @ inverse


@dataclass(frozen=True)
class ProjectionChoice:
    reg: float
    projection: np.ndarray
    validation: dict[float, float]  # reg -> validation NDCG@k


def select_projection(
    embeddings: np.ndarray,
    train: sp.csr_matrix,
    held_out: sp.csr_matrix,
    regs: list[float],
    item_reg: float,
    k: int = 10,
) -> ProjectionChoice:
    """Fit W on ``train`` for every ``reg``; keep the one whose ``lm_retrieval`` ranks the held-out
    (cold) items best for the users who consumed them, by NDCG@k among those items only."""
    if not regs:
        raise ValueError("no projection regularisation to choose from")
    item_item, has_events = item_item_weights(train, item_reg)
    candidates = np.asarray(held_out.sum(axis=0)).ravel() > 0
    scores: dict[float, float] = {}
    projections: dict[float, np.ndarray] = {}
    for reg in regs:
        projections[reg] = collaborative_projection(embeddings, item_item, has_events, reg)
        retrieval = projected_retrieval(embeddings, projections[reg])
        metrics = evaluate_ranking(retrieval.score, train, train, held_out, [k], ["ndcg"], candidates=candidates)
        scores[reg] = float(metrics[f"ndcg@{k}"])
    best = max(regs, key=lambda reg: (scores[reg], reg))  # ties: the smoother fit
    return ProjectionChoice(best, projections[best], scores)


def fit_retrieval_projection(
    embeddings: np.ndarray,
    train: sp.csr_matrix,
    held_out: sp.csr_matrix | None,
    regs: list[float],
    item_reg: float,
) -> tuple[np.ndarray, dict[str, object]]:
    """The projection ``lm_retrieval`` ships with, and a summary for the stage's metrics.

    With validation items (``held_out``, same users x items as ``train``), ``reg`` is chosen on
    them with W fitted on ``train``, then W is refitted on both, so the shipped head also knows
    the validation items' co-consumption. Without them the first of ``regs`` is used.
    """
    summary: dict[str, object] = {"item_reg": item_reg}
    reg = regs[0]
    if held_out is not None and held_out.nnz:
        choice = select_projection(embeddings, train, held_out, regs, item_reg)
        reg = choice.reg
        summary["validation_ndcg@10"] = {str(r): round(score, 6) for r, score in choice.validation.items()}
        train = train + held_out
    item_item, has_events = item_item_weights(train, item_reg)
    summary |= {"reg": reg, "items_fitted": int(has_events.sum())}
    return collaborative_projection(embeddings, item_item, has_events, reg).astype(np.float32), summary
