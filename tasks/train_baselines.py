"""Stage `train_baselines`: fit every registered baseline (recause.models.registry) on the train part only.

Each gets its knobs from `models.baselines.<name>`; one that should not be fit on this data (EASE above
its `max_items`) is skipped with a log line, and `evaluate` ranks with the models that exist.
"""

from __future__ import annotations

import time

from recause.artifacts import atomic_path, read_parquet, save_model
from recause.config import load_params
from recause.data.matrix import IdIndex, interaction_matrix
from recause.layout import LAYOUT
from recause.models.registry import PARAMS_SECTION, build_baselines
from tasks._stage import run_stage

TRAIN = LAYOUT.processed / "train.parquet"
ITEMS = LAYOUT.items
MODELS_DIR = LAYOUT.baselines


def main() -> None:
    knobs = load_params().models.baselines
    models = build_baselines(knobs)  # checks every knob before anything is read or fit
    train = read_parquet(TRAIN, "train part")
    # Every catalogue item gets an index, so cold items can be ranked (and are scored 0 here).
    items = IdIndex.from_values(read_parquet(ITEMS, "items table")["item_id"])
    users = IdIndex.first_seen(train["user_id"])
    matrix = interaction_matrix(train, users, items)
    with atomic_path(MODELS_DIR) as tmp:
        tmp.mkdir(parents=True)
        for model in models:
            reason = model.skip_reason(matrix)
            if reason is not None:
                print(f"train_baselines: {model.name} skipped ({PARAMS_SECTION}.{model.name}): {reason}")
                continue
            started = time.perf_counter()
            model.fit(matrix)
            seconds = time.perf_counter() - started
            save_model(tmp, model, {"item_ids": items.ids.tolist(), "train_interactions": int(matrix.nnz)})
            print(f"train_baselines: {model.name} fitted in {seconds:.2f}s")


if __name__ == "__main__":
    run_stage(main)
