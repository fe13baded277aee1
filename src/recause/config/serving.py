"""Params of online serving (`recause api`): where it listens, the exploration policy whose propensities are logged,
and the limits that keep bad input from costing the server anything.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recause.config.base import StrictModel

ServingPolicy = Literal["greedy", "epsilon", "softmax"]


class ServingParams(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    api_key_env: str = Field(default="RECAUSE_API_KEY", min_length=1)
    policy: ServingPolicy = "greedy"
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0)
    temperature: float = Field(default=0.05, gt=0.0)
    exploration_pool: int = Field(default=50, ge=1)
    propensity_samples: int = Field(default=4096, ge=64)
    seed: int = 0
    log_exposure: bool = True
    unknown_user: Literal["cold_start", "not_found"] = "cold_start"
    default_k: int = Field(default=10, ge=1)
    max_k: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=65_536, ge=1024)
    max_liked_items: int = Field(default=1_000, ge=1)
    max_events_per_request: int = Field(default=1_000, ge=1)
    reload_interval_s: float = Field(default=2.0, gt=0.0)

    @model_validator(mode="after")
    def _bounds(self) -> ServingParams:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k {self.default_k} exceeds max_k {self.max_k}")
        if self.policy != "greedy" and self.exploration_pool < self.default_k:
            raise ValueError(f"exploration_pool {self.exploration_pool} is smaller than default_k {self.default_k}")
        return self
