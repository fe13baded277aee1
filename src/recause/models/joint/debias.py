"""Causal debiasing of implicit feedback: what each mode estimates, and the pure functions behind it.

Observed positives are relevance filtered by exposure: a pair (u, i) is logged only if the user
saw item i and liked it, and popular items are seen far more often. Training on the log as it is
(``none``) therefore fits P(observed | u, i) = P(exposed | i) P(relevant | u, i): the ranking
mixes taste with popularity. The modes below target P(relevant | u, i) instead.

- ``ips`` (inverse propensity scoring; Schnabel et al. 2016, Saito et al. 2020): each positive's
  loss is weighted by 1 / p_i, the propensity of item i being exposed. Estimand: the loss averaged
  over all relevant pairs as if every item were exposed with the same probability; unbiased when
  p_i is the true exposure probability (up to a constant) and no clipping binds. Clipping p_i at
  ``clip`` from below bounds the weights by 1 / clip: a little bias for much less variance.
- ``snips`` (self-normalised IPS; Swaminathan & Joachims 2015): the same weights divided by their
  sum within the batch. Estimand: the same loss, estimated by a ratio that is consistent rather
  than unbiased, with lower variance; the loss scale no longer depends on the propensity scale.
- ``pda`` (popularity-deconfounded training; Zhang et al., SIGIR 2021): popularity is modelled as
  a confounder of exposure and click, P(click | u, i) ~ ELU'(f(u, i)) * m_i^gamma with
  ELU'(x) = ELU(x) + 1 > 0 and m_i the item's share of the events. Training fits that product, so
  f need not learn popularity; inference intervenes on popularity, do(m_i = const) (``PD``:
  rank by ELU'(f)) or do(m_i = target) (``PDA``: rank by ELU'(f) * m_i^gamma_tilde). Estimand:
  the deconfounded user-item matching P(click | u, do(i)).

Propensities come from item popularity: p_i ~ pop_i^eta (eta = 0: no debiasing, eta = 1: exposure
proportional to popularity), normalised so the most popular item has p = 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def propensities(item_counts: np.ndarray, eta: float, clip: float) -> np.ndarray:
    """Exposure propensity per item: (count / max count)^eta, clipped to [clip, 1] (float64)."""
    if not 0.0 < clip <= 1.0:
        raise ValueError(f"clip must be in (0, 1], got {clip}")
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.size == 0 or counts.max() <= 0:
        return np.ones_like(counts)
    # items never seen have propensity 0 before clipping, so they get the largest weight, 1 / clip
    return np.clip((counts / counts.max()) ** eta, clip, 1.0)


def ips_weights(item_counts: np.ndarray, eta: float, clip: float) -> np.ndarray:
    """Inverse-propensity weight per item, in [1, 1 / clip] (float32)."""
    return (1.0 / propensities(item_counts, eta, clip)).astype(np.float32)


def popularity_shares(item_counts: np.ndarray) -> np.ndarray:
    """PDA's m_i: each item's share of the events, items without events counted once (so log m is finite)."""
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    return (counts / counts.sum()).astype(np.float32)


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor | None, self_normalise: bool) -> torch.Tensor:
    """The batch loss: plain mean, IPS mean (sum w l / n) or SNIPS ratio (sum w l / sum w)."""
    if weights is None:
        return losses.mean()
    total = (weights * losses).sum()
    return total / weights.sum() if self_normalise else total / losses.numel()


def log_elu_plus_one(scores: torch.Tensor) -> torch.Tensor:
    """log(ELU(x) + 1), exactly and stably: x below zero (where ELU(x) + 1 = e^x), log1p(x) above."""
    return torch.where(scores < 0, scores, torch.log1p(scores.clamp(min=0)))


def pda_train_scores(scores: torch.Tensor, log_popularity: torch.Tensor, gamma: float, log_space: bool) -> torch.Tensor:
    """PDA's training score ELU'(f) * m^gamma, or its log (for softmax logits)."""
    if log_space:
        return log_elu_plus_one(scores) + gamma * log_popularity
    return (F.elu(scores) + 1.0) * torch.exp(gamma * log_popularity)


def pda_inference_scores(scores: np.ndarray, log_popularity: np.ndarray, gamma_tilde: float) -> np.ndarray:
    """PDA's intervened ranking score ELU'(f) * m^gamma_tilde (gamma_tilde = 0: popularity dropped)."""
    positive = np.where(scores < 0, np.exp(np.minimum(scores, 0.0)), scores + 1.0)
    if gamma_tilde == 0.0:
        return positive.astype(np.float32, copy=False)
    return (positive * np.exp(gamma_tilde * log_popularity)).astype(np.float32)


def bias_prior(item_counts: np.ndarray, debias: str, eta: float, clip: float) -> np.ndarray:
    """Item biases that fit the popularity the objective targets (max 0), to start training from.

    A bias-only softmax model is optimal at b_i = log share_i (+ a constant); under ``ips``/``snips``
    the shares are of the weighted positives (``pda`` has no item bias). Starting there, one epoch is spent on personalisation
    instead of on slowly rediscovering popularity with per-step-bounded Adam updates.
    """
    log_share = np.log(popularity_shares(item_counts).astype(np.float64))
    if debias in ("ips", "snips"):
        log_share = log_share + np.log(ips_weights(item_counts, eta, clip))
    return (log_share - log_share.max()).astype(np.float32)
