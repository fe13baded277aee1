"""Params of the `orchestration` area."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from recause.config.base import StrictModel


class RetryPolicy(StrictModel):
    retries: int = Field(default=0, ge=0)
    retry_delay_s: float = Field(default=5.0, ge=0.0)


class DaskParams(StrictModel):
    """Where `runner: dask` sends work: an existing scheduler, else a LocalCluster started for the stage."""

    address: str | None = Field(
        default=None, description="Scheduler address, e.g. tcp://10.0.0.5:8786 (None: start a LocalCluster)."
    )
    n_workers: int = Field(default=2, ge=1, description="LocalCluster workers (processes).")
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: str = Field(default="auto", description="Per LocalCluster worker, e.g. '4GiB' or 'auto'.")


class OrchestrationParams(StrictModel):
    runner: Literal["local", "dask"] = Field(
        default="local",
        description="Where the naturally parallel work inside stages runs; results are the same either way.",
    )
    dask: DaskParams = DaskParams()
    retries: dict[str, RetryPolicy] = Field(
        default_factory=lambda: {
            "default": RetryPolicy(retries=0, retry_delay_s=5.0),
            "gpu": RetryPolicy(retries=2, retry_delay_s=30.0),
        },
        description="Retry policy per dvc.yaml stage tag; 'default' applies to untagged stages.",
    )

    @field_validator("retries")
    @classmethod
    def _has_default(cls, retries: dict[str, RetryPolicy]) -> dict[str, RetryPolicy]:
        if "default" not in retries:
            raise ValueError("must define a 'default' policy")
        return retries
