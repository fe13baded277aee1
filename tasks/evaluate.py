"""Stage `evaluate`: full-ranking metrics of every model on valid, test (and cold) parts."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from recause.data.matrix import IdIndex
from recause.evaluation.protocol import evaluate_all
from recause.evaluation.report import ranking_figure
from recause.models.baselines import BASELINES
from tasks._io import atomic_path, load_model, load_params, read_parquet, require_file, run_stage, write_json

PROCESSED_DIR = Path("data/processed")
MODELS_DIR = Path("models/baselines")
METRICS = Path("metrics/ranking.json")
PLOTS_DIR = Path("metrics/plots/ranking")


def main() -> None:
    params = load_params().evaluate
    for needed in ("train", "valid", "test"):
        require_file(PROCESSED_DIR / f"{needed}.parquet", f"{needed} part")
    parts = {path.stem: read_parquet(path, f"{path.stem} part") for path in sorted(PROCESSED_DIR.glob("*.parquet"))}
    loaded = {name: load_model(MODELS_DIR, name, BASELINES) for name in BASELINES}
    item_ids = {tuple(meta["item_ids"]) for _, meta in loaded.values()}
    if len(item_ids) != 1:
        raise RuntimeError("baseline models were trained on different item vocabularies")
    items = IdIndex(np.asarray(next(iter(item_ids)), dtype=str))
    models = {name: model for name, (model, _) in loaded.items()}
    results = evaluate_all(
        parts, models, items, params, progress=lambda it, desc: tqdm(list(it), desc=desc, leave=False, disable=None)
    )

    write_json(METRICS, results)
    with atomic_path(PLOTS_DIR) as tmp:
        tmp.mkdir(parents=True)
        for split, by_model in results.items():
            figure = ranking_figure(by_model, f"Full-ranking metrics on '{split}'")
            figure.savefig(tmp / f"ranking_{split}.png")
            plt.close(figure)
    for split, by_model in results.items():
        line = ", ".join(f"{m} {v[f'ndcg@{params.ks[0]}']:.4f}" for m, v in by_model.items())
        print(f"evaluate [{split}] ndcg@{params.ks[0]}: {line}")


if __name__ == "__main__":
    run_stage(main)
