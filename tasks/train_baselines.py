"""Stage `train_baselines`: fit Pop, ItemKNN and EASE (up to `models.ease.max_items` items) on the train part only."""

from __future__ import annotations

import time

from recause.artifacts import atomic_path, read_parquet, save_model
from recause.config import load_params
from recause.data.matrix import IdIndex, interaction_matrix
from recause.layout import LAYOUT
from recause.models.baselines import EASE, ItemKNN, Pop
from recause.models.baselines.ease import ease_fits
from tasks._stage import run_stage

TRAIN = LAYOUT.processed / "train.parquet"
ITEMS = LAYOUT.items
MODELS_DIR = LAYOUT.baselines


def main() -> None:
    params = load_params().models
    train = read_parquet(TRAIN, "train part")
    # Every catalogue item gets an index, so cold items can be ranked (and are scored 0 here).
    items = IdIndex.from_values(read_parquet(ITEMS, "items table")["item_id"])
    users = IdIndex.from_values(train["user_id"])
    matrix = interaction_matrix(train, users, items)
    models = [Pop(), ItemKNN(params.itemknn)]
    if ease_fits(len(items), params.ease):
        models.append(EASE(params.ease))
    else:
        print(
            f"train_baselines: EASE skipped: {len(items):,} items exceed models.ease.max_items "
            f"{params.ease.max_items:,} (its dense item x item solve grows with the cube of the catalogue)"
        )
    with atomic_path(MODELS_DIR) as tmp:
        tmp.mkdir(parents=True)
        for model in models:
            started = time.perf_counter()
            model.fit(matrix)
            seconds = time.perf_counter() - started
            save_model(tmp, model, {"item_ids": items.ids.tolist(), "train_interactions": int(matrix.nnz)})
            print(f"train_baselines: {model.name} fitted in {seconds:.2f}s")


if __name__ == "__main__":
    run_stage(main)
