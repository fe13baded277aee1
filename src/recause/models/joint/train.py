"""Training the joint recommender: seeded mini-batches of index tensors, sparse + dense Adam, optional early stopping.

One step takes ``batch_size`` positives from a seeded permutation of all of them (a new permutation
per epoch; a step may straddle two), draws its negatives, and updates only the embedding rows it
touched (SparseAdam) plus the small dense layers (Adam). Nothing is ever materialised per user x
item during training, and there is no per-row Python loop: an epoch is ceil(nnz / batch_size)
steps of fixed cost. On CPU the same seed gives the same model.

With ``valid``, NDCG@10 on a seeded sample of validation users is computed every
``validate_every`` steps (default: once per epoch) and the best-scoring towers are kept; training
stops after ``patience`` validations without improvement.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from recause.evaluation.metrics import ndcg
from recause.models.joint.debias import bias_prior
from recause.models.joint.model import JointModel, TrainStats, canonical, history_keys
from recause.models.joint.network import JointNet
from recause.models.joint.objective import JointObjective
from recause.models.joint.params import JointParams
from recause.training.device import resolve_device, set_threads

VALIDATION_K = 10
VALIDATION_CHUNK = 512  # users scored at once when validating


def planned_examples(nnz: int, epochs: float) -> int:
    """Positives a run visits: ceil(nnz * epochs)."""
    return math.ceil(round(nnz * epochs, 6))  # round: 3 * 0.1 epochs of 10 positives is 3, not 4


def planned_steps(nnz: int, params: JointParams) -> int:
    """Optimizer steps of a run: ceil(nnz * epochs / batch_size), capped by ``max_steps``."""
    steps = math.ceil(planned_examples(nnz, params.epochs) / params.batch_size)
    return steps if params.max_steps is None else min(steps, params.max_steps)


def batch_stream(n: int, batch_size: int, examples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Indices of each step's positives: consecutive slices of seeded permutations of ``n``, one per
    epoch, ``examples`` in all (the last step may be smaller; a step may straddle two epochs)."""
    order, offset = rng.permutation(n), 0
    while examples > 0:
        parts, wanted = [], min(batch_size, examples)
        examples -= wanted
        while wanted:
            if offset == n:
                order, offset = rng.permutation(n), 0
            take = min(wanted, n - offset)
            parts.append(order[offset : offset + take])
            offset, wanted = offset + take, wanted - take
        yield parts[0] if len(parts) == 1 else np.concatenate(parts)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the caller's setting afterwards."""
    before = torch.get_num_threads()
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def validation_ndcg(model: JointModel, train: sp.csr_matrix, valid: sp.csr_matrix, users: np.ndarray) -> float:
    """Mean NDCG@10 of ``users`` on ``valid``, ranking every item not in their train rows."""
    values = []
    for start in range(0, len(users), VALIDATION_CHUNK):
        rows = users[start : start + VALIDATION_CHUNK]
        scores = torch.from_numpy(model.score_users(rows))
        seen = train[rows].tocoo()
        scores[seen.row, seen.col] = float("-inf")
        top = torch.topk(scores, min(VALIDATION_K, scores.shape[1]), dim=1).indices.numpy()
        truth = valid[rows]
        hits = np.asarray(truth[np.repeat(np.arange(len(rows)), top.shape[1]), top.ravel()]).reshape(top.shape) > 0
        values.append(ndcg(hits, np.asarray(truth.sum(axis=1)).ravel(), VALIDATION_K))
    return float(np.concatenate(values).mean()) if values else 0.0


def validation_users(valid: sp.csr_matrix, count: int, seed: int) -> np.ndarray:
    with_truth = np.flatnonzero(np.diff(sp.csr_matrix(valid).indptr) > 0)
    if len(with_truth) <= count:
        return with_truth
    return np.sort(np.random.default_rng(seed).choice(with_truth, count, replace=False))


class EarlyStopping:
    """Keeps the best-scoring snapshot; says stop after ``patience`` validations without improvement."""

    def __init__(self, patience: int):
        self.patience, self.stale = patience, 0
        self.best: tuple[float, JointModel] | None = None

    def update(self, score: float, snapshot: JointModel) -> bool:
        """Record a validation; True when training should stop."""
        if self.best is None or score > self.best[0]:
            self.best, self.stale = (score, snapshot), 0
            return False
        self.stale += 1
        return self.stale >= self.patience


