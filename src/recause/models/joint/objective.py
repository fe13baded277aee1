"""The training objective of the joint model, in the form the shared loop trains (``recause.training.loop``).

A step's examples are positions in the list of logged positives: consecutive slices of per-epoch
permutations, each seeded by (seed, epoch), so the stream is a function of (seed, step) alone and a
resumed run sees the same batches. The step's negatives are drawn in ``examples`` from the loop's
per-step generator and kept for that step, so every micro-batch of a step (and a step redone after
out-of-memory) shares them.

- ``bpr``: -log sigmoid(s(u, i) - s(u, j)) with one negative j per positive, drawn uniformly
  (``negatives=uniform``) or the previous positive's item in the step (``in_batch``, which samples
  negatives by popularity).
- ``softmax``: cross-entropy of the positive against ``n_negatives`` negatives shared by the step
  (a B x N logit matrix, never B x n_items). ``uniform``: items drawn uniformly (their logQ
  correction is a constant and cancels). ``in_batch``: the items of the step's first N positives,
  a random sample of all positives, i.e. a popularity sample; every logit (positive included) gets
  -log q_j, q_j = item j's share of the positives, so the estimate targets the full softmax rather
  than a popularity-discounted one (Yi et al., RecSys 2019). A negative that is the row's own
  positive (an accidental hit) is masked.

Negatives and normalisers are properties of the step, not of a micro-batch, so splitting a step
into micro-batches changes the loss only by float rounding. Debiasing (see ``debias.py``) weights
each positive (ips, snips, dr), adds dr's imputed term, or reshapes the scores (pda). L2 on the
ID-embedding rows the batch touches stands in for weight decay of the sparse tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from recause.config.joint import JointParams
from recause.models.joint.debias import pda_train_scores, popularity_shares
from recause.models.joint.network import JointNet


class PositiveStream:
    """The positives of each step: positions ``[step * batch, (step + 1) * batch)`` of the concatenated
    per-epoch permutations (``total`` positions planned; the last planned step may be smaller)."""

    def __init__(self, n: int, batch_size: int, total: int, seed: int):
        self.n, self.batch_size, self.total, self.seed = n, batch_size, total, seed
        self._permutations: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            if len(self._permutations) >= 2:  # steps move forward: keep the current and the next epoch
                del self._permutations[min(self._permutations)]
            self._permutations[epoch] = np.random.default_rng([self.seed, epoch, 0x57EA]).permutation(self.n)
        return self._permutations[epoch]

    def positions(self, step: int) -> np.ndarray:
        """Step ``step``'s positions; a step past the plan (a caller that rounded the step count up) gets a
        full batch of the stream's continuation."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        start = step * self.batch_size
        stop = (step + 1) * self.batch_size if start >= self.total else min((step + 1) * self.batch_size, self.total)
        parts = [
            self.permutation(epoch)[max(start - epoch * self.n, 0) : min(stop - epoch * self.n, self.n)]
            for epoch in range(start // self.n, (stop - 1) // self.n + 1)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass
class StepPlan:
    """What one step's micro-batches share: its positives, negatives and the mean weight (snips)."""

    sorted_rows: np.ndarray
    order: np.ndarray  # sorted_rows[k] = rows[order[k]]
    row_negatives: np.ndarray | None  # (B,): bpr's negative per positive
    shared_negatives: np.ndarray | None  # (N,): softmax's negatives (and dr's sampled pairs under bpr)
    mean_weight: float | None

    def at(self, rows: np.ndarray) -> np.ndarray:
        """Positions within the step of ``rows`` (positive indices that must belong to the step)."""
        found = np.minimum(np.searchsorted(self.sorted_rows, rows), len(self.sorted_rows) - 1)
        if not np.array_equal(self.sorted_rows[found], rows):
            raise ValueError("rows are not positives of the current step: call examples(step, rng) first")
        return self.order[found]


class JointObjective:
    """The loop's ``Objective``: ``module`` is the JointNet, examples are indices of logged positives."""

    def __init__(
        self,
        net: JointNet,
        params: JointParams,
        users_of: np.ndarray,
        items_of: np.ndarray,
        n_users: int,
        item_counts: np.ndarray,
        total_examples: int,
        device: torch.device,
        weights: np.ndarray | None = None,
        imputation: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        """``weights``: inverse propensity of every positive (ips, snips, dr); ``imputation``: dr's factors (a, c)."""
        self.module, self.params, self.device = net, params, device
        self.users_of, self.items_of = users_of, items_of
        self.n_items = len(item_counts)
        self.stream = PositiveStream(len(users_of), params.batch_size, total_examples, params.seed)
        self.weights_np = None if weights is None else np.asarray(weights, dtype=np.float32)
        self.weights = None if weights is None else torch.as_tensor(self.weights_np, device=device)
        # PDA's log m_i, and log q_i of in-batch sampling (both: the item's share of the positives)
        self.log_share = torch.as_tensor(np.log(popularity_shares(item_counts)), device=device)
        self.imputation = None
        if imputation is not None:
            self.imputation = tuple(torch.as_tensor(factors, device=device) for factors in imputation)
        user_counts = np.maximum(np.bincount(users_of, minlength=n_users), 1).astype(np.float32)
        self.inverse_user_counts = torch.as_tensor(1.0 / user_counts, device=device) if self.dr else None
        self.plan: StepPlan | None = None

    @property
    def dr(self) -> bool:
        return self.imputation is not None

    def imputed(self, users: torch.Tensor, items: torch.Tensor, grid: bool = False) -> torch.Tensor:
        """dr's r^ of the pairs (users[k], items[k]), or of every (user, item) combination with ``grid`` (B, N)."""
        a, c = self.imputation[0][users], self.imputation[1][items]
        return (a @ c.T if grid else (a * c).sum(-1)).clamp(0.0, 1.0)

    def examples(self, step: int, rng: np.random.Generator) -> np.ndarray:
        """The positives of ``step``; draws the step's negatives from ``rng`` and keeps them for ``loss``."""
        rows = self.stream.positions(step)
        params, row_negatives, shared = self.params, None, None
        if params.loss == "bpr":
            if params.negatives == "uniform":
                row_negatives = rng.integers(0, self.n_items, len(rows))
            else:  # the previous positive's item
                row_negatives = np.roll(self.items_of[rows].astype(np.int64), 1)
        if params.loss == "softmax" or self.dr:  # dr under bpr: the shared items its imputed pairs are drawn from
            if params.negatives == "uniform":
                shared = rng.integers(0, self.n_items, params.n_negatives)
            else:
                shared = self.items_of[rows[: params.n_negatives]].astype(np.int64)
        order = np.argsort(rows, kind="stable")
        mean_weight = None
        if params.debias == "snips" and self.weights_np is not None:
            mean_weight = float(self.weights_np[rows].mean())
        self.plan = StepPlan(rows[order], order, row_negatives, shared, mean_weight)
        return rows

    def before_step(self, step: int) -> None:
        """Nothing to refresh: the towers are evaluated afresh in every loss."""

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        """The debiased mean loss of the positives ``rows`` (of the current step), plus L2 on the ID rows touched."""
        if self.plan is None:
            raise ValueError("loss before examples: call examples(step, rng) first")
        rows = np.asarray(rows)
        at = self.plan.at(rows)  # also checks that the rows are of the step whose negatives are kept
        users, items = (torch.from_numpy(a[rows]).to(self.device, torch.long) for a in (self.users_of, self.items_of))
        p, p_ids = self.module.users(users)
        q, q_ids = self.module.items(items)
        b = self.module.bias(items)
        shared = self.plan.shared_negatives
        shared = None if shared is None else torch.from_numpy(shared).to(self.device, torch.long)
        if self.params.loss == "bpr":
            negatives = torch.from_numpy(self.plan.row_negatives[at]).to(self.device, torch.long)
            per_example, imputed = self._bpr(p, q, b, users, items, negatives, shared)
        else:
            per_example, imputed = self._softmax(p, q, b, users, items, shared)
        data = self._weighted(per_example, imputed, rows, items, users)
        l2 = (p_ids.pow(2).sum() + q_ids.pow(2).sum()) / len(rows)
        return data + self.params.weight_decay * l2

    def _weighted(
        self,
        per_example: torch.Tensor,
        imputed: torch.Tensor | None,
        rows: np.ndarray,
        items: torch.Tensor,
        users: torch.Tensor,
    ) -> torch.Tensor:
        """Mean of the per-positive losses: plain, ips (w l), snips (w l / step's mean w) or dr."""
        if self.weights is None:
            return per_example.mean()
        weights = self.weights[torch.from_numpy(rows).to(self.device)]
        if self.params.debias == "snips":
            mean_weight = self.plan.mean_weight if self.plan.mean_weight is not None else weights.mean()
            return (weights * per_example).mean() / mean_weight
        if imputed is None:
            return (weights * per_example).mean()
        # dr: the logged pair's correction (1 - r^) l / p, plus the row's share of its user's imputed sum
        correction = (1.0 - self.imputed(users, items)) * weights * per_example
        return (correction + self.inverse_user_counts[users] * imputed).mean()

    def _pda(self, scores: torch.Tensor, items: torch.Tensor, log_space: bool) -> torch.Tensor:
        if self.params.debias != "pda":
            return scores
        return pda_train_scores(scores, self.log_share[items], self.params.pda_gamma, log_space)

    def _inverse_sampling(self, negatives: torch.Tensor, draws: int) -> torch.Tensor:
        """dr: 1 / (draws q_j), what a sampled negative j stands for in the all-pairs sum."""
        if self.params.negatives == "uniform":
            return torch.full(negatives.shape, self.n_items / draws, device=negatives.device)
        return torch.exp(-self.log_share[negatives]) / draws

    def _bpr(
        self,
        p: torch.Tensor,
        q: torch.Tensor,
        b: torch.Tensor,
        users: torch.Tensor,
        items: torch.Tensor,
        negatives: torch.Tensor,
        shared: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        qn, bn = self.module.items(negatives)[0], self.module.bias(negatives)
        positive = self._pda((p * q).sum(-1) + b, items, log_space=False)
        negative = self._pda((p * qn).sum(-1) + bn, negatives, log_space=False)
        per_example = -F.logsigmoid(positive - negative)
        if not self.dr:
            return per_example, None
        # dr: every (u, j), j of the step's shared sample, as an imputed positive against the row's negative
        qs, bs = self.module.items(shared)[0], self.module.bias(shared)
        pairs = -F.logsigmoid(p @ qs.T + bs - negative.unsqueeze(1))  # (B, N)
        weights = self.imputed(users, shared, grid=True) * self._inverse_sampling(shared, len(shared))
        return per_example, (weights * pairs).sum(dim=1)

    def _softmax(
        self,
        p: torch.Tensor,
        q: torch.Tensor,
        b: torch.Tensor,
        users: torch.Tensor,
        items: torch.Tensor,
        negatives: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        qn, bn = self.module.items(negatives)[0], self.module.bias(negatives)
        positive = self._pda((p * q).sum(-1) + b, items, log_space=True).unsqueeze(1)
        negative = self._pda(p @ qn.T + bn, negatives.unsqueeze(0), log_space=True)  # (B, N)
        logits = torch.cat([positive, negative], dim=1)
        if self.params.negatives == "in_batch" and self.params.logq_correction:
            log_q = self.log_share[negatives].expand(len(items), -1)
            logits = logits - torch.cat([self.log_share[items].unsqueeze(1), log_q], dim=1)
        hit = negatives.unsqueeze(0) == items.unsqueeze(1)  # accidental hits: the row's own positive as a negative
        logits = logits.masked_fill(torch.cat([torch.zeros_like(hit[:, :1]), hit], dim=1), float("-inf"))
        log_probabilities = torch.log_softmax(logits, dim=1)
        per_example = -log_probabilities[:, 0]
        if not self.dr:
            return per_example, None
        # dr: each negative j as the target of the row's cross-entropy, weighted into the all-pairs sum
        negative_losses = torch.where(hit, 0.0, -log_probabilities[:, 1:])
        weights = self.imputed(users, negatives, grid=True) * self._inverse_sampling(negatives, len(negatives))
        return per_example, (weights * negative_losses).sum(dim=1)
