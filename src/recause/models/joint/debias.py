"""Causal debiasing of implicit feedback: what each mode estimates, and the pure functions behind it.

Observed positives are relevance filtered by exposure: a pair (u, i) is logged only if the user
saw item i and liked it, and popular items are seen far more often. Training on the log as it is
(``none``) therefore fits P(observed | u, i) = P(exposed | i) P(relevant | u, i): the ranking
mixes taste with popularity. The modes below target P(relevant | u, i) instead.

- ``ips`` (inverse propensity scoring; Schnabel et al. 2016, Saito et al. 2020): each positive's
  loss is weighted by 1 / p_ui, the propensity of the pair being exposed (p_i under the popularity
  model). Estimand: the loss averaged over all relevant pairs as if every item were exposed with
  the same probability; unbiased when p is the true exposure probability (up to a constant) and
  no clipping binds. Clipping p at ``clip`` from below bounds the weights by 1 / clip: a little
  bias for much less variance.
- ``snips`` (self-normalised IPS; Swaminathan & Joachims 2015): the same weights divided by their
  sum within the optimizer step (all its micro-batches). Estimand: the same loss, estimated by a
  ratio that is consistent rather than unbiased, with lower variance; the loss scale no longer
  depends on the propensity scale.
- ``pda`` (popularity-deconfounded training; Zhang et al., SIGIR 2021): popularity is modelled as
  a confounder of exposure and click, P(click | u, i) ~ ELU'(f(u, i)) * m_i^gamma with
  ELU'(x) = ELU(x) + 1 > 0 (BPR; under softmax the link is exp, see ``pda_train_scores``) and m_i
  the item's share of the events. Training fits that product, so
  f need not learn popularity; inference intervenes on popularity, do(m_i = const) (``PD``:
  rank by ELU'(f)) or do(m_i = target) (``PDA``: rank by ELU'(f) * m_i^gamma_tilde). Estimand:
  the deconfounded user-item matching P(click | u, do(i)).
- ``dr`` (doubly robust; Wang et al., ICML 2019, "Doubly robust joint learning for recommendation
  on data missing not at random"): a loss over all pairs estimated as
  sum_ui [e^_ui + o_ui (e_ui - e^_ui) / p_ui], imputed errors e^ everywhere, corrected where observed.
  Made concrete for implicit feedback, with the per-positive loss l_ui of the objective (softmax or
  BPR) and relevance r_ui: the target is the ips one, sum over all pairs of e_ui = r_ui l_ui. A
  logged pair is relevant (logged = exposed and relevant), so its error is known, e = l; the
  imputation is e^ = r^_ui l_ui with an imputed relevance r^. Hence

      L_dr = sum_{all u, i} r^_ui l_ui + sum_{logged u, i} (1 - r^_ui) l_ui / p_ui.

  Over the exposure draw, a relevant pair contributes r^ l + (1 - r^) l = l whatever r^ (correct
  propensities); with r^ = r the correction is zero on every pair and any propensity gives the
  target. What remains with correct propensities and a wrong r^ is the imputed mass on irrelevant
  pairs (sum r^ l over them): with implicit feedback an unexposed and an irrelevant pair look the
  same, so no estimator built from the log alone removes it; r^ = 0 is ips exactly. The 1 / p
  weights multiply only the part of a positive the imputation does not explain, (1 - r^), so the
  variance is lower than ips's where r^ is large.
  Imputation: r^_ui = clip(a_u . c_i, 0, 1), a rank-``dr_rank`` truncated SVD of the ips-weighted
  log Y / P (PureSVD, Cremonesi et al. 2010, on debiased data), fitted once before training with
  the same propensities. E[y_ui / p_ui] = r_ui, so its target is relevance, not exposure, and the
  truncation denoises the 1 / p weights. It must be personalised: the imputed mass on irrelevant
  pairs is the bias nothing corrects, so an item-level r^ (one relevance rate per item, the same for
  every user) pulls all users towards one ranking and loses to plain training. It is fixed, so the
  targets do not move during training; a detached copy of the model itself would give the imputed
  term next to no gradient (a soft-label cross-entropy is flat where the labels are its own
  predictions) and leave ips with weights (1 - r^) / p.
  Per batch the all-pairs sum is estimated from pairs the batch scores anyway: each row's user
  with the step's sampled negatives j, weighted 1 / (N q_j) (q_j: how j was sampled, 1 / n_items
  when uniform, its share of the positives in-batch) and divided by the user's count of positives
  n_u (users enter a batch in proportion to n_u). A negative's l_uj is the row's softmax
  cross-entropy with j as the target (no extra scoring), or, under BPR, -log sigmoid(s_uj - s_uk)
  against the row's own negative k (N shared items scored against every row, as in softmax). r^
  of the sampled pairs is a (B, N) product of the factors: the cost of one more logit matrix.

Propensities (ips, snips, dr), chosen by ``propensity_model``:

- ``popularity``: p_i ~ pop_i^eta (eta = 0: no debiasing, eta = 1: exposure proportional to
  popularity), normalised so the most popular item has p = 1.
- ``learned`` (``propensity.py``): a logistic regression of "logged" on the user and item side
  features the model is given plus log item popularity, fitted on logged pairs against as many
  uniformly drawn pairs; its odds give each pair's relative logging rate, normalised so the
  highest logged pair has 1, and p = rate^eta. It is relative exposure under the popularity
  model's own assumption (what the features predict about logging is exposure, not taste), and,
  unlike popularity, it can make exposure depend on the user. With no side features the rate is
  the item count (the odds are linear in it), so ``learned`` reduces to ``popularity``: the same
  eta tempers both (eta < 1 shrinks propensities towards 1, trading bias for variance).

Both are clipped to [clip, 1], so inverse weights are at most 1 / clip.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import svds


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


def pda_train_scores(scores: torch.Tensor, log_popularity: torch.Tensor, gamma: float, log_space: bool) -> torch.Tensor:
    """PDA's training score: ELU'(f) * m^gamma (BPR), or the log of exp(f) * m^gamma, f + gamma log m
    (softmax logits).

    Under softmax the positive link is exp, the softmax's own: the ELU' link's log, log1p(f) above zero,
    flattens large logits, and under L2 it underfit so much that PDA scored below no debiasing on the
    intervened ML-100K split (valid NDCG@10 0.043 vs 0.051 at gamma 0.1; 0.066 with the exp link at 0.6).
    """
    if log_space:
        return scores + gamma * log_popularity
    return (F.elu(scores) + 1.0) * torch.exp(gamma * log_popularity)


def pda_inference_scores(
    scores: np.ndarray, log_popularity: np.ndarray, gamma_tilde: float, log_space: bool = False
) -> np.ndarray:
    """PDA's intervened ranking score f' * m^gamma_tilde with the training link f' (gamma_tilde = 0:
    popularity dropped): ELU'(f) for BPR, or for softmax its log, f + gamma_tilde log m."""
    if log_space:
        return (scores + gamma_tilde * log_popularity).astype(np.float32)
    positive = np.where(scores < 0, np.exp(np.minimum(scores, 0.0)), scores + 1.0)
    if gamma_tilde == 0.0:
        return positive.astype(np.float32, copy=False)
    return (positive * np.exp(gamma_tilde * log_popularity)).astype(np.float32)


