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

Two more knobs act on the solved weights, column by column:

- **Cold head** (``cold_weight`` ``c``): the column of an item without train events becomes ``c M_:j``, where
  ``M = Phi W Phi^T`` is lm_retrieval's collaborative head (text embeddings mapped onto EASE's item-item
  weights, ``recause.models.language.collaborative_head``). Among cold items the ranking is then the text
  retriever's; ``c`` sets how cold items stand against warm ones in one list. It is chosen on valid with a
  seeded share of train items held out as pseudo-cold items (``select_cold_weight``, the validation-cold-items
  protocol of DropoutNet and ALDI): test's cold items are never seen.
- **Popularity deconfounding** (``debias_exponent`` ``gamma``): column ``j`` is divided by
  ``(n_j + debias_offset)^gamma`` (``n_j``: item j's train count). Ranking by ``score / popularity^gamma``
  is PDA's inference-time intervention (Zhang et al., "Causal intervention for leveraging popularity bias
  in recommendation", SIGIR 2021): it removes the exposure effect the logs carry. ``gamma`` is chosen on a
  valid set with near-uniform exposure (the intervened split), never on the biased one.

``rho = beta = c = gamma = 0`` is EASE itself; the grid the stage searches includes it, so the choice on
valid is never worse than EASE there. Every setting is fit on train and judged on valid (``select_on_valid``).
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
    cold_weight: float = Field(default=0.0, ge=0.0)  # 0: cold columns from the content kernel's solve
    debias_exponent: float = Field(default=0.0, ge=0.0)  # 0: no popularity deconfounding
    debias_offset: float = Field(default=10.0, gt=0.0)


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


def column_adjusted(
    weights: np.ndarray, counts: np.ndarray, cold_head: np.ndarray | None, params: HybridEASEParams
) -> np.ndarray:
    """``weights`` with the cold head in the columns of items without train events (``counts`` 0) and every
    column deconfounded by ``(counts + offset)^-gamma`` (see the module docstring); ``weights`` itself when
    neither knob is on, else a new array of its dtype."""
    if (cold_head is None or params.cold_weight == 0) and params.debias_exponent == 0:
        return weights
    adjusted = np.array(weights, dtype=np.float64)
    if cold_head is not None and params.cold_weight > 0:
        cold = np.asarray(counts) == 0
        adjusted[:, cold] = params.cold_weight * cold_head[:, cold]
    if params.debias_exponent > 0:
        adjusted *= (np.asarray(counts, dtype=np.float64) + params.debias_offset)[None, :] ** -params.debias_exponent
    return adjusted.astype(weights.dtype)


class HybridEASE(DenseItemItem):
    """EASE over interactions plus a language-model content kernel; scores warm and cold items alike."""

    name = "hybrid_ease"
    params_type = HybridEASEParams
    params: HybridEASEParams

    def __init__(
        self,
        params: HybridEASEParams | None = None,
        embeddings: np.ndarray | None = None,
        cold_head: np.ndarray | None = None,
    ) -> None:
        super().__init__(params)
        self.embeddings = embeddings  # (n_items, d) in the item order of the train matrix; None: EASE + ridge
        self.cold_head = cold_head  # (n_items, n_items) lm_retrieval's item-item head; None: no cold head

    def fit(self, train: sp.csr_matrix) -> Self:
        return self.fit_gram(gram_matrix(train))

    def fit_gram(self, gram: np.ndarray, counts: np.ndarray | None = None) -> Self:
        """Fit on a Gram matrix and item counts (None: its diagonal) alone, e.g. a differentially private release
        (``recause.privacy.gram``): the model then reads nothing else of train."""
        kernel = None if self.embeddings is None else content_kernel(self.embeddings, self.params.content_power)
        counts = np.diag(gram) if counts is None else counts
        self.weights = column_adjusted(hybrid_weights(gram, kernel, self.params), counts, self.cold_head, self.params)
        return self


@dataclass(frozen=True)
class Selection:
    """The setting chosen on valid, its fitted model, and every setting's valid score (in grid order).

    ``best``/``model``: the best setting without popularity deconfounding; ``debiased``: the best of all,
    deconfounded ones included (the same as ``best`` when the grid has no debias exponent above 0).
    """

    best: HybridEASEParams
    model: HybridEASE
    scores: list[tuple[HybridEASEParams, float]]

    @property
    def debiased(self) -> HybridEASEParams:
        return max(self.scores, key=lambda pair: pair[1])[0]  # max keeps the first of equal values


def settings(
    reg_weights: list[float], popularity_regs: list[float], content_weights: list[float], content_power: int
) -> list[HybridEASEParams]:
    """Every combination of the grid's values, in a fixed order (ties go to the first)."""
    grid = itertools.product(reg_weights, popularity_regs, content_weights)
    return [
        HybridEASEParams(reg_weight=r, popularity_reg=p, content_weight=c, content_power=content_power)
        for r, p, c in grid
    ]


def _valid_score(weights: np.ndarray, train: sp.csr_matrix, valid: sp.csr_matrix, metric: str, priority) -> float:  # noqa: ANN001
    name, _, k = metric.partition("@")
    score = lambda history: np.asarray(history @ weights, dtype=np.float32)  # noqa: E731
    return evaluate_ranking(score, train, train, valid, [int(k)], [name], priority=priority)[metric]


def select_on_valid(
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    embeddings: np.ndarray | None,
    grid: list[HybridEASEParams],
    metric: str = "ndcg@10",
    priority: np.ndarray | None = None,
    debias_exponents: tuple[float, ...] = (0.0,),
    gram: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> Selection:
    """Fit every setting of ``grid`` on ``train``, each with every exponent of ``debias_exponents``; keep the
    best by ``metric`` on ``valid`` (train items excluded).

    Only train and valid are read: the held-out test never takes part in the choice. Deconfounding only
    rescales columns, so each setting is solved once whatever the number of exponents. ``gram``/``counts``:
    fit on these instead of train's own (a private release); train is then only the users' scoring input.
    """
    gram = gram_matrix(train) if gram is None else gram
    counts = np.diag(gram) if counts is None else counts
    kernels = (
        {p: content_kernel(embeddings, p) for p in {s.content_power for s in grid}} if embeddings is not None else {}
    )
    scores, best_model, best_value = [], None, -np.inf
    for base in grid:
        solved = hybrid_weights(gram, kernels.get(base.content_power), base)
        for exponent in debias_exponents:
            setting = base.model_copy(update={"debias_exponent": exponent})
            weights = column_adjusted(solved, counts, None, setting)
            value = _valid_score(weights, train, valid, metric, priority)
            scores.append((setting, value))
            if exponent == 0 and value > best_value:
                best_model, best_value = HybridEASE(setting, embeddings), value
                best_model.weights = weights
    assert best_model is not None, "an empty grid, or no debias exponent of 0"
    return Selection(best_model.params, best_model, scores)


def select_cold_weight(
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    model: HybridEASE,
    cold_weights: list[float],
    held_out_fraction: float,
    seed: int,
    metric: str = "ndcg@10",
    priority: np.ndarray | None = None,
    gram: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> list[tuple[float, float]]:
    """Every cold weight of ``cold_weights`` with its ``metric`` on valid plus pseudo-cold items, for ``model``'s
    setting (its embeddings and cold head): in grid order, the first best wins.

    A seeded share ``held_out_fraction`` of the items with train events is held out of train with all its
    events, which join valid as the events of cold items; the model is refit without them and ranks warm and
    pseudo-cold items in one list per user (0: valid alone judges). Test and its cold items are never read.
    ``gram``/``counts``: fit on these instead of train's own (a private release); the refit then zeroes the
    held-out items' rows and columns of it, which is what their removal does to a Gram.
    """
    gram = gram_matrix(train) if gram is None else gram
    counts = np.diag(gram) if counts is None else counts
    warm = np.flatnonzero(counts > 0)
    held = np.zeros(train.shape[1], dtype=bool)
    if held_out_fraction > 0:
        size = min(len(warm) - 1, max(1, round(held_out_fraction * len(warm))))
        held[np.random.default_rng(seed).choice(warm, size=size, replace=False)] = True
    keep = sp.diags((~held).astype(np.float64))
    reduced = (train @ keep).tocsr()
    reduced.eliminate_zeros()
    truth = (valid + train @ sp.diags(held.astype(np.float64))).tocsr()
    kernel = None if model.embeddings is None else content_kernel(model.embeddings, model.params.content_power)
    kept = (~held).astype(np.float64)
    gram, counts = gram * np.outer(kept, kept), counts * kept  # the Gram and counts of `reduced`
    solved = hybrid_weights(gram, kernel, model.params)
    values = []
    for weight in cold_weights:
        setting = model.params.model_copy(update={"cold_weight": weight})
        adjusted = column_adjusted(solved, counts, model.cold_head, setting)
        values.append((weight, _valid_score(adjusted, reduced, truth, metric, priority)))
    return values


class HybridEASEDebiased(HybridEASE):
    """The hybrid EASE with popularity deconfounding (``debias_exponent`` > 0), chosen on a valid set with
    near-uniform exposure: the same model family, saved and served under its own name."""

    name = "hybrid_ease_debiased"
