"""Params of champion selection (`select_champion`): the criterion, and which variant is served.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.config.base import StrictModel


class ChampionParams(StrictModel):
    metric: str = Field(default="ndcg@10", pattern=r"^(ndcg|recall|mrr|hit|precision)@\d+$")
    split: Literal["valid"] = "valid"  # selection never reads test: no other value is accepted
    tie_tolerance: float = Field(default=0.0, ge=0.0)
    top_k: int = Field(default=50, ge=1)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    serve_debiased: bool = False
