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
    top_k: int = Field(default=50, ge=1)
    serve: JointVariant = "joint_debiased"


class ModelsParams(StrictModel):
    # Each baseline types its own knobs (a params class next to the model, in recause.models.baselines), so adding
    # one touches no file here; recause.models.registry checks this section against them when it builds the models.
    baselines: dict[str, dict[str, Any]] = Field(default_factory=dict)
    joint: JointStageParams = JointStageParams()
