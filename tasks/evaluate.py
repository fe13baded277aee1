"""Stage `evaluate`: full-ranking metrics of every model on valid and test, cold start on `cold`, and `intervened`.

valid/test: the main split, every model; on test also SNIPS-weighted (unbiased under the popularity
propensity model) Recall/NDCG and the popularity bias of the top lists. cold: the cold-item variant,
where only models that can score items without interactions compete (text retrieval, and the joint
models fit on that variant's train, which reach cold items through their text), next to `pop` fit on
that variant's train (cold items have no events there, so it is the random-order floor).
intervened: the test set with near-uniform exposure, for the models fit on that variant's train.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm import tqdm

from recause.artifacts import atomic_path, load_model, read_parquet, require_file, write_json
from recause.config import load_params
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.evaluation.protocol import MIXED_SPLITS, evaluate_all
from recause.evaluation.report import popularity_figure, ranking_figure
from recause.layout import LAYOUT
from recause.models.base import Recommender
from recause.models.baselines.ease import EASE
from recause.models.baselines.pop import Pop
from recause.models.hybrid import HybridEASE
from recause.models.joint import JointModel
from recause.models.language.retrieval import TfidfKNN, lm_retrieval_from_heads
from recause.models.registry import JOINT_VARIANTS, load_fitted_baselines
from recause.parallel import open_runner
from tasks._stage import run_stage
from tasks._training import item_embeddings, item_texts

PROCESSED_DIR = LAYOUT.processed
COLD_DIR = PROCESSED_DIR / "cold_item"
INTERVENED_DIR = PROCESSED_DIR / "intervened"
JOINT_DIR = LAYOUT.joint
MODELS_DIR = LAYOUT.baselines
TWO_TOWER = LAYOUT.finetuned
METRICS = LAYOUT.metrics_file("ranking")
PLOTS_DIR = LAYOUT.plot_dir("ranking")


def read_parts(directory: Path, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    return {name: read_parquet(directory / f"{name}.parquet", f"{name} part ({directory})") for name in names}


def lm_retrieval(items: IdIndex) -> Recommender:
    """Item embeddings from `embed`, aligned to ``items``, with the two-tower heads from `finetune`."""
    from safetensors.numpy import load_file

    heads = load_file(str(require_file(TWO_TOWER / "two_tower.safetensors", "two-tower heads")))
    config = json.loads((TWO_TOWER / "two_tower.json").read_text(encoding="utf-8"))
    return lm_retrieval_from_heads(item_embeddings(items), heads, config["temperature"])


def load_joint(split: str, parts: dict[str, pd.DataFrame], items: IdIndex) -> dict[str, Recommender]:
    """`joint` and `joint_debiased` fit on ``split``'s train, checked to share evaluate's user and item axes."""
    models = {}
    for name in JOINT_VARIANTS:
        model, meta = load_model(JOINT_DIR / split, name, {name: JointModel})
        users = split_users(parts.values())
        if meta["user_ids"] != users.ids.tolist() or meta["item_ids"] != items.ids.tolist():
            raise RuntimeError(f"{JOINT_DIR / split}/{name} was fit on other users or items: re-run `train_joint`")
        models[name] = model
    return models


def load_hybrid(split: str, items: IdIndex) -> dict[str, Recommender]:
    """The hybrid EASE `train_hybrid` chose for ``split`` (none when it skipped itself), on evaluate's item axis."""
    directory = LAYOUT.hybrid / split
    if not (directory / f"{HybridEASE.name}.json").exists():
        return {}
    model, meta = load_model(directory, HybridEASE.name, {HybridEASE.name: HybridEASE})
    if meta["item_ids"] != items.ids.tolist():
        raise RuntimeError(f"{directory}/{HybridEASE.name} was fit on other items: re-run `train_hybrid`")
    return {HybridEASE.name: model}


def refit_on(parts: dict[str, pd.DataFrame], items: IdIndex, loaded: dict) -> dict[str, Recommender]:
    """Pop, and EASE with the main split's knobs, fit on a variant's own train (the main train holds the
    variant's held-out events, so the main split's fits cannot be judged there)."""
    train = interaction_matrix(parts["train"], split_users(parts.values()), items)
    refit: dict[str, Recommender] = {"pop": Pop().fit(train)}
    if "ease" in loaded:
        refit["ease"] = EASE(loaded["ease"][0].params).fit(train)
    return refit


def main() -> None:
    all_params = load_params()
    params = all_params.evaluate
    parts = read_parts(PROCESSED_DIR, ("train", "valid", "test"))
    cold_parts = read_parts(COLD_DIR, ("train", "valid", "test", "cold"))
    intervened_parts = read_parts(INTERVENED_DIR, ("train", "valid", "test"))
    loaded = load_fitted_baselines(MODELS_DIR)  # every registered baseline train_baselines did not skip
    item_ids = {tuple(meta["item_ids"]) for _, meta in loaded.values()}
    if len(item_ids) != 1:
        raise RuntimeError("baseline models were trained on different item vocabularies")
    items = IdIndex(np.asarray(next(iter(item_ids)), dtype=str))
    texts = item_texts().set_index("item_id")["text"]
    content: dict[str, Recommender] = {
        "tfidf_knn": TfidfKNN.from_texts(texts.reindex(items.ids).fillna("").tolist()),
        "lm_retrieval": lm_retrieval(items),
    }
    models = {**{name: model for name, (model, _) in loaded.items()}, **content, **load_joint("main", parts, items)}
    models |= load_hybrid("main", items)
    cold_models = {
        **refit_on(cold_parts, items, loaded),
        **content,
        **load_joint("cold_item", cold_parts, items),
        **load_hybrid("cold_item", items),
    }
    # on `intervened` only models fit on its own train compete: the main train holds its test events
    intervened_models = {
        **refit_on(intervened_parts, items, loaded),
        **load_joint("intervened", intervened_parts, items),
    }

    def progress(it, desc):  # noqa: ANN001, ANN202
        return tqdm(it, desc=desc, leave=False, disable=None)

    with open_runner(all_params.orchestration) as runner:
        segments = 2 * len(models) + (1 + len(MIXED_SPLITS)) * len(cold_models) + len(intervened_models)
        if runner.where != "local":
            print(f"evaluate: {segments} (split, model) segments on {runner.where}")
        shared = {"items": items, "params": params, "progress": progress, "runner": runner}
        results = evaluate_all(parts, models, splits=("valid", "test"), unbiased=("test",), **shared)
        results |= evaluate_all(cold_parts, cold_models, splits=("cold", *MIXED_SPLITS), **shared)
        intervened = evaluate_all(intervened_parts, intervened_models, splits=("test",), unbiased=("test",), **shared)
        results["intervened"] = intervened["test"]

    write_json(METRICS, results)
    with atomic_path(PLOTS_DIR) as tmp:
        tmp.mkdir(parents=True)
        for split, by_model in results.items():
            figure = ranking_figure(by_model, f"Full-ranking metrics on '{split}'")
            figure.savefig(tmp / f"ranking_{split}.png")
            plt.close(figure)
            if any(key.startswith("gini@") for values in by_model.values() for key in values):
                figure = popularity_figure(by_model, f"Popularity bias of the top lists on '{split}'")
                figure.savefig(tmp / f"popularity_{split}.png")
                plt.close(figure)
    for split, by_model in results.items():
        line = ", ".join(f"{m} {v[f'ndcg@{params.ks[0]}']:.4f}" for m, v in by_model.items())
        print(f"evaluate [{split}] ndcg@{params.ks[0]}: {line}")


if __name__ == "__main__":
    run_stage(main)
