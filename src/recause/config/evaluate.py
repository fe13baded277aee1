"""Params of the `evaluate` area."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from recause.config.base import StrictModel

MetricName = Literal["recall", "ndcg", "mrr", "hit", "precision"]


class EvaluateParams(StrictModel):
    ks: tuple[int, ...] = (10, 20)
    metrics: tuple[MetricName, ...] = ("recall", "ndcg", "mrr", "hit", "precision")
    batch_users: int = Field(default=2048, ge=1)
    tie_seed: int = Field(default=0, description="Seed of the fixed random order that breaks score ties.")
    propensity_eta: float = Field(
        default=0.5, ge=0.0, description="Unbiased (SNIPS) metrics: exposure propensity ~ train popularity^eta."
    )
    propensity_clip: float = Field(default=0.01, gt=0.0, le=1.0, description="Smallest propensity of those metrics.")

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"must be a non-empty list of positive integers, got {list(ks)}")
        return tuple(sorted(set(ks)))
