"""Params of scheduled retraining (section `retrain` of params.yaml)."""

from __future__ import annotations

from pydantic import Field, field_validator

from recause.config.base import StrictModel


class GateParams(StrictModel):
    model: str = Field(default="ease", description="Model (models/baselines/<model>) the gate compares.")
    metric: str = Field(default="ndcg@10", description="Ranking metric compared on the frozen holdout.")
    min_improvement: float = Field(
        default=0.0, description="Challenger must reach champion + this (absolute) to be promoted."
    )
    min_holdout_users: int = Field(default=1, ge=1, description="Fewer users in the holdout than this: reject.")

    @field_validator("metric")
    @classmethod
    def _metric_at_k(cls, metric: str) -> str:
        name, sep, k = metric.partition("@")
        if not sep or not k.isdigit() or not name:
            raise ValueError("expected METRIC@K, e.g. ndcg@10")
        return metric


class RetrainParams(StrictModel):
    schedule_cron: str = Field(default="0 3 * * 1", description="Cron of the `retrain` deployment (weekly).")
    timezone: str = Field(default="UTC", description="Time zone of the cron schedule.")
    stages: list[str] | None = Field(
        default=None, description="Stages the challenger re-runs (and what they need); null: the whole DAG."
    )
    gate: GateParams = GateParams()
    remote: str = Field(default=".recause/dvc-remote", description="DVC remote (directory or URL) champions go to.")
    remote_name: str = Field(default="recause-champion", description="Name of that remote in .dvc/config.local.")
    commit: bool = Field(default=True, description="Commit dvc.lock, params.yaml and the pointer on promotion.")
