"""Stage `train_hybrid`: the hybrid EASE (recause.models.hybrid) on the main split and its cold-item variant.

For each split, every setting of the `models.hybrid` grid is fit on that split's train, with the item
embeddings from `embed`; the best by the grid's metric on that split's valid is saved under
models/hybrid/<split>/ and the whole grid's valid scores go to metrics/train_hybrid.json.
Test (and the cold part) is never read here.
"""

from __future__ import annotations

import time

from recause.artifacts import atomic_path, read_parquet, save_model, write_json
from recause.config import load_params
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.evaluation.ranking import tie_priority
from recause.layout import LAYOUT
from recause.models.hybrid import select_on_valid, settings
from tasks._stage import run_stage
from tasks._training import item_embeddings

SPLITS = ("main", "cold_item")
OUTPUT = LAYOUT.hybrid
METRICS = LAYOUT.metrics_file("train_hybrid")


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
    grid = settings(stage.reg_weights, stage.popularity_regs, stage.content_weights, stage.content_power)
    priority = tie_priority(len(items), params.evaluate.tie_seed)
    report: dict[str, dict] = {}
    with atomic_path(OUTPUT) as tmp:
        for split in SPLITS:
            directory = LAYOUT.split_dir(split)
            parts = {p: read_parquet(directory / f"{p}.parquet", f"{p} part ({directory})") for p in ("train", "valid")}
            users = split_users(parts.values())
            train, valid = (interaction_matrix(parts[p], users, items) for p in ("train", "valid"))
            started = time.perf_counter()
            chosen = select_on_valid(train, valid, embeddings, grid, stage.metric, priority)
            seconds = time.perf_counter() - started
            (tmp / split).mkdir(parents=True)
            save_model(tmp / split, chosen.model, {"item_ids": items.ids.tolist(), "split": split})
            report[split] = {
                "chosen": chosen.best.model_dump(),
                f"valid_{stage.metric}": [{**s.model_dump(), "value": round(v, 6)} for s, v in chosen.scores],
                "seconds": round(seconds, 2),
            }
            best = max(v for _, v in chosen.scores)
            print(
                f"train_hybrid [{split}]: {len(grid)} settings in {seconds:.1f}s; chose {chosen.best.model_dump()} "
                f"(valid {stage.metric} {best:.4f}; EASE in the grid: {_ease_on_valid(chosen.scores)})"
            )
    write_json(METRICS, report)


def _ease_on_valid(scores: list) -> str:
    plain = [v for s, v in scores if s.popularity_reg == 0 and s.content_weight == 0]
    return f"{max(plain):.4f}" if plain else "not in the grid"


if __name__ == "__main__":
    run_stage(main)
