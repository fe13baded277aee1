"""Params of the language-model stages (`pretrain`, `finetune`, `embed`).

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, model_validator

from recause.config.base import StrictModel


class EncoderParams(StrictModel):
    """The pretrained language model that reads item text, and how it is run."""

    model: str = "minilm-l6"
    max_length: int = Field(default=48, ge=8)
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    batch_size: int = Field(default=128, ge=1)
    threads: int | None = Field(default=None, ge=1)
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"


class TrainingParams(StrictModel):
    """What every resumable training step shares."""

    epochs: float = Field(default=1.0, gt=0.0)
    max_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=2)
    micro_batch_size: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    temperature: float = Field(default=0.05, gt=0.0)
    trainable_layers: int | None = Field(default=None, ge=0)
    seed: int = 0
    checkpoint_every: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _micro_fits_batch(self) -> TrainingParams:
        if self.micro_batch_size is not None and self.micro_batch_size > self.batch_size:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} exceeds batch_size {self.batch_size}")
        return self


class PretrainParams(TrainingParams):
    """Self-supervised domain adaptation on item text: SimCSE (+ MLM when the checkpoint has a head)."""

    learning_rate: float = Field(default=3e-5, gt=0.0)
    trainable_layers: int | None = Field(default=2, ge=0)
    checkpoint_every: int = Field(default=10, ge=1)
    extra_text: tuple[str, ...] = ()
    mlm_weight: float = Field(default=0.1, ge=0.0)
    mlm_probability: float = Field(default=0.15, gt=0.0, lt=1.0)
    quality_sample: int = Field(default=512, ge=2)


class CollaborativeHeadParams(StrictModel):
    """lm_retrieval's collaborative head (``collaborative_head.py``); (gamma, reg) chosen on validation items."""

    gammas: list[PositiveFloat] = Field(default=[1.0, 2.0, 5.0, 10.0, 20.0], min_length=1)
    regs: list[PositiveFloat] = Field(default=[0.03, 0.1, 0.3, 1.0, 3.0], min_length=1)
    item_reg: PositiveFloat = 250.0
    max_anchors: int = Field(default=4000, ge=1)


class FinetuneParams(TrainingParams):
    """Two-tower behaviour fine-tuning: user history -> next item, in-batch negatives, logQ correction."""

    max_steps: int | None = Field(default=150, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0.0)
    trainable_layers: int | None = Field(default=2, ge=0)
    history_length: int = Field(default=50, ge=1)
    head_learning_rate: float = Field(default=1e-3, gt=0.0)
    logq_correction: bool = True
    refresh_every: int = Field(default=100, ge=1)
    validation_item_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    validate_every: int = Field(default=25, ge=1)
    retrieval_head: Literal["collaborative", "learned"] = "collaborative"
    collaborative_head: CollaborativeHeadParams = Field(default_factory=lambda: CollaborativeHeadParams())
