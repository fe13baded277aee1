"""Counterfactual fairness of a model that reads user side features: flip one attribute, see the lists move.

The joint model's user vector is p_u = e_u + W x_u (``recause.models.joint.network``: ID embedding plus a linear
map of the one-hot side features x_u). Changing x_u to x'_u while the rest of the user stays the same gives
p'_u = p_u + W (x'_u - x_u), exactly what the model would compute for that user with the other attribute value
(Kusner et al., "Counterfactual fairness", NeurIPS 2017, at the level of the model's input: the flip does not
propagate to the user's history). The change of each top-k list is measured by the Jaccard index of the two lists.

"Removing" an attribute is measured without retraining: its one-hot block is replaced by the population mean
(each column's share over the users), so every user gets the same, average, contribution from it. This is
the cost at inference of making the trained model blind to the attribute; a model retrained without the
feature could recover part of it through the ID embeddings (or lose more), so it is not the cost of retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.config.fairness import CounterfactualParams
from recause.data.features import user_side_features
from recause.data.matrix import IdIndex, interaction_matrix
from recause.evaluation.metrics import per_user_metrics
from recause.evaluation.ranking import relevance, tie_priority, top_k
from recause.models.base import Recommender

USER_FEATURE_COLUMNS = ("age", "gender", "occupation")  # the blocks of user_side_features, in its order


def flipped(users: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """A copy of the users table with ``attribute``'s two values swapped (missing values stay missing)."""
    if attribute not in users:
        raise ValueError(f"the users table has no column '{attribute}'")
    values = users[attribute].dropna().unique()
    if len(values) != 2:
        raise ValueError(f"flipping needs a binary attribute: '{attribute}' has {len(values)} values")
    first, second = values
    swapped = users[attribute].map({first: second, second: first})
    return users.assign(**{attribute: swapped.where(users[attribute].notna(), users[attribute])})


def attribute_columns(users: pd.DataFrame, ids: np.ndarray) -> dict[str, slice]:
    """The columns of each attribute's block in ``user_side_features(users, ids)``, checked against it."""
    whole = user_side_features(users, ids)
    present = [c for c in USER_FEATURE_COLUMNS if c in users]
    blocks = [user_side_features(users[["user_id", c]], ids) for c in present]
    widths = [0 if block is None else block.shape[1] for block in blocks]
    stacked = np.hstack([b for b in blocks if b is not None]) if any(widths) else None
    if whole is None or stacked is None or not np.array_equal(stacked, whole):
        raise ValueError("the user feature layout is not the age, gender, occupation blocks this module knows")
    starts = np.cumsum([0, *widths])
    return {c: slice(int(starts[i]), int(starts[i + 1])) for i, c in enumerate(present)}


def mean_imputed(features: np.ndarray, columns: list[slice]) -> np.ndarray:
    """``features`` with the given column blocks replaced by their mean over the rows."""
    out = np.array(features, dtype=np.float32, copy=True)
    for block in columns:
        out[:, block] = features[:, block].mean(axis=0, keepdims=True)
    return out


