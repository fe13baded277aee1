"""Params of where work runs and how failed stages are retried (never a result).

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from recause.config.base import StrictModel


class RetryPolicy(StrictModel):
    retries: int = Field(default=0, ge=0)
    retry_delay_s: float = Field(default=5.0, ge=0.0)


class DaskParams(StrictModel):
    """Where `runner: dask` sends work: an existing scheduler, else a LocalCluster started for the stage."""

    address: str | None = None
    n_workers: int = Field(default=2, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: str = "auto"


class OrchestrationParams(StrictModel):
    runner: Literal["local", "dask"] = "local"
    dask: DaskParams = DaskParams()
    retries: dict[str, RetryPolicy] = Field(
        default_factory=lambda: {
            "default": RetryPolicy(retries=0, retry_delay_s=5.0),
            "gpu": RetryPolicy(retries=2, retry_delay_s=30.0),
        }
    )

    @field_validator("retries")
    @classmethod
    def _has_default(cls, retries: dict[str, RetryPolicy]) -> dict[str, RetryPolicy]:
        if "default" not in retries:
            raise ValueError("must define a 'default' policy")
        return retries
