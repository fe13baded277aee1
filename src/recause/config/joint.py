"""Typed parameters of the joint recommender (to become the `models.joint` section of params.yaml)."""

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

    dim: int = Field(default=64, ge=1, description="Width of the user and item vectors.")
    epochs: float = Field(default=1.0, gt=0.0, description="Passes over the positives (fractions allowed).")
    batch_size: int = Field(default=4096, ge=2, description="Positives per optimizer step.")
    learning_rate: float = Field(default=5e-3, gt=0.0)
    weight_decay: float = Field(
        default=1e-6,
        ge=0.0,
        description="L2 on the embedding rows a batch touches, and Adam's weight decay on the dense layers.",
    )
    init_std: float = Field(default=0.01, gt=0.0, description="Standard deviation of the initial ID embeddings.")
    bias_init: Literal["popularity", "zero"] = Field(
        default="popularity", description="Start item biases at the (debiased) log popularity, or at zero."
    )
    loss: LossName = "softmax"
    negatives: NegativeSampling = Field(
        default="uniform",
        description="uniform: items drawn uniformly; in_batch: other positives of the batch (a popularity sample).",
    )
    n_negatives: int = Field(default=256, ge=1, description="Negatives shared by a batch (softmax loss).")
    logq_correction: bool = Field(
        default=True, description="Subtract log sampling probability from in-batch softmax logits (uniform: no-op)."
    )
    adaptor: AdaptorName = "whiten_mlp"
    adaptor_hidden: int = Field(default=256, ge=1, description="Hidden width of the adaptor MLP(s).")
    n_experts: int = Field(default=4, ge=1, description="Experts of the `moe` adaptor.")
    adaptor_trainable: bool = Field(default=True, description="False freezes the adaptor (its output is cached).")
    debias: DebiasMode = "none"
    propensity_model: PropensityModel = Field(
        default="popularity",
        description="ips/snips/dr propensities: popularity^eta, or a logistic regression of logging on side features.",
    )
    propensity_eta: float = Field(
        default=0.5, ge=0.0, description="Propensity ~ popularity^eta (learned: ~ logging rate^eta)."
    )
    propensity_clip: float = Field(
        default=0.05, gt=0.0, le=1.0, description="Smallest propensity; inverse weights are at most 1/clip."
    )
    dr_rank: int = Field(
        default=16, ge=1, description="dr: rank of the imputation model (SVD of the ips-weighted log)."
    )
    pda_gamma: float = Field(default=0.1, ge=0.0, description="PDA: training score x popularity^gamma.")
    pda_gamma_tilde: float = Field(
        default=0.0, ge=0.0, description="PDA inference: x popularity^gamma_tilde (0 drops popularity)."
    )
    seed: int = 0
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto = CUDA when present.")
    threads: int | None = Field(default=None, ge=1, description="CPU threads for torch (None: torch's default).")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many optimizer steps.")
    validate_every: int | None = Field(
        default=None, ge=1, description="Steps between validations (None: once per epoch); needs `valid`."
    )
    validate_users: int = Field(default=2048, ge=1, description="Users sampled (seeded) for validation NDCG@10.")
    patience: int = Field(default=3, ge=1, description="Validations without improvement before stopping.")
    checkpoint_every: int = Field(default=50, ge=1, description="Optimizer steps between resumable checkpoints.")
    micro_batch_size: int | None = Field(
        default=None, ge=1, description="Positives per forward pass (None: the whole batch); halved on out-of-memory."
    )
