"""Behaviour fine-tuning as a two-tower model.

Item tower: the language model reads an item's text (pooled, normalised) and a linear head adds
a per-item bias from the same embedding, so popularity learnt from text can reach cold items.
User tower: the mean embedding of the user's last N items (read from a cache of item
embeddings that is refreshed every ``refresh_every`` steps) through a learned projection.
Positive: the next item in time. Negatives: the other positives of the micro-batch. Because
popular items are over-represented among in-batch negatives, ``log q(item)`` (the item's share of
train events) is subtracted from its logit (Yi et al., RecSys 2019), so the model estimates the
full softmax over the catalogue rather than one biased against popular items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from recause.data.split import cold_items
from recause.evaluation.ranking import evaluate_ranking
from recause.models.language.collaborative_head import HeadGrid, select_head
from recause.models.language.encoder import Corpus, TextEncoder, embed_corpus
from recause.models.language.retrieval import lm_retrieval_from_heads


@dataclass(frozen=True)
class NextItemExamples:
    """Every (history, next item) pair of the train events, as flat arrays."""

    targets: np.ndarray  # item row of each example
    history_start: np.ndarray  # into ``sequence``: the example's history is sequence[start:end]
    history_end: np.ndarray
    sequence: np.ndarray  # item rows of all users' events, each user's in time order
    item_log_share: np.ndarray  # log q(item): log of the item's share of train events (-inf: absent)


def next_item_examples(
    interactions: pd.DataFrame, item_rows: np.ndarray, n_items: int, history_length: int
) -> NextItemExamples:
    """Order each user's events by time; every event after the first is a target for its last N predecessors.

    ``item_rows`` gives each interaction's row in the item corpus (same order as ``interactions``).
    Examples are numbered by what happened (target time and item, then the user's first event time
    and event count), never by user id: pseudonyms from another key give the same training run.
    """
    order = np.lexsort((item_rows, interactions["timestamp"].to_numpy(), interactions["user_id"].to_numpy()))
    users = interactions["user_id"].to_numpy()[order]
    times = interactions["timestamp"].to_numpy()[order]
    sequence = item_rows[order].astype(np.int64)
    first = np.r_[True, users[1:] != users[:-1]]
    user_start = np.maximum.accumulate(np.where(first, np.arange(len(users)), 0))
    group = np.cumsum(first) - 1
    user_size = np.bincount(group)[group]
    position = np.arange(len(users))
    example = np.flatnonzero(position > user_start)
    by_event = np.lexsort(
        (
            example - user_start[example],
            user_size[example],
            times[user_start[example]],
            sequence[example],
            times[example],
        )
    )
    ends = example[by_event]
    starts = np.maximum(user_start[ends], ends - history_length)
    counts = np.bincount(sequence, minlength=n_items)
    with np.errstate(divide="ignore"):
        log_share = np.log(counts / max(counts.sum(), 1))
    return NextItemExamples(sequence[ends], starts, ends, sequence, log_share)


def hold_out_items(interactions: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move a seeded share of the items, with all their events, out of training: they become
    cold items of a validation set, so early stopping judges cold start without the test split."""
    held_out = set(cold_items(interactions["item_id"].to_numpy(), fraction, seed))
    is_held_out = interactions["item_id"].isin(held_out).to_numpy()
    return interactions[~is_held_out].reset_index(drop=True), interactions[is_held_out].reset_index(drop=True)


