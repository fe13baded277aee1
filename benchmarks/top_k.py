"""top_k (partition, then sort k) against the full stable argsort it replaces and torch.topk, on ML-100K's shape.

Prints each one's best-of-5 time and the ratio to recause's; checks that recause and the full sort agree exactly
(ties included: lower item first). Run: .venv/bin/python benchmarks/top_k.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from recause.evaluation.ranking import top_k


def full_sort(scores: np.ndarray, k: int, excluded: np.ndarray) -> np.ndarray:
    masked = np.where(excluded, -np.inf, scores)
    best = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(masked, best, axis=1) == -np.inf, -1, best)


def torch_topk(scores: np.ndarray, k: int, excluded: np.ndarray) -> np.ndarray:
    masked = torch.from_numpy(scores).masked_fill(torch.from_numpy(excluded), float("-inf"))
    return torch.topk(masked, k, dim=1).indices.numpy()  # ties in an unspecified order


def best_of(function: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2048, help="rows (a validation batch)")
    parser.add_argument("--items", type=int, default=1682, help="columns (ML-100K's catalogue)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=(args.users, args.items)), 2)  # rounded: many exact ties
    excluded = rng.random(scores.shape) < 0.05
    ours = top_k(scores, args.k, excluded)
    assert (ours == full_sort(scores, args.k, excluded)).all(), "top_k disagrees with the full stable sort"
    seconds = {
        "recause top_k": best_of(lambda: top_k(scores, args.k, excluded)),
        "full stable argsort": best_of(lambda: full_sort(scores, args.k, excluded)),
        "torch.topk (tie order unspecified)": best_of(lambda: torch_topk(scores, args.k, excluded)),
    }
    print(f"{args.users} x {args.items} scores, k={args.k}: identical to the full sort, ties included")
    for name, value in seconds.items():
        print(f"  {name:<36} {value * 1000:8.1f} ms   {value / seconds['recause top_k']:5.2f}x recause's time")


if __name__ == "__main__":
    main()
