"""Params of the causal stages (variables, discovery, estimation, refutation, uplift, explanations).

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recause.config.base import StrictModel

VariableName = Literal[
    "age_bucket", "gender", "occupation", "item_year", "popularity_bucket", "genre_overlap", "rating"
]  # fmt: skip
DiscoveryMethod = Literal["pc", "ges", "fci"]
EstimatorName = Literal[
    "linear_regression",
    "propensity_score_weighting",
    "propensity_score_stratification",
    "propensity_score_matching",
    "doubly_robust",
]
RefuterName = Literal[
    "placebo_treatment", "random_common_cause", "data_subset", "bootstrap", "dummy_outcome", "unobserved_common_cause"
]  # fmt: skip


class VariablesParams(StrictModel):
    """The variables table built from the data: one row per (user, item) rating."""

    columns: tuple[VariableName, ...] = (
        "age_bucket", "gender", "occupation", "item_year", "popularity_bucket", "genre_overlap", "rating"
    )  # fmt: skip
    age_bucket_edges: tuple[int, ...] = (18, 25, 35, 45, 56)
    popularity_buckets: int = Field(default=5, ge=2)
    sample_rows: int = Field(default=5000, ge=100)


class DiscoveryParams(StrictModel):
    methods: tuple[DiscoveryMethod, ...] = ("pc", "ges")
    alpha: float = Field(default=0.01, gt=0, lt=1)
    ci_test: Literal["auto", "fisherz", "chisq", "gsq"] = "auto"  # auto: fisherz if all numeric, else gsq
    # Background knowledge: a variable may only cause variables in its own or a later tier.
    tiers: tuple[tuple[str, ...], ...] = (
        ("age_bucket", "gender", "occupation", "item_year"),
        ("popularity_bucket", "genre_overlap"),
        ("rating",),
    )
    # (cause, effect) edges never allowed. Default: a film's year and who rates it are not causes of
    # each other; any dependence between them is selection (which users rate which films).
    forbidden: tuple[tuple[str, str], ...] = tuple(
        pair for user in ("age_bucket", "gender", "occupation") for pair in (("item_year", user), (user, "item_year"))
    )
    # (cause, effect) edges always present: the effects the questions ask about are kept possible.
    required: tuple[tuple[str, str], ...] = (("genre_overlap", "rating"), ("popularity_bucket", "rating"))
    # Discovery quality is measured on data simulated from a known DAG over the same variables
    # (linear-Gaussian, consistent with the tiers): its size and edge density.
    truth_rows: int = Field(default=5000, ge=100)
    truth_edge_probability: float = Field(default=0.3, gt=0, le=1)
    random_baseline_draws: int = Field(default=100, ge=1)


class CausalQuestion(StrictModel):
    """What does ``treatment`` do to ``outcome``? A binary treatment is built as ``treatment >= threshold``."""

    treatment: str
    outcome: str
    threshold: float | None = None  # None: the treatment column is already 0/1
    effect_modifiers: tuple[str, ...] = ()


class RefuteParams(StrictModel):
    refuters: tuple[RefuterName, ...] = (
        "placebo_treatment", "random_common_cause", "data_subset", "bootstrap", "dummy_outcome",
        "unobserved_common_cause",
    )  # fmt: skip
    num_simulations: int = Field(default=20, ge=2)
    p_value_threshold: float = Field(default=0.05, gt=0, lt=1)
    subset_fraction: float = Field(default=0.8, gt=0, lt=1)


class SemiSyntheticParams(StrictModel):
    """Planted truth on the real MovieLens-100K users x items (after Sato et al., RecSys 2020)."""

    rank: int = Field(default=16, ge=1)
    base_logit: float = -2.0  # natural (unrecommended) consumption: sigmoid(base + preference_weight * z)
    preference_weight: float = 1.0
    effect_logit: float = 1.5  # lift of a recommendation on the logit scale at its strongest
    effect_peak: float = 0.5  # preference z-score where recommendations help most (heterogeneous effect)
    effect_width: float = 1.0
    propensity_logit: float = -1.0  # logging policy: P(recommended) = sigmoid(logit + weight * z [+ a * u])
    propensity_weight: float = 1.0
    # The logging policy explores: every pair is recommended with at least this probability (and at most
    # 1 - it). Without a floor, propensities near 0 make weighting estimators clip, hence biased.
    propensity_floor: float = Field(default=0.05, ge=0, lt=0.5)
    # A confounder u ~ N(0, 1) is planted when either weight is non-zero: a * u joins the propensity's
    # logit and b * u the outcome's. Opposite signs (a promoted item users like less) mask the effect.
    confounder_on_treatment: float = 0.0
    confounder_on_outcome: float = 0.0
    hide_confounder: bool = True  # when planted, the estimator does not see it
    zero_effect: bool = False
    sample_rows: int = Field(default=50_000, ge=1000)


class UpliftParams(StrictModel):
    """Uplift (causal-effect) ranker and its accuracy baseline (recause.causal.uplift), tuned on ML-100K."""

    dim: int = Field(default=16, ge=1)
    epochs: int = Field(default=20, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    regularisation: float = Field(default=3e-3, ge=0)
    propensity_cap: float = Field(default=0.05, gt=0, le=0.5)
    ks: tuple[int, ...] = (10, 100)
    batch_users: int = Field(default=128, ge=1)
    init_scale: float = Field(default=0.01, gt=0)
    transfer_item_factors: bool = True
    effect_regularisation: float = Field(default=0.3, ge=0)


class ExplainParams(StrictModel):
    """The batch of explained recommendations: every user's top-k, each with the history item behind it."""

    k: int = Field(default=10, ge=1)


class CausalParams(StrictModel):
    seed: int = 0
    variables: VariablesParams = VariablesParams()
    discovery: DiscoveryParams = DiscoveryParams()
    questions: dict[str, CausalQuestion] = Field(
        default_factory=lambda: {
            "genre_match_on_rating": CausalQuestion(treatment="genre_overlap", outcome="rating", threshold=0.5),
            "popular_item_on_rating": CausalQuestion(treatment="popularity_bucket", outcome="rating", threshold=4),
        }
    )
    estimators: tuple[EstimatorName, ...] = (
        "linear_regression", "propensity_score_weighting", "propensity_score_stratification",
        "propensity_score_matching", "doubly_robust",
    )  # fmt: skip
    # The one refuted and reported as the answer. Not doubly_robust: DoWhy 0.14 refits it on placebo
    # treatments with the original propensity model, so its placebo refutation is meaningless.
    estimate_rows: int = Field(default=20_000, ge=100)
    strata: int = Field(default=50, ge=2)
    primary_estimator: EstimatorName = "propensity_score_weighting"
    refute: RefuteParams = RefuteParams()
    semi_synthetic: SemiSyntheticParams = SemiSyntheticParams()
    uplift: UpliftParams = UpliftParams()
    explain: ExplainParams = ExplainParams()

    @model_validator(mode="after")
    def _primary_is_estimated(self) -> CausalParams:
        if self.primary_estimator not in self.estimators:
            raise ValueError(f"primary_estimator '{self.primary_estimator}' must be one of estimators")
        return self
