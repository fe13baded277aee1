"""Serving a trained workspace: a model, every user's known history and item titles, by id.

Used by the commands that answer for one user (`recause explain`, `recause recommend`). It reads what the pipeline
wrote (the main split and `models/baselines/`); a missing file is a one-line error naming the
stage to run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recause.data.matrix import IdIndex, interaction_matrix, known_interactions
from recause.data.pseudonym import pseudonym
from recause.errors import RecauseError
from recause.evaluation.ranking import top_k
from recause.fairness.longtail import short_head
from recause.fairness.rerank import TailReranker
from recause.layout import LAYOUT, Layout
from recause.models.base import Recommender
from recause.models.registry import models, servable

if TYPE_CHECKING:
    from recause.config.fairness import FairnessParams

PSEUDONYM = re.compile(r"^u[0-9a-f]{16}$")
SPLIT_PARTS = ("train", "valid", "test")
TOP_K_COLUMNS = ["user_id", "rank", "item_id", "score", "warm"]
SERVABLE = tuple(servable())
# Models whose list is a function of the user's history alone: `explain` can take an item out and re-score,
# so it explains the very list `recommend` prints. Champion candidates are these.
EXPLAINABLE = tuple(name for name, entry in servable().items() if entry.explainable)


def model_type(model: str) -> type[Recommender]:
    """The class of a servable model (the joint model's module, and torch with it, only when it is asked for)."""
    return models()[model].model_type()


def model_location(layout: Layout, model: str) -> tuple[Path, str]:
    """Where a servable model fit on the main split is saved, and the stage that writes it."""
    entry = models()[model]
    return entry.location(layout), entry.stage


def champion(root: Path) -> str:
    """The model `select_champion` chose to serve (``models/champion.json``)."""
    path = _need(LAYOUT.under(root).champion, "the champion", "select_champion")
    return str(json.loads(path.read_text(encoding="utf-8"))["served"])


@dataclass(frozen=True)
class Served:
    model: Recommender
    items: IdIndex
    users: IdIndex
    history: sp.csr_matrix  # every known interaction (train + valid + test), users x items
    titles: pd.Series  # item id -> title (or the id when the catalogue has no title)
    warm: np.ndarray  # per item: it has events in the train part (else the model knows it from content only)
    reranker: TailReranker | None = None  # the long-tail re-ranker (fairness.rerank.served), applied by top_k

    @cached_property
    def user_rows(self) -> dict[str, int]:
        """Row of each user id: one dict lookup per request instead of an index search."""
        return {user: row for row, user in enumerate(self.users.ids.tolist())}

    @cached_property
    def item_titles(self) -> np.ndarray:
        return self.titles.to_numpy(dtype=object)

    def scores(self, rows: np.ndarray, histories: sp.csr_matrix | None = None) -> np.ndarray:
        """Scores of the users at ``rows``: by their rows (models with user embeddings), else their histories
        (``histories``: those rows of ``history``, when the caller has sliced them already)."""
        if hasattr(self.model, "score_users"):
            return self.model.score_users(rows)  # type: ignore[attr-defined]
        return self.model.score(self.history[rows] if histories is None else histories)

    def top_k(self, k: int, rows: np.ndarray | None = None) -> pd.DataFrame:
        """``top_k_recommendations`` of this model for every user (or those at ``rows``), with item titles:
        what `recause recommend` prints and `topk.parquet` holds. With a ``reranker``, its lists (the scores
        stay the model's; `select_champion` loads no re-ranker, so `topk.parquet` keeps the plain lists)."""
        rank = self.reranker.top_k if self.reranker is not None else top_k
        top = top_k_recommendations(self.scores, self.users, self.items, self.history, k, self.warm, rows, rank=rank)
        top.insert(3, "title", self.titles.reindex(top["item_id"]).to_numpy(dtype=str))
        return top


def _need(path: Path, what: str, stage: str) -> Path:
    if not path.exists():
        raise RecauseError(f"{path} not found ({what}): run `recause run --stage {stage}` first")
    return path


def load_served(root: Path, model: str, fairness: FairnessParams | None = None) -> Served:
    """The named servable model (see ``recause.models.registry``) fit on the main split and the histories it scores,
    from the workspace at ``root``; with the long-tail re-ranker when ``fairness.rerank.served``
    (``recause.fairness.rerank``, its long tail from the train counts as the `fairness` stage defines it)."""
    from safetensors.numpy import load_file

    if model not in SERVABLE:
        raise RecauseError(f"unknown model '{model}': choose one of {', '.join(sorted(SERVABLE))}")
    layout = LAYOUT.under(root)
    folder, stage = model_location(layout, model)
    meta = json.loads(_need(folder / f"{model}.json", "model", stage).read_text())
    arrays = load_file(str(_need(folder / f"{model}.safetensors", "model", stage)))
    items = IdIndex(np.asarray(meta["item_ids"], dtype=str))
    parts = [pd.read_parquet(_need(layout.processed / f"{p}.parquet", "split", "split")) for p in SPLIT_PARTS]
    users, history = known_interactions(parts, items)
    if "user_ids" in meta and meta["user_ids"] != users.ids.tolist():
        raise RecauseError(f"{folder / model} was fit on another split's users: run `recause run --stage {stage}`")
    catalogue = pd.read_parquet(_need(layout.items, "items", "validate"))
    catalogue["item_id"] = catalogue["item_id"].astype(str)
    names = catalogue["title"] if "title" in catalogue else catalogue["item_id"]
    titles = pd.Series(names.astype(str).to_numpy(), index=catalogue["item_id"]).reindex(items.ids)
    titles = titles.fillna(pd.Series(items.ids, index=items.ids))
    counts = np.asarray(interaction_matrix(parts[0], users, items).sum(axis=0)).ravel()
    reranker = None
    if fairness is not None and fairness.rerank.served:
        tail = ~short_head(counts, fairness.head_share)
        reranker = TailReranker(tail, fairness.rerank.strength, fairness.rerank.candidates)
    fitted = model_type(model).from_state(meta["config"], arrays)
    return Served(fitted, items, users, history, titles, counts > 0, reranker)


def user_row(served: Served, user: str, key: bytes | None) -> int:
    """Row of ``user``: a pseudonym as stored, or a raw id pseudonymised with the workspace key."""
    candidates = [user] if PSEUDONYM.match(user) or key is None else [pseudonym(user, key), user]
    for candidate in candidates:
        row = served.user_rows.get(candidate, -1)
        if row >= 0:
            return row
    raise RecauseError(f"unknown user '{user}': not in the workspace's split (give a raw id or its pseudonym)")


def item_column(served: Served, item: str) -> int:
    column = int(served.items.positions(np.asarray([item]))[0])
    if column < 0:
        raise RecauseError(f"unknown item '{item}': not in the model's catalogue of {len(served.items):,} items")
    return column


def top_k_recommendations(
    score_users: Callable[[np.ndarray], np.ndarray],
    users: IdIndex,
    items: IdIndex,
    seen: sp.csr_matrix,
    k: int,
    warm: np.ndarray,
    rows: np.ndarray | None = None,
    batch_users: int = 2048,
    rank: Callable[..., np.ndarray] = top_k,
) -> pd.DataFrame:
    """The ``k`` best items of every user (or of the users at ``rows``) by ``score_users(rows)``, never
    one in their ``seen`` row (``rank(scores, k, excluded=...)``: ``top_k``, or a re-ranker's).

    One row per (user, rank): user_id, rank (1 = best), item_id, score, warm (the item had training
    events). Users are scored ``batch_users`` at a time, so memory is batch x items whatever the user count.
    """
    frames = []
    wanted = np.arange(len(users)) if rows is None else np.asarray(rows, dtype=np.int64)
    for start in range(0, len(wanted), batch_users):
        rows = wanted[start : start + batch_users]
        scores = np.asarray(score_users(rows), dtype=np.float64)
        top = rank(scores, k, excluded=seen[rows].toarray() > 0)
        user, rank = np.nonzero(top >= 0)  # -1 pads users with fewer than k unseen items
        chosen = top[user, rank]
        frames.append(
            pd.DataFrame(
                {
                    "user_id": users.ids[rows[user]],
                    "rank": (rank + 1).astype(np.int32),
                    "item_id": items.ids[chosen],
                    "score": scores[user, chosen].astype(np.float32),
                    "warm": np.asarray(warm, dtype=bool)[chosen],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TOP_K_COLUMNS)
