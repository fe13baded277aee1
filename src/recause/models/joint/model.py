"""The fitted joint recommender: exported user and item vectors, scored as <p_u, q_i> + b_i.

The towers are evaluated once after training, so the fitted model is plain arrays (safetensors +
JSON, never pickled) and scoring is one matrix product per batch of users.

Training users are scored by their row (``score_users``), with the user vectors training fitted;
evaluation does that for every model with user ID embeddings. ``Recommender.score`` receives an
interaction history instead, of a user who may have no ID row; it folds the history in: the user
vector is the mean of the item vectors of the history's items, so <p_u, q_j> is item j's mean
similarity to what the user consumed in the learned item space (an item-to-item rule, the same
for every history: no user is matched or looked up, and users training never saw are served
through the item vectors, content included). An empty
history gets the zero vector: the ranking falls back to the item biases, the model's popularity
prior. User side features do not enter a folded-in vector (only the exported vectors are kept).

This module holds only the fitted model: ``train.py`` builds it (``train_joint``), and imports run that
one way (import-linter's contract in pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from recause.config.joint import JointParams
from recause.models.base import Recommender, require_fitted
from recause.models.joint.debias import pda_inference_scores, popularity_shares


@dataclass
class TrainStats:
    """What a training run did (kept on the model for reports and tests; not part of its saved state)."""

    planned_steps: int
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, NDCG@10)
    best_step: int | None = None
    seconds: float = 0.0
    privacy: dict[str, Any] | None = None  # DP-SGD: budget, steps and the accountant's epsilon (None: not private)


def canonical(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A CSR copy with sorted, distinct, non-zero entries (the caller's matrix is never modified)."""
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


class JointModel(Recommender):
    name = "joint"

    def __init__(self, params: JointParams | None = None) -> None:
        self.params = params or JointParams()
        self.state: dict[str, np.ndarray] | None = None
        self.stats: TrainStats | None = None

    @classmethod
    def from_vectors(cls, params: JointParams, vectors: dict[str, np.ndarray], item_counts: np.ndarray) -> JointModel:
        """A fitted model from exported towers (``JointNet.export``) and the training item counts."""
        model = cls(params)
        model.state = {**vectors, "item_counts": np.asarray(item_counts, dtype=np.int64)}
        return model

    def fit(self, train: sp.csr_matrix) -> Self:
        """Not here: training needs the side inputs and validation, and builds on this module, not the reverse."""
        raise NotImplementedError(
            "JointModel is fitted by recause.models.joint.train_joint(train, params, item_text=..., valid=...)"
        )

    @property
    def n_items(self) -> int:
        require_fitted(self.state, self.name)
        return len(self.state["item_bias"])

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        """Dense (len(user_rows), n_items) scores of training users given by row index."""
        require_fitted(self.state, self.name)
        return self._score(self.state["user_vectors"][np.asarray(user_rows, dtype=np.int64)])

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        require_fitted(self.state, self.name)
        if history.shape[1] != self.n_items:
            raise ValueError(f"history has {history.shape[1]} item columns, the model {self.n_items}")
        return self._score(self.fold_in(history))

    def fold_in(self, history: sp.spmatrix) -> np.ndarray:
        """User vectors of ``history`` rows: the mean item vector of each row's items (zero for an empty row)."""
        require_fitted(self.state, self.name)
        binary = canonical(history).astype(np.float32)
        binary.data[:] = 1.0 / np.repeat(np.maximum(np.diff(binary.indptr), 1), np.diff(binary.indptr))
        return np.asarray(binary @ self.state["item_vectors"], dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        items, bias = self.state["item_vectors"], self.state["item_bias"]
        scores = torch.from_numpy(np.ascontiguousarray(users)) @ torch.from_numpy(items).T
        scores = (scores + torch.from_numpy(bias)).numpy()
        if self.params.debias == "pda":
            log_share = np.log(popularity_shares(self.state["item_counts"]))
            log_space = self.params.loss == "softmax"
            scores = pda_inference_scores(scores, log_share, self.params.pda_gamma_tilde, log_space)
        return scores

    def arrays(self) -> dict[str, np.ndarray]:
        require_fitted(self.state, self.name)
        return dict(self.state)

    def config(self) -> dict[str, Any]:
        return self.params.model_dump()

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        model = cls(JointParams(**config))
        model.state = {name: np.asarray(values) for name, values in arrays.items()}
        return model
