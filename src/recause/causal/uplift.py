"""Uplift ranking: learn what a recommendation *changes*, not what the user would do anyway (Sato et al., 2020).

Logged data give, for every (user, item), whether it was recommended (``Z``), whether it was consumed
(``Y``) and the logging policy's propensity ``e = P(Z = 1)``. The individual effect
``tau = Y1 - Y0`` is never observed, but the inverse-propensity label

    ``label = Z * Y / e - (1 - Z) * Y / (1 - e)``

has expectation ``p1 - p0``, the expected effect of recommending the item to the user. With ``e``
clipped to ``[cap, 1 - cap]`` (propensity capping, as the paper does) its variance stays bounded at
the cost of some bias for items the policy nearly always or nearly never recommends.

``fit_uplift`` fits a matrix factorisation to these labels (a DLCE-style ranker), by default on item
factors carried over from the outcome model (see its docstring for why); ``fit_accuracy`` fits the
same factorisation to the observed ``Y``: the usual recommender, which ranks by what users would
consume anyway. Both train on every (user, item) pair, in minibatches of whole user rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from recause.config.causal import UpliftParams

Loss = Literal["squared", "logistic"]


@dataclass(frozen=True)
class MFScorer:
    """A fitted factorisation: ``score(u, i) = user_factors[u] . item_factors[i] + item_bias[i] + user_bias[u]``.

    The user bias shifts a whole row, so it never changes a user's ranking; it is kept so that the
    scores are the fitted values (an effect estimate for uplift, a logit for accuracy).
    """

    user_factors: np.ndarray  # (n_users, dim)
    item_factors: np.ndarray  # (n_items, dim)
    item_bias: np.ndarray  # (n_items,)
    user_bias: np.ndarray  # (n_users,)

    def scores(self) -> np.ndarray:
        """Dense (n_users, n_items) scores; higher is ranked first."""
        return self.user_factors @ self.item_factors.T + self.item_bias[None, :] + self.user_bias[:, None]


def ips_effect_labels(treatment: np.ndarray, outcome: np.ndarray, propensity: np.ndarray, cap: float) -> np.ndarray:
    """The capped inverse-propensity estimate of each pair's effect, ``Z Y / e - (1 - Z) Y / (1 - e)``.

    Unbiased for ``p1 - p0`` where ``cap <= e <= 1 - cap``; elsewhere capping trades bias for variance.
    """
    if not 0 < cap <= 0.5:
        raise ValueError(f"propensity cap {cap} must be in (0, 0.5]")
    if not treatment.shape == outcome.shape == propensity.shape:
        raise ValueError("treatment, outcome and propensity must have the same shape")
    z = treatment.astype(np.float64)
    y = outcome.astype(np.float64)
    e = np.clip(propensity.astype(np.float64), cap, 1.0 - cap)
    return z * y / e - (1.0 - z) * y / (1.0 - e)


def fit_uplift(
    treatment: np.ndarray,
    outcome: np.ndarray,
    propensity: np.ndarray,
    params: UpliftParams,
    seed: int,
    device: torch.device | None = None,
) -> MFScorer:
    """Matrix factorisation of the capped IPS effect labels (dense (n_users, n_items) inputs).

    Estimand: the expected effect ``p1 - p0`` of recommending item i to user u. Loss: pointwise
    squared error to the IPS label, whose minimiser in expectation is that effect (up to capping
    bias), so the scores estimate it on its own scale. (DLCE's pairwise logistic bound weighs pairs by the same signed
    labels; on ML-100K it ranked no better and its scores have no scale.)

    With ``transfer_item_factors`` the item factors are not learned from the labels but taken, fixed
    and orthonormalised, from the outcome model (``fit_accuracy``); only the users' effect factors and
    the item and user biases are fitted. Why: with one logged draw per pair the labels' noise
    (variance ~1.5 against a signal variance ~0.01 on ML-100K) swamps the personal part of the effect, so free item
    factors fit noise or, regularised enough, collapse to item biases. The outcome ``Y`` is far less
    noisy and spans the tastes the effect varies with.
    """
    labels = ips_effect_labels(treatment, outcome, propensity, params.propensity_cap)
    if not params.transfer_item_factors:
        return _fit(labels, "squared", params.regularisation, params, seed, device)
    tastes = fit_accuracy(outcome, params, seed, device)
    basis = _orthonormal_columns(tastes.item_factors)
    return _fit(labels, "squared", params.effect_regularisation, params, seed, device, item_factors=basis)


def fit_accuracy(outcome: np.ndarray, params: UpliftParams, seed: int, device: torch.device | None = None) -> MFScorer:
    """The same factorisation fitted to the observed outcome ``Y`` by pointwise logistic loss.

    Estimand: ``P(Y = 1)`` under the logging policy, i.e. ranking by what users consume, recommended
    or not: the accuracy baseline the uplift ranker is compared with.
    """
    return _fit(outcome.astype(np.float64), "logistic", params.regularisation, params, seed, device)


def _orthonormal_columns(factors: np.ndarray) -> np.ndarray:
    """An orthogonal basis of the factors' column space, scaled to unit mean square per column, so
    that the effect regularisation means the same whatever the scale the outcome model learned."""
    q, _ = np.linalg.qr(factors)
    return q * np.sqrt(factors.shape[0])


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _fit(
    targets: np.ndarray,
    loss: Loss,
    regularisation: float,
    params: UpliftParams,
    seed: int,
    device: torch.device | None,
    item_factors: np.ndarray | None = None,
) -> MFScorer:
    """Adam on minibatches of whole user rows; deterministic for a seed on a given device.

    The objective is the mean loss over all cells plus ``regularisation`` times the mean squared norm
    of the user and the item factors; biases are not penalised (shrinking them all alike would not
    change their order). Item biases start at the column means of the targets (on the loss's scale),
    so the factors only learn how users depart from an item's average. Given ``item_factors`` are
    kept fixed (and not penalised).
    """
    if targets.ndim != 2:
        raise ValueError(f"targets must be (n_users, n_items), got shape {targets.shape}")
    device = device or _default_device()
    n_users, n_items = targets.shape
    fixed = item_factors is not None
    dim = item_factors.shape[1] if fixed else params.dim  # a basis of fewer items than dim is narrower
    generator = torch.Generator().manual_seed(seed)
    users_init = params.init_scale * torch.randn(n_users, dim, generator=generator)
    items_init = params.init_scale * torch.randn(n_items, dim, generator=generator)
    if fixed:
        items_init = torch.as_tensor(item_factors, dtype=torch.float32)
    user_factors, items = users_init.to(device), items_init.to(device)
    target = torch.as_tensor(targets, dtype=torch.float32, device=device)
    item_bias = target.mean(dim=0)
    if loss == "logistic":
        item_bias = torch.logit(item_bias.clamp(1e-3, 1 - 1e-3))
    user_bias = torch.zeros(n_users, device=device)
    trained = [user_factors, item_bias, user_bias] + ([] if fixed else [items])
    for tensor in trained:
        tensor.requires_grad_(True)
    optimiser = torch.optim.Adam(trained, lr=params.learning_rate)
    batch = min(params.batch_users, n_users)
    for _ in range(params.epochs):
        order = torch.randperm(n_users, generator=generator).to(device)
        for start in range(0, n_users, batch):
            rows = order[start : start + batch]
            users = user_factors[rows]
            predicted = users @ items.T + item_bias + user_bias[rows, None]
            if loss == "squared":
                fit = (predicted - target[rows]).square().mean()
            else:
                fit = F.binary_cross_entropy_with_logits(predicted, target[rows])
            norms = users.square().sum(1).mean() + (0.0 if fixed else items.square().sum(1).mean())
            optimiser.zero_grad(set_to_none=True)
            (fit + regularisation * norms).backward()
            optimiser.step()
    return MFScorer(*(t.detach().cpu().numpy().astype(np.float64) for t in (user_factors, items, item_bias, user_bias)))
