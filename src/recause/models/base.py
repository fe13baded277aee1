"""What every recommender exposes: fit on a user-item matrix, score histories, round-trip state.

State is plain named arrays plus a JSON-able config, so models are saved as safetensors + JSON
and never pickled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recause.config.base import StrictModel


class Recommender(ABC):
    """A model that scores every item for each user from that user's interaction history."""

    name: ClassVar[str]

    @abstractmethod
    def fit(self, train: sp.csr_matrix) -> Self:
        """Learn from the binary users x items train matrix."""

    @abstractmethod
    def score(self, history: sp.csr_matrix) -> np.ndarray:
        """Dense (n_users, n_items) scores for the users whose histories are the rows given."""

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """The learned state as named arrays."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Hyper-parameters needed to rebuild the model around its arrays."""

    @classmethod
    @abstractmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild a fitted model from ``config()`` and ``arrays()``."""

    def skip_reason(self, train: sp.csr_matrix) -> str | None:
        """Why this model, as configured, should not be fit on ``train`` (None: fit it).

        A model whose cost explodes with the data (EASE's dense solve) says so here instead of the stage
        knowing its rule; the stage logs the reason and carries on with the others.
        """
        return None


def require_fitted(value: object, model: str) -> None:
    if value is None:
        raise RuntimeError(f"{model} is not fitted: call fit() first")


class DenseItemItem(Recommender):
    """A model that scores ``history @ weights`` with one dense (n_items, n_items) matrix (EASE and its kin):
    its state is that matrix, its config its params."""

    params_type: ClassVar[type[StrictModel]]

    def __init__(self, params: StrictModel | None = None) -> None:
        self.params = params or self.params_type()
        self.weights: np.ndarray | None = None

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        require_fitted(self.weights, self.name)
        return np.asarray(history @ self.weights, dtype=np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        require_fitted(self.weights, self.name)
        return {"weights": self.weights}

    def config(self) -> dict[str, Any]:
        return self.params.model_dump()

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        model = cls(cls.params_type(**config))
        model.weights = arrays["weights"]
        return model