def build_net(
    n_users: int,
    item_counts: np.ndarray,
    params: JointParams,
    side: dict[str, np.ndarray | None],
    device: torch.device,
) -> tuple[JointNet, list[torch.optim.Optimizer]]:
    """The seeded towers on ``device``, item biases at their prior, and their optimizers (sparse + dense)."""
    torch.manual_seed(params.seed)
    net = JointNet(n_users, len(item_counts), params, **side).to(device)
    if params.bias_init == "popularity" and net.item_bias.weight.requires_grad:
        prior = bias_prior(item_counts, params.debias, params.propensity_eta, params.propensity_clip)
        net.item_bias.weight.data.copy_(torch.from_numpy(prior).unsqueeze(1))
    optimizers: list[torch.optim.Optimizer] = [torch.optim.SparseAdam(net.sparse_parameters(), params.learning_rate)]
    if dense := net.dense_parameters():
        optimizers.append(torch.optim.Adam(dense, params.learning_rate, weight_decay=params.weight_decay))
    return net, optimizers


def train_joint(
    train: sp.csr_matrix,
    params: JointParams,
    item_text: np.ndarray | None = None,
    user_features: np.ndarray | None = None,
    item_features: np.ndarray | None = None,
    valid: sp.csr_matrix | None = None,
    progress: bool = True,
) -> JointModel:
    """Fit the joint model on the binary users x items ``train`` matrix (see the module docstring)."""
    started = time.perf_counter()
    train = canonical(train)
    if valid is not None and valid.shape != train.shape:
        raise ValueError(f"valid has shape {valid.shape}, train {train.shape}")
    n_users, n_items = train.shape
    users_of = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(train.indptr))  # int32: half the memory
    items_of = train.indices.astype(np.int32, copy=False)
    if not len(users_of):
        raise ValueError("train has no positives: nothing to learn from")
    item_counts = np.bincount(items_of, minlength=n_items)
    keys = history_keys(train)
    device = resolve_device(params.device)
    stats = TrainStats(planned_steps=planned_steps(len(users_of), params))
    side = {"item_text": item_text, "user_features": user_features, "item_features": item_features}
    with torch_threads(params.threads):
        net, optimizers = build_net(n_users, item_counts, params, side, device)
        objective = JointObjective(net, params, item_counts, device)

        def snapshot() -> JointModel:
            net.eval()
            model = JointModel.from_vectors(params, net.export(), keys, item_counts)
            net.train()
            return model

        validate_every = params.validate_every or math.ceil(len(users_of) / params.batch_size)  # default: per epoch
        checked = validation_users(valid, params.validate_users, params.seed) if valid is not None else None
        stopping = EarlyStopping(params.patience)
        losses = torch.zeros(stats.planned_steps, device=device)  # on device: no host sync per step
        rng = np.random.default_rng(params.seed)
        examples = min(planned_examples(len(users_of), params.epochs), stats.planned_steps * params.batch_size)
        batches = batch_stream(len(users_of), params.batch_size, examples, rng)
        bar = tqdm(
            batches, total=stats.planned_steps, desc="train_joint", unit="batch", disable=None if progress else True
        )
        for step, rows in enumerate(bar):
            negatives = objective.negatives(rng, len(rows), n_items)
            loss = objective.loss(
                torch.from_numpy(users_of[rows]).to(device, torch.long),
                torch.from_numpy(items_of[rows]).to(device, torch.long),
                None if negatives is None else torch.from_numpy(negatives).to(device, torch.long),
            )
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            losses[step] = loss.detach()
            stats.steps = step + 1
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if checked is not None and (stats.steps % validate_every == 0 or stats.steps == stats.planned_steps):
                model = snapshot()
                stats.validation.append((stats.steps, validation_ndcg(model, train, valid, checked)))
                if stopping.update(stats.validation[-1][1], model):
                    break
        bar.close()
        stats.losses = losses[: stats.steps].cpu().tolist()
        if stopping.best is not None:
            stats.best_step = next(step for step, score in stats.validation if score == stopping.best[0])
        fitted = stopping.best[1] if stopping.best is not None else snapshot()
    stats.seconds = time.perf_counter() - started
    fitted.stats = stats
    return fitted
