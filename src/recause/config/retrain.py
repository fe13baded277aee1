"""Params of scheduled retraining and its champion/challenger gate.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from recause.config.base import StrictModel


class GateParams(StrictModel):
    model: str = "champion"
    metric: str = "ndcg@10"
    min_improvement: float = 0.0
    min_holdout_users: int = Field(default=1, ge=1)
    off_policy: Literal["ipw", "snipw"] | None = "snipw"  # reported beside the verdict, never deciding it

    @field_validator("metric")
    @classmethod
    def _metric_at_k(cls, metric: str) -> str:
        name, sep, k = metric.partition("@")
        if not sep or not k.isdigit() or not name:
            raise ValueError("expected METRIC@K, e.g. ndcg@10")
        return metric


class RetrainParams(StrictModel):
    schedule_cron: str = "0 3 * * 1"
    timezone: str = "UTC"
    stages: list[str] | None = None
    gate: GateParams = GateParams()
    remote: str = ".recause/dvc-remote"
    remote_name: str = "recause-champion"
    commit: bool = True
