"""Params of the `models` area."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.config.base import StrictModel
from recause.config.joint import DebiasMode, JointParams, NegativeSampling


class ItemKNNParams(StrictModel):
    k: int = Field(default=100, ge=1)
    shrink: float = Field(default=0.0, ge=0.0)


class EASEParams(StrictModel):
    reg_weight: float = Field(default=250.0, gt=0.0)
    max_items: int | None = Field(
        default=8_000,
        ge=1,
        description="Skip EASE (dense item x item solve, cubic in items) above this many items; None: never.",
    )


class JointStageParams(JointParams):
    """`train_joint`: the joint model fit on each split's train twice, as `joint` (no debiasing) and
    `joint_debiased` (``debias`` below); the JointParams knobs are shared by both."""

    # defaults tuned on ML-100K's validation part (README: the joint model); JointParams' own suit any data
    epochs: float = Field(default=20.0, gt=0.0, description="At most; validation each epoch stops it earlier.")
    batch_size: int = Field(default=2048, ge=2, description="Positives per optimizer step.")
    weight_decay: float = Field(default=0.05, ge=0.0, description="L2 on the embedding rows a batch touches.")
    negatives: NegativeSampling = Field(default="in_batch", description="in_batch (logQ-corrected) | uniform.")
    n_negatives: int = Field(default=512, ge=1, description="Negatives shared by a batch (softmax loss).")
    patience: int = Field(default=5, ge=1, description="Validations without improvement before stopping.")
    debias: DebiasMode = Field(default="ips", description="Debiasing of `joint_debiased` (`joint` always uses none).")
    use_text: bool = Field(default=True, description="Feed the items' language-model embeddings (from `embed`).")
    use_side_features: bool = Field(default=True, description="Feed user age/gender/occupation, item year/genres.")
    checkpoint_every: int = Field(default=50, ge=1, description="Optimizer steps between resumable checkpoints.")
    top_k: int = Field(default=50, ge=1, description="Recommendations per user in data/recommendations/topk.parquet.")
    serve: Literal["joint", "joint_debiased"] = Field(
        default="joint_debiased", description="The model behind topk.parquet and `recause recommend`."
    )


class ModelsParams(StrictModel):
    itemknn: ItemKNNParams = ItemKNNParams()
    ease: EASEParams = EASEParams()
    joint: JointStageParams = JointStageParams()
