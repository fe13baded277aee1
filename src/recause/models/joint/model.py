"""The fitted joint recommender: exported user and item vectors, scored as <p_u, q_i> + b_i.

The towers are evaluated once after training, so the fitted model is plain arrays (safetensors +
JSON, never pickled) and scoring is one matrix product per batch of users.

``Recommender.score`` receives interaction histories, not user ids. A history is matched to the
training user who had exactly that history (a 64-bit hash of the item set, computed in one
vectorised pass), which is what the evaluation protocol passes (each user's train row). Histories
seen in no training row, and empty ones, get a zero user vector: the ranking falls back to the
item biases, the model's popularity prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from recause.models.base import Recommender, require_fitted
from recause.models.joint.debias import pda_inference_scores, popularity_shares
from recause.models.joint.params import JointParams

HASH_SEED = 0x6A6F696E  # fixed: keys must be reproducible from the item count alone


@dataclass
class TrainStats:
    """What a training run did (kept on the model for reports and tests; not part of its saved state)."""

    planned_steps: int
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, NDCG@10)
    best_step: int | None = None
    seconds: float = 0.0


def canonical(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A CSR copy with sorted, distinct, non-zero entries (the caller's matrix is never modified)."""
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def history_keys(history: sp.spmatrix) -> np.ndarray:
    """A 64-bit key per row, the same for any two rows with the same set of items (non-zero values ignored)."""
    history = canonical(history)
    salts = np.random.default_rng(HASH_SEED).integers(1, 2**63, history.shape[1], dtype=np.uint64)
    # uint64 sums wrap around, which is what a hash wants; difference of prefix sums = per-row sum
    prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum(salts[history.indices], dtype=np.uint64)])
    sums = prefix[history.indptr[1:]] - prefix[history.indptr[:-1]]
    lengths = np.diff(history.indptr).astype(np.uint64)
    return sums ^ (lengths * np.uint64(0x9E3779B97F4A7C15))


class JointModel(Recommender):
    name = "joint"

    def __init__(
        self,
        params: JointParams | None = None,
        item_text: np.ndarray | None = None,
        user_features: np.ndarray | None = None,
        item_features: np.ndarray | None = None,
    ) -> None:
        self.params = params or JointParams()
        self.side_inputs = {"item_text": item_text, "user_features": user_features, "item_features": item_features}
        self.state: dict[str, np.ndarray] | None = None
        self.stats: TrainStats | None = None

    @classmethod
    def from_vectors(
        cls, params: JointParams, vectors: dict[str, np.ndarray], keys: np.ndarray, item_counts: np.ndarray
    ) -> JointModel:
        """A fitted model from exported towers; ``keys`` are ``history_keys`` of the training rows."""
        order = np.argsort(keys, kind="stable")  # stable: of identical histories the first user wins
        model = cls(params)
        model.state = {
            **vectors,
            "item_counts": np.asarray(item_counts, dtype=np.int64),
            "history_keys": keys[order],
            "history_users": order.astype(np.int64),
        }
        return model

    def fit(self, train: sp.csr_matrix) -> Self:
        from recause.models.joint.train import train_joint  # train builds models: import here, not at the top

        fitted = train_joint(train, self.params, progress=False, **self.side_inputs)
        self.state, self.stats = fitted.state, fitted.stats
        return self

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
        rows = self.user_rows(history)
        known = rows >= 0
        users = np.zeros((len(rows), self.state["user_vectors"].shape[1]), dtype=np.float32)
        users[known] = self.state["user_vectors"][rows[known]]
        return self._score(users)

    def user_rows(self, history: sp.csr_matrix) -> np.ndarray:
        """The training row of each history (-1: unseen or empty history)."""
        keys, users = self.state["history_keys"], self.state["history_users"]
        wanted = history_keys(history)
        if not len(keys):
            return np.full(len(wanted), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        empty = np.diff(canonical(history).indptr) == 0
        return np.where((keys[at] == wanted) & ~empty, users[at], -1)

    def _score(self, users: np.ndarray) -> np.ndarray:
        items, bias = self.state["item_vectors"], self.state["item_bias"]
        scores = torch.from_numpy(np.ascontiguousarray(users)) @ torch.from_numpy(items).T
        scores = (scores + torch.from_numpy(bias)).numpy()
        if self.params.debias == "pda":
            log_share = np.log(popularity_shares(self.state["item_counts"]))
            scores = pda_inference_scores(scores, log_share, self.params.pda_gamma_tilde)
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
