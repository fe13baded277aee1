"""Params of `evaluate`: the full-ranking protocol and its unbiased estimates.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from recause.config.base import StrictModel

# the @k metrics (recause.evaluation.metrics), then the whole-ranking ones without k (recause.evaluation.auc)
MetricName = Literal["recall", "ndcg", "mrr", "hit", "precision", "f1", "gauc", "auc"]


class EvaluateParams(StrictModel):
    ks: tuple[int, ...] = (10, 20)
    metrics: tuple[MetricName, ...] = ("recall", "ndcg", "mrr", "hit", "precision", "f1", "gauc", "auc")
    batch_users: int = Field(default=2048, ge=1)
    tie_seed: int = 0
    propensity_eta: float = Field(default=0.5, ge=0.0)
    propensity_clip: float = Field(default=0.01, gt=0.0, le=1.0)

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"must be a non-empty list of positive integers, got {list(ks)}")
        return tuple(sorted(set(ks)))
