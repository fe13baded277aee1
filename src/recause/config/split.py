"""Params of `split`: the train/valid/test protocol and its cold-item and intervened variants.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from recause.config.base import StrictModel


def check_shares(ratios: tuple[float, float, float], needed: int, what: str) -> tuple[float, float, float]:
    """Three non-negative shares summing to 1, the one at ``needed`` positive."""
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6 or ratios[needed] <= 0:
        raise ValueError(f"must be three non-negative shares summing to 1 with {what}, got {list(ratios)}")
    return ratios


class IntervenedParams(StrictModel):
    """The `intervened` variant (``recause.data.split.intervened_parts``): a test set with near-uniform exposure."""

    sample_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    ratios: tuple[float, float, float] = (0.25, 0.25, 0.5)

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        return check_shares(ratios, needed=2, what="a test share")


SplitProtocol = Literal["random", "temporal"]


class SplitParams(StrictModel):
    protocol: SplitProtocol = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 2020
    cold_item_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    recbole_dataset_name: str = "recause"
    intervened: IntervenedParams = IntervenedParams()

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        return check_shares(ratios, needed=0, what="a train share")
