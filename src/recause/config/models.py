"""Params of the `models` area: every baseline's knobs (by model name) and the joint model's stage."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field

from recause.config.base import StrictModel
from recause.config.joint import DebiasMode, JointParams, NegativeSampling

# The joint model is fit twice per split: plain and debiased. These names are the models' names everywhere
# (recause.models.registry re-exports them for the stages and serving).
JointVariant = Literal["joint", "joint_debiased"]
JOINT_VARIANTS: tuple[JointVariant, ...] = get_args(JointVariant)


class JointStageParams(JointParams):
    """`train_joint`: the joint model fit on each split's train twice, as `joint` (no debiasing) and
    `joint_debiased` (``debias`` below); the JointParams knobs are shared by both."""

    # defaults tuned on ML-100K's validation part (README: the joint model); JointParams' own suit any data
    epochs: float = Field(default=20.0, gt=0.0)
    batch_size: int = Field(default=2048, ge=2)
    weight_decay: float = Field(default=0.05, ge=0.0)
    negatives: NegativeSampling = "in_batch"
    n_negatives: int = Field(default=512, ge=1)
    patience: int = Field(default=5, ge=1)
    debias: DebiasMode = "ips"
    use_text: bool = True
    use_side_features: bool = True
    checkpoint_every: int = Field(default=50, ge=1)


class HybridStageParams(StrictModel):
    """`train_hybrid`: the hybrid EASE (recause.models.hybrid) on the main split and its cold-item and intervened
    variants, every combination of these values fit on train and the best on valid kept (0 weights include EASE);
    the debiased variant's exponent is chosen on the intervened valid only."""

    reg_weights: list[float] = Field(default_factory=lambda: [250.0, 400.0, 600.0], min_length=1)
    popularity_regs: list[float] = Field(default_factory=lambda: [0.0, 0.5], min_length=1)
    content_weights: list[float] = Field(default_factory=lambda: [0.0, 25.0, 100.0], min_length=1)
    content_power: int = Field(default=3, ge=1)
    cold_weights: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 4.0], min_length=1)
    cold_validation_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    cold_validation_seed: int = 0
    debias_exponents: list[float] = Field(default_factory=lambda: [0.0, 0.4, 0.5, 0.6], min_length=1)
    debias_offset: float = Field(default=10.0, gt=0.0)
    metric: str = Field(default="ndcg@10", pattern=r"^(ndcg|recall|mrr|hit|precision)@\d+$")
    max_items: int | None = Field(default=8_000, ge=1)


class ModelsParams(StrictModel):
    # Each baseline types its own knobs (a params class next to the model, in recause.models.baselines), so adding
    # one touches no file here; recause.models.registry checks this section against them when it builds the models.
    baselines: dict[str, dict[str, Any]] = Field(default_factory=dict)
    joint: JointStageParams = JointStageParams()
    hybrid: HybridStageParams = HybridStageParams()
