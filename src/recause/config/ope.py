"""Params of `ingest_bandit` and `ope`: the bandit logs and the off-policy estimators.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recause.config.base import StrictModel

EstimatorName = Literal["replay", "ipw", "snipw", "dm", "dr", "sndr", "switch_dr", "dr_os"]


class OBDSource(StrictModel):
    """The Open Bandit Dataset sample shipped inside the obp wheel (read as files, never imported)."""

    package: str = "obp"
    version: str = "0.4.1"
    path: str = "obp/dataset/obd"
    prior_path: str = "obp/policy/conf/prior_bts.yaml"
    cache_dir: str = "data/external/wheels"


class BanditParams(StrictModel):
    source: Literal["obd", "directory"] = "obd"
    obd: OBDSource = OBDSource()
    directory: str | None = None
    policies: tuple[Literal["random", "bts"], ...] = ("random", "bts")
    campaigns: tuple[str, ...] = ("all", "men", "women")

    @model_validator(mode="after")
    def _directory_given(self) -> BanditParams:
        if self.source == "directory" and not self.directory:
            raise ValueError("bandit.source is 'directory' but bandit.directory is not set")
        return self


class OPEParams(StrictModel):
    estimators: tuple[EstimatorName, ...] = ("replay", "ipw", "snipw", "dm", "dr", "sndr", "switch_dr", "dr_os")
    n_runs: int = Field(default=30, ge=1)
    n_folds: int = Field(default=3, ge=1)
    seed: int = 12345
    bts_simulations: int = Field(default=100_000, ge=100)
    clip: float | None = Field(default=None, gt=0)
    switch_tau: float = Field(default=100.0, gt=0)
    dr_os_lambda: float = Field(default=100.0, ge=0)
    n_bootstrap: int = Field(default=200, ge=0)
