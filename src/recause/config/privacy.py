"""Params of differential privacy (`privacy.dp`, off by default): one privacy budget for every trained model.

- Closed-form models (EASE, the hybrid): user-level DP by the Gaussian mechanism on the item Gram matrix
  (``recause.privacy.gram``): each user's train row is scaled to L2 norm <= ``gram.user_norm`` (entries <=
  ``user_norm / sqrt(gram.min_items)``), so adding or removing one user moves the Gram's upper triangle by at most
  ``user_norm ** 2 * sqrt((1 + 1 / min_items) / 2)`` in L2 norm; noise is calibrated to that, then denoised.
- The neural joint model: DP-SGD with Opacus (per-example clipping at ``sgd.max_grad_norm``, Gaussian noise whose
  multiplier Opacus' accountant picks for the target epsilon over the planned steps).

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.config.base import StrictModel


class GramDPParams(StrictModel):
    # 10: with `normalize` each user weighs as a 100-item user, so models.*'s ridge grids keep their scale
    user_norm: float = Field(default=10.0, gt=0.0)
    min_items: int = Field(default=16, ge=1)
    normalize: bool = True
    shrink: float = Field(default=0.5, ge=0.0)
    noise_ridge: float = Field(default=0.25, ge=0.0)


class SgdDPParams(StrictModel):
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    unit: Literal["user", "interaction"] = "user"
    batch_size: int = Field(default=256, ge=1)
    interactions_per_user: int = Field(default=16, ge=1)
    user_vector: Literal["history", "id"] = "history"
    history_size: int = Field(default=32, ge=1)
    n_negatives: int = Field(default=8, ge=1)
    noise_multiplier: float | None = Field(default=None, ge=0.0)
    accountant: Literal["rdp", "prv"] = "rdp"


class DPParams(StrictModel):
    enabled: bool = False
    epsilon: float = Field(default=8.0, gt=0.0)
    delta: float | None = Field(default=None, gt=0.0, lt=1.0)  # None: 1 / number of train users
    seed: int = 0
    gram: GramDPParams = GramDPParams()
    sgd: SgdDPParams = SgdDPParams()

    def delta_for(self, n_users: int) -> float:
        """``delta``, or 1 / the number of train users when it is null (the one rule for every mechanism)."""
        if self.delta is not None:
            return self.delta
        if n_users < 2:  # delta = 1 would promise nothing
            raise ValueError(f"delta = 1 / train users needs at least 2 users with train events, got {n_users}")
        return 1.0 / n_users


class PrivacyParams(StrictModel):
    dp: DPParams = DPParams()