def shifted_user_vectors(
    user_vectors: np.ndarray, features: np.ndarray, new_features: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """p'_u = p_u + W (x'_u - x_u) for every user; ``weight`` is W, (dim, n_features) as torch's Linear stores it."""
    if features.shape != new_features.shape or weight.shape != (user_vectors.shape[1], features.shape[1]):
        raise ValueError(
            f"shapes do not fit: vectors {user_vectors.shape}, features {features.shape} -> {new_features.shape}, "
            f"weight {weight.shape}"
        )
    return (user_vectors + (new_features - features) @ weight.T).astype(np.float32)


def list_jaccard(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per row, |A ∩ B| / |A ∪ B| of two lists of item indices (-1 pads; two empty lists: 1)."""
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"{first.shape[0]} lists against {second.shape[0]}")
    values = np.ones(len(first))
    for row, (a, b) in enumerate(zip(first, second, strict=True)):
        left, right = set(a[a >= 0].tolist()), set(b[b >= 0].tolist())
        if left | right:
            values[row] = len(left & right) / len(left | right)
    return values


@dataclass(frozen=True)
class JointSide:
    """The joint model fit on the main split, with what moves its user vectors: features and the map W."""

    model: Recommender
    meta: dict
    weight: np.ndarray  # W, (dim, n_features)
    features: np.ndarray  # x_u per user row
    columns: dict[str, slice]  # each attribute's one-hot block in the features


def joint_side(model: Recommender, meta: dict, users: pd.DataFrame) -> JointSide | str:
    """The joint model with its user-feature map W (saved with it as ``user_feature_map``) and the users'
    features in its user order; or why not (trained without user features, or features of another layout)."""
    weight = model.arrays().get("user_feature_map")
    if weight is None:
        return "the joint model was trained without user features (models.joint.use_side_features)"
    ids = np.asarray(meta["user_ids"], dtype=str)
    try:
        columns = attribute_columns(users, ids)
    except ValueError as error:
        return str(error)
    features = user_side_features(users, ids)
    if weight.shape[1] != features.shape[1]:
        return f"the joint model's user-feature map reads {weight.shape[1]} features, the users table gives {features.shape[1]}"
    return JointSide(model, meta, weight, features, columns)


def counterfactual(
    side: JointSide, settings: CounterfactualParams, users: pd.DataFrame, parts: dict, k: int, tie_seed: int
) -> dict:
    """The joint model's test lists (train and valid excluded, ``tie_seed``'s tie order) with ``settings.flip``
    flipped (Jaccard to the plain lists) and with each of ``settings.remove`` mean-imputed (NDCG@k)."""
    ids = np.asarray(side.meta["user_ids"], dtype=str)
    index, items = IdIndex(ids), IdIndex(np.asarray(side.meta["item_ids"], dtype=str))
    matrices = {p: interaction_matrix(parts[p], index, items) for p in ("train", "valid", "test")}
    rows = np.flatnonzero(np.asarray(matrices["test"].sum(axis=1)).ravel() > 0)
    excluded = (matrices["train"] + matrices["valid"])[rows].toarray() > 0
    truth = matrices["test"][rows]
    priority = tie_priority(len(items), tie_seed)
    vectors = side.model.arrays()["user_vectors"]

    def lists(features: np.ndarray) -> tuple[np.ndarray, float]:
        shifted = shifted_user_vectors(vectors, side.features, features, side.weight)
        scorer = type(side.model).from_state(side.meta["config"], {**side.model.arrays(), "user_vectors": shifted})
        top = top_k(scorer.score_users(rows), k, excluded, priority=priority)
        n_relevant = np.asarray(truth.sum(axis=1)).ravel()
        return top, float(per_user_metrics(relevance(top, truth), n_relevant, [k], ["ndcg"])[f"ndcg@{k}"].mean())

    plain, plain_ndcg = lists(side.features)
    flips, flip_ndcg = lists(user_side_features(flipped(users, settings.flip), ids))
    overlap = list_jaccard(plain, flips)
    blocks = {name: [side.columns[name]] for name in settings.remove if name in side.columns}
    blocks["all of them"] = [block for found in blocks.values() for block in found]
    costs = {}
    for name, columns in blocks.items():
        ndcg = lists(mean_imputed(side.features, columns))[1]
        costs[name] = {f"ndcg@{k}": ndcg, "relative_cost": 1.0 - ndcg / plain_ndcg if plain_ndcg else 0.0}
    return {
        "model": "joint",
        "users": len(rows),
        "flip": settings.flip,
        f"mean_jaccard@{k}": float(overlap.mean()),
        "changed_lists": float((overlap < 1).mean()),
        f"ndcg@{k}": plain_ndcg,
        f"ndcg@{k}_flipped": flip_ndcg,
        "removed": costs,
    }
