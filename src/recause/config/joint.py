"""Params of the joint model (IDs + text + side features, with debiasing).

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.config.base import StrictModel

LossName = Literal["bpr", "softmax"]
NegativeSampling = Literal["uniform", "in_batch"]
AdaptorName = Literal["whiten_mlp", "moe"]
DebiasMode = Literal["none", "ips", "snips", "pda", "dr"]
PropensityModel = Literal["popularity", "learned"]


class JointParams(StrictModel):
    """ID embeddings + text adaptor + side features, trained on mini-batches of (user, item) positives."""

    dim: int = Field(default=64, ge=1)
    epochs: float = Field(default=1.0, gt=0.0)
    batch_size: int = Field(default=4096, ge=2)
    learning_rate: float = Field(default=5e-3, gt=0.0)
    weight_decay: float = Field(default=1e-6, ge=0.0)
    init_std: float = Field(default=0.01, gt=0.0)
    bias_init: Literal["popularity", "zero"] = "popularity"
    loss: LossName = "softmax"
    negatives: NegativeSampling = "uniform"
    n_negatives: int = Field(default=256, ge=1)
    logq_correction: bool = True
    adaptor: AdaptorName = "whiten_mlp"
    adaptor_hidden: int = Field(default=256, ge=1)
    n_experts: int = Field(default=4, ge=1)
    adaptor_trainable: bool = True
    debias: DebiasMode = "none"
    propensity_model: PropensityModel = "popularity"
    propensity_eta: float = Field(default=0.5, ge=0.0)
    propensity_clip: float = Field(default=0.05, gt=0.0, le=1.0)
    dr_rank: int = Field(default=16, ge=1)
    pda_gamma: float = Field(default=0.1, ge=0.0)
    pda_gamma_tilde: float = Field(default=0.0, ge=0.0)
    seed: int = 0
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    threads: int | None = Field(default=None, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    validate_every: int | None = Field(default=None, ge=1)
    validate_users: int = Field(default=2048, ge=1)
    patience: int = Field(default=3, ge=1)
    checkpoint_every: int = Field(default=50, ge=1)
    micro_batch_size: int | None = Field(default=None, ge=1)