class TwoTower(nn.Module):
    """The language model, a user-tower projection, an item-bias head and the item cache."""

    def __init__(self, encoder: TextEncoder, dim: int, n_items: int):
        super().__init__()
        self.encoder = encoder
        self.user_projection = nn.Linear(dim, dim)
        self.item_bias = nn.Linear(dim, 1)
        with torch.no_grad():  # start as "profile = mean item embedding", no bias
            self.user_projection.weight.copy_(torch.eye(dim))
            self.user_projection.bias.zero_()
            self.item_bias.weight.zero_()
            self.item_bias.bias.zero_()
        self.register_buffer("item_cache", torch.zeros(n_items, dim))

    def users(self, histories: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """User vectors from padded item-row histories (``mask`` marks real entries)."""
        summed = (self.item_cache[histories] * mask.unsqueeze(-1)).sum(dim=1)
        mean = summed / mask.sum(dim=1, keepdim=True).clamp(min=1)
        return nn.functional.normalize(self.user_projection(mean), dim=-1)

    def heads(self) -> dict[str, np.ndarray]:
        """The user projection and item-bias weights, the part of the model besides the encoder."""
        named = {
            "user_projection.weight": self.user_projection.weight,
            "user_projection.bias": self.user_projection.bias,
            "item_bias.weight": self.item_bias.weight,
            "item_bias.bias": self.item_bias.bias,
        }
        return {name: tensor.detach().float().cpu().numpy() for name, tensor in named.items()}


def cold_start_validator(
    model: TwoTower,
    corpus: Corpus,
    history: sp.csr_matrix,
    truth: sp.csr_matrix,
    device: torch.device,
    temperature: float,
    batch_size: int = 256,
    k: int = 10,
    collaborative: HeadGrid | None = None,
) -> Callable[[], float]:
    """NDCG@k of ``lm_retrieval`` with the current weights, ranking only the truth's (held-out) items.

    With ``collaborative`` (its grid), the collaborative head is fitted to ``history`` at every
    validation (best of the grid), so early stopping picks the encoder that serves the head
    ``evaluate`` will use.
    """
    candidates = np.asarray(truth.sum(axis=0)).ravel() > 0

    def validate() -> float:
        embeddings = embed_corpus(model.encoder, corpus, batch_size, device)
        if collaborative is not None:
            choice = select_head(embeddings, history, truth, collaborative, k)
            return choice.validation[(choice.gamma, choice.reg)]
        retrieval = lm_retrieval_from_heads(embeddings, model.heads(), temperature)
        metrics = evaluate_ranking(retrieval.score, history, history, truth, [k], ["ndcg"], candidates=candidates)
        return metrics[f"ndcg@{k}"]

    return validate


class TwoTowerObjective:
    """Sampled softmax over in-batch positives with logQ correction."""

    def __init__(
        self,
        model: TwoTower,
        corpus: Corpus,
        examples: NextItemExamples,
        device: torch.device,
        batch_size: int,
        temperature: float,
        logq_correction: bool,
        refresh_every: int,
        embed_batch_size: int = 256,
    ):
        self.module = model
        self.corpus = corpus
        self.data = examples
        self.device = device
        self.batch_size = batch_size
        self.temperature = temperature
        self.logq = torch.as_tensor(examples.item_log_share, dtype=torch.float32, device=device)
        self.logq_correction = logq_correction
        self.refresh_every = refresh_every
        self.embed_batch_size = embed_batch_size

    def examples(self, step: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(self.data.targets), size=min(self.batch_size, len(self.data.targets)), replace=False)

    def before_step(self, step: int) -> None:
        if step % self.refresh_every == 0:
            self.refresh_cache()

    def refresh_cache(self) -> None:
        cache = embed_corpus(self.module.encoder, self.corpus, self.embed_batch_size, self.device)
        self.module.item_cache.copy_(torch.from_numpy(cache))

    def histories(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        starts, ends = self.data.history_start[rows], self.data.history_end[rows]
        width = int((ends - starts).max())
        offsets = np.arange(width)
        index = starts[:, None] + offsets[None, :]
        mask = index < ends[:, None]
        padded = np.where(mask, self.data.sequence[np.minimum(index, len(self.data.sequence) - 1)], 0)
        return torch.from_numpy(padded).to(self.device), torch.from_numpy(mask).float().to(self.device)

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        targets = self.data.targets[rows]
        items, label = np.unique(targets, return_inverse=True)
        item_vectors = self.module.encoder(**self.corpus.batch(items, self.device)).float()
        item_vectors = nn.functional.normalize(item_vectors, dim=-1)
        user_vectors = self.module.users(*self.histories(rows))
        item_rows = torch.as_tensor(items, device=self.device)
        logits = user_vectors @ item_vectors.T / self.temperature + self.module.item_bias(item_vectors).squeeze(-1)
        if self.logq_correction:
            logits = logits - self.logq[item_rows]
        return nn.functional.cross_entropy(logits, torch.as_tensor(label, device=self.device))
