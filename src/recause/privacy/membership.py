"""Membership-inference audit: can the released model tell the users it was fit on from users it never saw?

A score-threshold attack in the style of Yeom et al. ("Privacy risk in machine learning", CSF 2018) and of the
user-level audits of recommenders (Zhang et al., "Membership inference attacks against recommender systems",
CCS 2021), reading only the released model:

1. The main train's users are split in two seeded halves: **members** (the model is fit on their train rows) and
   **non-members** (held out).
2. For every user, the train items are split in two seeded halves ``A`` and ``B``; the model scores every item from
   ``A`` alone (fold-in), and the user's statistic is how well it ranks ``B`` above the items in neither half:
   the user's AUC as `evaluate` computes it (``recause.evaluation.auc``: ``B`` the positives, every item not in
   ``A`` rankable, ties counting half). A model that memorised the user's co-occurrences reconstructs ``B``
   better for members.
3. The attack thresholds that statistic; its ROC AUC over members vs non-members is the audit's number:
   0.5 is no leakage, 1 is perfect membership inference. An (ε, δ)-DP fit bounds every threshold's true-positive
   rate by ``e^ε FPR + δ`` (Kairouz et al. 2015; ``dp_auc_bound``), so an AUC above that bound is a bug.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from recause.evaluation.auc import AucTally
from recause.evaluation.ranking import ScoreFn

Fit = Callable[[sp.csr_matrix], ScoreFn]  # members' train rows (others emptied) -> the released model's scorer


@dataclass(frozen=True)
class Audit:
    auc: float
    n_members: int
    n_non_members: int

    def as_dict(self) -> dict[str, float | int]:
        return {"auc": self.auc, "n_members": self.n_members, "n_non_members": self.n_non_members}


def dp_auc_bound(epsilon: float, delta: float) -> float:
    """The largest ROC AUC any membership test can reach against an (ε, δ)-DP fit: its ROC curve lies under
    ``TPR <= min(1, e^ε FPR + δ, 1 - e^-ε (1 - δ - FPR))`` (Kairouz, Oh & Viswanath, ICML 2015), integrated here."""
    fpr = np.linspace(0.0, 1.0, 200_001)
    tpr = np.minimum.reduce(
        [np.ones_like(fpr), np.exp(epsilon) * fpr + delta, 1 - np.exp(-epsilon) * (1 - delta - fpr)]
    )
    return float(np.trapezoid(np.clip(tpr, 0.0, 1.0), fpr))


def member_mask(n_users: int, seed: int) -> np.ndarray:
    """A seeded half of the users (rounded down) as members (True)."""
    members = np.zeros(n_users, dtype=bool)
    members[np.random.default_rng(seed).permutation(n_users)[: n_users // 2]] = True
    return members


def fold_halves(train: sp.csr_matrix, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Each user's train items split in two seeded halves ``(A, B)`` (B gets the extra item of an odd count)."""
    rows = sp.csr_matrix(train, dtype=np.float64)
    rng = np.random.default_rng(seed)
    in_a = np.zeros(rows.nnz, dtype=bool)
    for user in range(rows.shape[0]):
        start, stop = rows.indptr[user], rows.indptr[user + 1]
        in_a[start + rng.permutation(stop - start)[: (stop - start) // 2]] = True
    return _kept(rows, in_a), _kept(rows, ~in_a)


def _kept(rows: sp.csr_matrix, mask: np.ndarray) -> sp.csr_matrix:
    """The stored entries of ``rows`` where ``mask`` holds (a new matrix: ``rows`` is left as it is)."""
    kept = sp.csr_matrix((rows.data * mask, rows.indices.copy(), rows.indptr.copy()), shape=rows.shape)
    kept.eliminate_zeros()
    return kept


def reconstruction_auc(score: ScoreFn, history: sp.csr_matrix, held: sp.csr_matrix, batch: int = 512) -> np.ndarray:
    """Per user, the AUC of the ``held`` items against every other item not in ``history``, scored from ``history``
    alone (``AucTally.per_user``); NaN for a user without held items."""
    tally = AucTally(pooled=False)
    for start in range(0, history.shape[0], batch):
        rows = slice(start, start + batch)
        scores = np.asarray(score(history[rows]), dtype=np.float64)
        tally.add(scores, history[rows].toarray() == 0, held[rows].toarray() > 0)
    return tally.per_user()


def membership_audit(train: sp.csr_matrix, fit: Fit, seed: int = 0) -> Audit:
    """Fit on a seeded half of ``train``'s users (the other rows emptied) and return the score-threshold attack's
    AUC of members vs non-members (see the module docstring)."""
    if train.shape[0] < 4:
        raise ValueError(f"a membership audit needs at least 4 users, got {train.shape[0]}")
    members = member_mask(train.shape[0], seed)
    member_rows = sp.csr_matrix(sp.diags(members.astype(np.float64)) @ train)
    member_rows.eliminate_zeros()  # a product: train itself is untouched
    score = fit(member_rows)
    history, held = fold_halves(train, seed + 1)
    statistic = reconstruction_auc(score, history, held)
    known = ~np.isnan(statistic)
    labels, values = members[known], statistic[known]
    return Audit(float(roc_auc_score(labels, values)), int(labels.sum()), int((~labels).sum()))