def imputation_factors(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_users: int, n_items: int, rank: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """dr's imputation model: factors (a, c) with r^_ui = clip(a_u . c_i, 0, 1), the best rank-``rank``
    approximation of the ips-weighted log Y / P (``users``, ``items``, ``weights``: every logged positive
    and its inverse propensity)."""
    matrix = sp.csr_matrix((np.asarray(weights, dtype=np.float64), (users, items)), shape=(n_users, n_items))
    rank = min(rank, min(n_users, n_items))
    if rank < min(n_users, n_items) - 1:
        left, singular, right = svds(matrix, k=rank, random_state=seed)  # ARPACK, started from a seeded vector
    else:  # too small for ARPACK: exact dense SVD
        left, singular, right = np.linalg.svd(matrix.toarray(), full_matrices=False)
        left, singular, right = left[:, :rank], singular[:rank], right[:rank]
    return (left * singular).astype(np.float32), np.ascontiguousarray(right.T, dtype=np.float32)


def bias_prior(item_counts: np.ndarray, weight_sums: np.ndarray | None = None, clip: float = 1.0) -> np.ndarray:
    """Item biases that fit the popularity the objective targets (max 0), to start training from.

    A bias-only softmax model is optimal at b_i = log share_i (+ a constant). Under ips, snips and
    dr the shares are of the weighted positives (``weight_sums``: per item, the sum of its positives'
    inverse propensities; an item without positives counts as one positive of weight 1 / clip);
    ``pda`` has no item bias. Starting there, one epoch is spent on personalisation instead of on
    slowly rediscovering popularity with per-step-bounded Adam updates.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    mass = np.maximum(counts, 1.0)
    if weight_sums is not None:
        mass = np.where(counts > 0, np.asarray(weight_sums, dtype=np.float64), 1.0 / clip)
    log_share = np.log(mass)
    return (log_share - log_share.max()).astype(np.float32)
