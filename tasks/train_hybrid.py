"""Stage `train_hybrid`: the hybrid EASE (recause.models.hybrid) on the main split and its intervened and cold-item
variants, plain (`hybrid_ease`) and popularity-deconfounded (`hybrid_ease_debiased`).

For each split every setting of the `models.hybrid` grid is fit on that split's train, with the item embeddings
from `embed`, and judged on that split's valid. `hybrid_ease` is the best without deconfounding. The debias
exponent is chosen on the intervened valid only (its exposure is near-uniform, so it rewards removing the
popularity the logs carry): that setting, refit on the intervened and on the main train, is `hybrid_ease_debiased`.
Then the cold head's weight (lm_retrieval's item-item head in the columns of items without train events) is
chosen for each model on valid plus pseudo-cold items held out of train. Test and the cold part are never read.
Saved under models/hybrid/<split>/; every setting's valid score goes to metrics/train_hybrid.json.

With `privacy.dp.enabled`, each split's models fit on that split's differentially private Gram release alone
(recause.privacy.gram: its guarantee, and what it does not cover, are there), every ridge of the grid grown by the
release's `ridge_added`; the release's epsilon, delta and noise go to the metrics and the models' JSON ("privacy").
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from recause.artifacts import atomic_path, read_parquet, save_model, write_json
from recause.config import load_params
from recause.config.models import HybridStageParams
from recause.config.privacy import DPParams
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.evaluation.ranking import tie_priority
from recause.layout import LAYOUT
from recause.models.hybrid import (
    HybridEASE,
    HybridEASEDebiased,
    HybridEASEParams,
    select_cold_weight,
    select_on_valid,
    settings,
)
from recause.privacy.gram import private_gram
from tasks._stage import run_stage
from tasks._training import item_embeddings, lm_retrieval

SPLITS = ("intervened", "main", "cold_item")  # intervened first: it chooses the debiased variant's setting
UNBIASED_VALID = "intervened"
COLD_START = "cold_item"
OUTPUT = LAYOUT.hybrid
METRICS = LAYOUT.metrics_file("train_hybrid")


def split_matrices(split: str, items: IdIndex) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    directory = LAYOUT.split_dir(split)
    parts = {p: read_parquet(directory / f"{p}.parquet", f"{p} part ({directory})") for p in ("train", "valid")}
    users = split_users(parts.values())
    return interaction_matrix(parts["train"], users, items), interaction_matrix(parts["valid"], users, items)


def with_cold_weight(
    model: HybridEASE,
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    stage: HybridStageParams,
    priority: np.ndarray,
    held_out: float,
    release: dict[str, np.ndarray],
) -> tuple[HybridEASE, list[dict]]:
    """``model``'s setting with the cold weight that is best on valid (plus the ``held_out`` share of train items as
    pseudo-cold items), refit on all of train (or on the private ``release``'s gram and counts, when given)."""
    scores = select_cold_weight(
        train, valid, model, stage.cold_weights, held_out, stage.cold_validation_seed, stage.metric, priority, **release
    )
    weight = max(scores, key=lambda pair: pair[1])[0]
    chosen = type(model)(model.params.model_copy(update={"cold_weight": weight}), model.embeddings, model.cold_head)
    fitted = chosen.fit_gram(**release) if release else chosen.fit(train)
    return fitted, [{"cold_weight": w, "value": round(v, 6)} for w, v in scores]


def fit_split(
    split: str, items: IdIndex, grid: list[HybridEASEParams], stage: HybridStageParams, priority: np.ndarray,
    embeddings: np.ndarray, cold_head: np.ndarray | None, debiased: HybridEASEParams | None, dp: DPParams,
) -> tuple[dict[str, HybridEASE], dict]:  # fmt: skip
    """The split's plain model (and its debiased one: chosen here on the unbiased valid, else ``debiased``)."""
    train, valid = split_matrices(split, items)
    private = private_gram(train, dp, split) if dp.enabled else None
    release = {} if private is None else {"gram": private.gram, "counts": private.counts}
    if private is not None:
        grid = [s.model_copy(update={"reg_weight": s.reg_weight + private.ridge}) for s in grid]
    exponents = tuple(stage.debias_exponents) if split == UNBIASED_VALID else (0.0,)
    # Pseudo-cold items only where the split's question is cold start: elsewhere the items without train events
    # are the rarest ones, not a random share, and their own valid judges the cold weight.
    held_out = stage.cold_validation_fraction if split == COLD_START else 0.0
    started = time.perf_counter()
    chosen = select_on_valid(train, valid, embeddings, grid, stage.metric, priority, exponents, **release)
    setting = {HybridEASE: chosen.best}
    if split == UNBIASED_VALID or (split == "main" and debiased is not None):
        setting[HybridEASEDebiased] = chosen.debiased if split == UNBIASED_VALID else debiased
    models, cold = {}, {}
    for kind, params in setting.items():
        model = kind(params, embeddings, cold_head)
        models[kind.name], cold[kind.name] = with_cold_weight(model, train, valid, stage, priority, held_out, release)
    report = {
        "chosen": {name: model.params.model_dump() for name, model in models.items()},
        f"valid_{stage.metric}": [{**s.model_dump(), "value": round(v, 6)} for s, v in chosen.scores],
        "valid_by_cold_weight": cold,
        "seconds": round(time.perf_counter() - started, 2),
        **({} if private is None else {"privacy": private.summary()}),
    }
    best = max(v for s, v in chosen.scores if s.debias_exponent == 0)
    ease = [v for s, v in chosen.scores if s.popularity_reg == s.content_weight == s.debias_exponent == 0]
    print(
        f"train_hybrid [{split}]: {len(chosen.scores)} settings in {report['seconds']}s; best valid {stage.metric} "
        f"{best:.4f} (EASE in the grid: {f'{max(ease):.4f}' if ease else 'absent'})"
    )
    for name, model in models.items():
        print(f"  {name}: {model.params.model_dump()}")
    return models, report


def main() -> None:
    params = load_params()
    stage = params.models.hybrid
    items = IdIndex.from_values(read_parquet(LAYOUT.items, "items table")["item_id"])
    if stage.max_items is not None and len(items) > stage.max_items:
        print(f"train_hybrid: skipped ({len(items):,} items exceed models.hybrid.max_items {stage.max_items:,})")
        with atomic_path(OUTPUT) as tmp:
            tmp.mkdir(parents=True)
        write_json(METRICS, {"skipped": f"{len(items)} items > max_items {stage.max_items}"})
        return
    embeddings = item_embeddings(items)
    head = lm_retrieval(items)
    cold_head = head.item_item() if hasattr(head, "item_item") else None
    if cold_head is None:
        print("train_hybrid: the two-tower has no collaborative head (finetune.head): cold items score from content")
    grid = settings(stage.reg_weights, stage.popularity_regs, stage.content_weights, stage.content_power)
    grid = [s.model_copy(update={"debias_offset": stage.debias_offset}) for s in grid]
    priority = tie_priority(len(items), params.evaluate.tie_seed)
    report: dict[str, dict] = {}
    debiased = None
    with atomic_path(OUTPUT) as tmp:
        for split in SPLITS:
            models, report[split] = fit_split(
                split, items, grid, stage, priority, embeddings, cold_head, debiased, params.privacy.dp
            )
            if HybridEASEDebiased.name in models and split == UNBIASED_VALID:
                debiased = models[HybridEASEDebiased.name].params
            (tmp / split).mkdir(parents=True)
            privacy = {key: report[split][key] for key in ("privacy",) if key in report[split]}
            for model in models.values():
                save_model(tmp / split, model, {"item_ids": items.ids.tolist(), "split": split, **privacy})
    write_json(METRICS, report)


if __name__ == "__main__":
    run_stage(main)
