"""The per-batch loss: BPR or sampled softmax over a batch of (user, item) positives, debiased.

- ``bpr``: -log sigmoid(s(u, i) - s(u, j)) with one negative j per positive, drawn uniformly
  (``negatives=uniform``) or taken from another positive of the batch (``in_batch``, which samples
  negatives by popularity).
- ``softmax``: cross-entropy of the positive against ``n_negatives`` negatives shared by the batch
  (a B x N logit matrix, never B x n_items). ``uniform``: items drawn uniformly (their logQ
  correction is a constant and cancels). ``in_batch``: the first N positives of the batch, which is
  a random sample of all positives, i.e. a popularity sample; every logit (positive included) gets
  -log q_j, q_j = item j's share of the positives, so the estimate targets the full softmax rather
  than a popularity-discounted one (Yi et al., RecSys 2019). A negative that is the row's own
  positive (an accidental hit) is masked.

Debiasing (see ``debias.py``) weights each positive (ips, snips) or reshapes the scores (pda).
L2 on the ID-embedding rows the batch touches stands in for weight decay of the sparse tables.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from recause.models.joint.debias import ips_weights, pda_train_scores, popularity_shares, weighted_mean
from recause.models.joint.network import JointNet
from recause.models.joint.params import JointParams


class JointObjective:
    def __init__(self, net: JointNet, params: JointParams, item_counts: np.ndarray, device: torch.device):
        self.net, self.params = net, params
        self.weights = None
        if params.debias in ("ips", "snips"):
            weights = ips_weights(item_counts, params.propensity_eta, params.propensity_clip)
            self.weights = torch.as_tensor(weights, device=device)
        # PDA's log m_i, and log q_i of in-batch sampling (both: the item's share of the positives)
        self.log_share = torch.as_tensor(np.log(popularity_shares(item_counts)), device=device)

    def negatives(self, rng: np.random.Generator, batch: int, n_items: int) -> np.ndarray | None:
        """Uniform negatives of one step (None when the batch's own positives are the negatives)."""
        if self.params.negatives == "in_batch":
            return None
        size = batch if self.params.loss == "bpr" else self.params.n_negatives
        return rng.integers(0, n_items, size)

    def loss(self, users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor | None) -> torch.Tensor:
        """The debiased mean loss of a batch, plus L2 on the ID rows it touches."""
        p, p_ids = self.net.users(users)
        q, q_ids = self.net.items(items)
        b = self.net.bias(items)
        if self.params.loss == "bpr":
            per_example = self._bpr(p, q, b, items, negatives)
        else:
            per_example = self._softmax(p, q, b, items, negatives)
        weights = None if self.weights is None else self.weights[items]
        data = weighted_mean(per_example, weights, self_normalise=self.params.debias == "snips")
        l2 = (p_ids.pow(2).sum() + q_ids.pow(2).sum()) / len(users)
        return data + self.params.weight_decay * l2

    def _pda(self, scores: torch.Tensor, items: torch.Tensor, log_space: bool) -> torch.Tensor:
        if self.params.debias != "pda":
            return scores
        return pda_train_scores(scores, self.log_share[items], self.params.pda_gamma, log_space)

    def _bpr(
        self, p: torch.Tensor, q: torch.Tensor, b: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor | None
    ) -> torch.Tensor:
        if negatives is None:
            negatives = items.roll(1)  # another row's positive: a popularity-sampled negative
            qn, bn = q.roll(1, dims=0), b.roll(1)
        else:
            qn, bn = self.net.items(negatives)[0], self.net.bias(negatives)
        positive = self._pda((p * q).sum(-1) + b, items, log_space=False)
        negative = self._pda((p * qn).sum(-1) + bn, negatives, log_space=False)
        return -F.logsigmoid(positive - negative)

    def _softmax(
        self, p: torch.Tensor, q: torch.Tensor, b: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor | None
    ) -> torch.Tensor:
        if negatives is None:  # the batch is a random sample of positives: its head is a popularity sample
            head = slice(0, self.params.n_negatives)
            negatives, qn, bn = items[head], q[head], b[head]
        else:
            qn, bn = self.net.items(negatives)[0], self.net.bias(negatives)
        positive = self._pda((p * q).sum(-1) + b, items, log_space=True).unsqueeze(1)
        negative = self._pda(p @ qn.T + bn, negatives.unsqueeze(0), log_space=True)  # (B, N)
        logits = torch.cat([positive, negative], dim=1)
        if self.params.negatives == "in_batch" and self.params.logq_correction:
            log_q = self.log_share[negatives].expand(len(items), -1)
            logits = logits - torch.cat([self.log_share[items].unsqueeze(1), log_q], dim=1)
        hit = negatives.unsqueeze(0) == items.unsqueeze(1)  # accidental hits: the row's own positive as a negative
        logits = logits.masked_fill(torch.cat([torch.zeros_like(hit[:, :1]), hit], dim=1), float("-inf"))
        target = torch.zeros(len(items), dtype=torch.long, device=items.device)
        return F.cross_entropy(logits, target, reduction="none")
