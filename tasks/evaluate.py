"""Stage `evaluate`: full-ranking metrics of every model on valid and test, cold start on `cold`, and `intervened`.

Which models: every model of the registry (`recause.models.registry.models`) fit on a split's own train
(`load_saved`), plus the text retrievers, built here from the items' text.
valid/test: the main split, every model; on test also SNIPS-weighted (unbiased under the popularity
propensity model) Recall/NDCG and the popularity bias of the top lists. cold and mixed_*: the cold-item
variant, with the models fit on its train (the hybrid and joint models reach cold items through their
text), the text retrievers, and `pop` and EASE refit on its train (for cold items the random-order floor).
intervened: the test set with near-uniform exposure, for the models fit on that variant's train.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from tqdm import tqdm

from recause.artifacts import atomic_path, read_parquet, write_json
from recause.config import load_params
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.evaluation.protocol import MIXED_SPLITS, evaluate_all
from recause.evaluation.report import popularity_figure, ranking_figure
from recause.layout import LAYOUT
from recause.models.base import Recommender
from recause.models.baselines.ease import EASE
from recause.models.baselines.pop import Pop
from recause.models.language.retrieval import TfidfKNN
from recause.models.registry import load_saved, models
from recause.parallel import open_runner
from tasks._stage import run_stage
from tasks._training import item_texts, lm_retrieval

PROCESSED_DIR = LAYOUT.processed
COLD_DIR = PROCESSED_DIR / "cold_item"
INTERVENED_DIR = PROCESSED_DIR / "intervened"
METRICS = LAYOUT.metrics_file("ranking")
PLOTS_DIR = LAYOUT.plot_dir("ranking")


def read_parts(directory: Path, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    return {name: read_parquet(directory / f"{name}.parquet", f"{name} part ({directory})") for name in names}


def load_fit_on(split: str, parts: dict[str, pd.DataFrame], items: IdIndex) -> dict[str, Recommender]:
    """Every saved model of the registry fit on ``split``'s own train (`recause.models.registry.load_saved`), in
    report order, checked to share evaluate's user and item axes."""
    users = split_users(parts.values()).ids.tolist()
    found: dict[str, Recommender] = {}
    for name, (model, meta) in load_saved(split).items():
        if meta["item_ids"] != items.ids.tolist() or meta.get("user_ids", users) != users:
            raise RuntimeError(f"{name} ({split}) was fit on other users or items: re-run `{models()[name].stage}`")
        found[name] = model
    return found


def text_retrievers(items: IdIndex) -> dict[str, Recommender]:
    """The registry's unsaved models, built from the items' text (and `finetune`'s heads)."""
    texts = item_texts().set_index("item_id")["text"]
    builders = {
        "tfidf_knn": lambda: TfidfKNN.from_texts(texts.reindex(items.ids).fillna("").tolist()),
        "lm_retrieval": lambda: lm_retrieval(items),
    }
    return {name: builders[name]() for name, entry in models().items() if not entry.servable}


def refit_on(parts: dict[str, pd.DataFrame], items: IdIndex, fitted: dict[str, Recommender]) -> dict[str, Recommender]:
    """Pop, and EASE with the main split's knobs, fit on a variant's own train (the main train holds the
    variant's held-out events, so the main split's fits cannot be judged there)."""
    train = interaction_matrix(parts["train"], split_users(parts.values()), items)
    refit: dict[str, Recommender] = {"pop": Pop().fit(train)}
    if "ease" in fitted:
        refit["ease"] = EASE(fitted["ease"].params).fit(train)
    return refit


def main() -> None:
    all_params = load_params()
    params = all_params.evaluate
    parts = read_parts(PROCESSED_DIR, ("train", "valid", "test"))
    cold_parts = read_parts(COLD_DIR, ("train", "valid", "test", "cold"))
    intervened_parts = read_parts(INTERVENED_DIR, ("train", "valid", "test"))
    items = IdIndex.from_values(read_parquet(LAYOUT.items, "items table")["item_id"])
    fitted = load_fit_on("main", parts, items)
    content = text_retrievers(items)
    ordered = [name for name in models() if name in fitted or name in content]
    main_models = {name: fitted.get(name) or content[name] for name in ordered}
    cold_models = {**refit_on(cold_parts, items, fitted), **content, **load_fit_on("cold_item", cold_parts, items)}
    # on `intervened` only models fit on its own train compete: the main train holds its test events
    intervened_models = {
        **refit_on(intervened_parts, items, fitted),
        **load_fit_on("intervened", intervened_parts, items),
    }

    def progress(it, desc):  # noqa: ANN001, ANN202
        return tqdm(it, desc=desc, leave=False, disable=None)

    with open_runner(all_params.orchestration) as runner:
        segments = 2 * len(main_models) + (1 + len(MIXED_SPLITS)) * len(cold_models) + len(intervened_models)
        if runner.where != "local":
            print(f"evaluate: {segments} (split, model) segments on {runner.where}")
        shared = {"items": items, "params": params, "progress": progress, "runner": runner}
        results = evaluate_all(parts, main_models, splits=("valid", "test"), unbiased=("test",), **shared)
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
