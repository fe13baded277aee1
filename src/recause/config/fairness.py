"""Params of `fairness`: the fairness report (user groups, long-tail exposure, counterfactual flips) and the
long-tail re-ranker that the served champion may use.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from recause.config.base import StrictModel


class CounterfactualParams(StrictModel):
    flip: str = Field(default="gender", min_length=1)
    remove: list[str] = Field(default=["gender", "age", "occupation"], min_length=1)


class RerankParams(StrictModel):
    strength: float = Field(default=0.9, ge=0.0)
    candidates: int = Field(default=100, ge=1)
    curve: list[float] = Field(default=[0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6], min_length=2)
    served: bool = False

    @model_validator(mode="after")
    def _curve(self) -> RerankParams:
        if any(value < 0 for value in self.curve) or 0.0 not in self.curve:
            raise ValueError(f"curve strengths must be >= 0 and include 0 (the plain lists), got {self.curve}")
        return self


class FairnessTargetParams(StrictModel):
    gap_reduction: float = Field(default=0.5, gt=0.0, le=1.0)
    max_ndcg_loss: float = Field(default=0.03, ge=0.0, lt=1.0)


class FairnessParams(StrictModel):
    k: int = Field(default=10, ge=1)
    attributes: list[str] = Field(default=["gender", "age", "occupation"], min_length=1)
    min_group_users: int = Field(default=30, ge=1)
    n_boot: int = Field(default=100, ge=0)
    n_permutations: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    seed: int = 0
    head_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    counterfactual: CounterfactualParams = CounterfactualParams()
    rerank: RerankParams = RerankParams()
    target: FairnessTargetParams = FairnessTargetParams()

    @model_validator(mode="after")
    def _candidates(self) -> FairnessParams:
        if self.rerank.candidates < self.k:
            raise ValueError(f"rerank.candidates {self.rerank.candidates} is smaller than k {self.k}")
        return self
