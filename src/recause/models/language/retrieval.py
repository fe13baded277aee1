"""Content retrieval: a user's history becomes one vector; items are ranked by similarity to it.

Both models score any item that has text, so they can recommend items nobody has interacted with:
- ``tfidf_knn``: TF-IDF vectors of the item text; the user is the normalised sum of the vectors
  of their history, scored by cosine (the same as summing item-item cosine neighbours).
- ``lm_retrieval``: the fine-tuned language model's item embeddings. By default through the
  collaborative kernel head fitted after fine-tuning (``KernelRetrieval``, ``collaborative_head.py``);
  else the user is the mean history embedding through the two-tower's learnt projection, scored
  like in training (cosine / temperature + the item-bias head).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recause.models.base import Recommender, require_fitted


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _mean_profile(history: sp.csr_matrix, vectors: np.ndarray | sp.csr_matrix) -> np.ndarray:
    counts = np.maximum(np.asarray(history.sum(axis=1)), 1.0)
    profile = history @ vectors
    profile = profile.toarray() if sp.issparse(profile) else np.asarray(profile)
    return profile / counts


class TfidfKNN(Recommender):
    name = "tfidf_knn"

    def __init__(self, vectors: sp.csr_matrix | None = None):
        self.vectors = vectors  # (n_items, vocabulary), rows L2-normalised

    @classmethod
    def from_texts(cls, texts: list[str]) -> TfidfKNN:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return cls(TfidfVectorizer().fit_transform(texts).astype(np.float32).tocsr())

    def fit(self, train: sp.csr_matrix) -> Self:
        require_fitted(self.vectors, self.name)  # nothing to learn from behaviour
        return self

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        require_fitted(self.vectors, self.name)
        users = normalise_rows(_mean_profile(history, self.vectors))
        return np.asarray((self.vectors @ users.T).T, dtype=np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        require_fitted(self.vectors, self.name)
        v = self.vectors
        return {"data": v.data, "indices": v.indices.astype(np.int64), "indptr": v.indptr.astype(np.int64)}

    def config(self) -> dict[str, Any]:
        return {"shape": list(self.vectors.shape)}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        matrix = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(config["shape"]))
        return cls(matrix)


class LMRetrieval(Recommender):
    name = "lm_retrieval"

    def __init__(
        self,
        embeddings: np.ndarray | None = None,
        projection: np.ndarray | None = None,
        projection_bias: np.ndarray | None = None,
        item_bias: np.ndarray | None = None,
        temperature: float = 1.0,
    ):
        self.embeddings = embeddings  # (n_items, d) from the `embed` stage
        self.projection = projection  # (d, d) user tower; identity when None
        self.projection_bias = projection_bias
        self.item_bias = item_bias  # (n_items,) the item-bias head applied to each embedding
        self.temperature = temperature

    def fit(self, train: sp.csr_matrix) -> Self:
        require_fitted(self.embeddings, self.name)  # learnt by the finetune stage
        return self

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        require_fitted(self.embeddings, self.name)
        items = normalise_rows(self.embeddings)
        users = _mean_profile(history, self.embeddings)
        if self.projection is not None:
            users = users @ self.projection.T + (0.0 if self.projection_bias is None else self.projection_bias)
        scores = normalise_rows(users) @ items.T / self.temperature
        if self.item_bias is not None:
            scores = scores + self.item_bias[None, :]
        return scores.astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        require_fitted(self.embeddings, self.name)
        named = {
            "embeddings": self.embeddings,
            "projection": self.projection,
            "projection_bias": self.projection_bias,
            "item_bias": self.item_bias,
        }
        return {key: value for key, value in named.items() if value is not None}

    def config(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        return cls(
            arrays["embeddings"],
            arrays.get("projection"),
            arrays.get("projection_bias"),
            arrays.get("item_bias"),
            float(config["temperature"]),
        )


def rbf_features(embeddings: np.ndarray, anchors: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(gamma * (cos(e, anchor) - 1))`` for every row of ``embeddings`` against every anchor
    (rows unit length): the RBF kernel ``exp(-gamma/2 |e - anchor|^2)`` on the sphere."""
    return np.exp(gamma * (normalise_rows(embeddings) @ anchors.T - 1.0))


class KernelRetrieval(Recommender):
    """``lm_retrieval`` through the collaborative head: ``score(u, i) = phi(u)^T W phi(e_i)`` with
    ``phi`` the RBF features of an embedding against the anchors and ``phi(u)`` the mean over the
    user's history (see ``collaborative_head.py``). Any item with text is scored, cold ones too."""

    name = "lm_retrieval"
    HEAD_KEYS = ("retrieval_anchors", "retrieval_weights", "retrieval_gamma")

    def __init__(
        self,
        embeddings: np.ndarray | None = None,
        anchors: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        gamma: float = 1.0,
    ):
        self.embeddings = embeddings  # (n_items, d) from the `embed` stage
        self.anchors = anchors  # (m, d) unit-length embeddings of the anchor items
        self.weights = weights  # (m, m) W
        self.gamma = gamma
        self._features: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix) -> Self:
        require_fitted(self.weights, self.name)  # fitted by the finetune stage
        return self

    def item_features(self) -> np.ndarray:
        require_fitted(self.weights, self.name)
        if self._features is None:
            self._features = rbf_features(self.embeddings, self.anchors, self.gamma).astype(np.float32)
        return self._features

    def score(self, history: sp.csr_matrix) -> np.ndarray:
        features = self.item_features()
        users = _mean_profile(history, features)
        return ((users @ self.weights) @ features.T).astype(np.float32)

    def item_item(self) -> np.ndarray:
        """``M = Phi W Phi^T`` (items x items, float64): ``score(u) = mean of M's rows over u's history``, so the
        head is an item-item model like EASE, and ``M``'s columns can stand in for an EASE column."""
        features = self.item_features().astype(np.float64)
        return features @ self.weights.astype(np.float64) @ features.T

    def heads(self) -> dict[str, np.ndarray]:
        """The head as the arrays `finetune` saves next to the two-tower's weights."""
        require_fitted(self.weights, self.name)
        return dict(zip(self.HEAD_KEYS, (self.anchors, self.weights, np.array([self.gamma], np.float32)), strict=True))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"embeddings": self.embeddings, **self.heads()}

    def config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        anchors, weights, gamma = (arrays[key] for key in cls.HEAD_KEYS)
        return cls(arrays["embeddings"], anchors, weights, float(gamma[0]))


def lm_retrieval_from_heads(
    embeddings: np.ndarray, heads: dict[str, np.ndarray], temperature: float
) -> KernelRetrieval | LMRetrieval:
    """``lm_retrieval`` from item embeddings and the heads saved by `finetune`: the collaborative
    head when it was fitted, else the two-tower's learnt projection and item bias."""
    if all(key in heads for key in KernelRetrieval.HEAD_KEYS):
        return KernelRetrieval.from_state({}, {"embeddings": embeddings, **heads})
    item_bias = normalise_rows(embeddings) @ heads["item_bias.weight"].ravel() + heads["item_bias.bias"][0]
    return LMRetrieval(
        embeddings, heads["user_projection.weight"], heads["user_projection.bias"], item_bias, temperature
    )
