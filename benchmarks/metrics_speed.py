"""recause's ranking metrics against their peers on the same inputs: ranx 0.3.21 (NDCG, Recall, MRR, Precision
at k = 10, 20) and scikit-learn (AUC, per user and pooled).

Both sides get the same ranked lists (ranx: scores K - rank, so it orders them as top_k did) and the same full
score rows; each side's values are checked equal (1e-9) before timing. ranx compiles with numba on its first
call: it is warmed up first, then every timing is the best of 5. ranx runs on one thread (``threads=1``) like
numpy here; its time with all threads is printed too. Prints each time and the ratio to recause's.
Run: .venv/bin/python benchmarks/metrics_speed.py [--users 943 --items 1682]
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from ranx import Qrels, Run, evaluate
from sklearn.metrics import roc_auc_score

from recause.evaluation.auc import AucTally
from recause.evaluation.metrics import per_user_metrics
from recause.evaluation.ranking import relevance, result_names, top_k

KS = (10, 20)
NAMES = ("ndcg", "recall", "mrr", "precision")


def best_of(function: Callable[[], object], repeats: int = 5) -> float:
    """Seconds of the fastest of ``repeats`` single calls."""
    return min(timeit.repeat(function, number=1, repeat=repeats))


def synthetic(n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Scores with popularity-like ties, a seen mask (~6% of items) and ~10 held-out items per user."""
    rng = np.random.default_rng(0)
    popularity = rng.zipf(1.5, n_items).clip(max=1000)
    scores = np.round(np.log1p(popularity)[None, :] + rng.normal(scale=0.5, size=(n_users, n_items)), 2)
    seen = rng.random((n_users, n_items)) < 0.06
    held = (rng.random((n_users, n_items)) < 10 / n_items * popularity / popularity.mean()) & ~seen
    return scores, seen, sp.csr_matrix(held.astype(np.float32))


def recause_at_k(top: np.ndarray, truth: sp.csr_matrix) -> dict[str, np.ndarray]:
    return per_user_metrics(relevance(top, truth), np.asarray(truth.sum(axis=1)).ravel(), KS, NAMES)


def recause_auc(scores: np.ndarray, rankable: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, float]:
    tally = AucTally(pooled=True)
    tally.add(scores, rankable, positive)
    return tally.per_user(), tally.result()["auc"]


def sklearn_auc(scores: np.ndarray, rankable: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, float]:
    per_user = [roc_auc_score(positive[u][rankable[u]], scores[u][rankable[u]]) for u in range(len(scores))]
    return np.array(per_user), roc_auc_score(positive[rankable], scores[rankable])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=943, help="rows (ML-100K's users)")
    parser.add_argument("--items", type=int, default=1682, help="columns (ML-100K's catalogue)")
    args = parser.parse_args()
    scores, seen, truth = synthetic(args.users, args.items)
    keep = np.asarray(truth.sum(axis=1)).ravel() > 0  # users with truth, as evaluate_ranking keeps
    scores, seen, truth = scores[keep], seen[keep], truth[keep]
    top = top_k(scores, max(KS), seen)
    ids = [f"u{u:06d}" for u in range(len(top))]
    qrels = Qrels({q: {f"i{i}": 1 for i in truth[u].indices} for u, q in enumerate(ids)})
    run = Run({q: {f"i{i}": float(max(KS) - r) for r, i in enumerate(top[u])} for u, q in enumerate(ids)})
    keys = result_names(NAMES, KS)
    ours, theirs = recause_at_k(top, truth), evaluate(qrels, run, keys, return_mean=False, threads=1)  # warm-up
    assert all(np.allclose(ours[k], theirs[k], rtol=0, atol=1e-9) for k in keys), "recause and ranx disagree"
    typed_qrels, typed_run = qrels.to_typed_list(), run.to_typed_list()
    positive = truth.toarray() > 0
    (per_user, pooled), (per_user_sk, pooled_sk) = (f(scores, ~seen, positive) for f in (recause_auc, sklearn_auc))
    assert np.allclose(per_user, per_user_sk, rtol=0, atol=1e-9) and abs(pooled - pooled_sk) < 1e-9, "AUC differs"
    at_k = {
        "recause relevance + metrics": best_of(lambda: recause_at_k(top, truth)),
        "ranx evaluate(Qrels, Run), 1 thread": best_of(lambda: evaluate(qrels, run, keys, False, threads=1)),
        "ranx on its typed lists, 1 thread": best_of(lambda: evaluate(typed_qrels, typed_run, keys, False, threads=1)),
        "ranx on its typed lists, all threads": best_of(lambda: evaluate(typed_qrels, typed_run, keys, False)),
    }
    auc = {
        "recause AucTally (per user + pooled)": best_of(lambda: recause_auc(scores, ~seen, positive)),
        "sklearn roc_auc_score per user + pooled": best_of(lambda: sklearn_auc(scores, ~seen, positive), repeats=2),
    }
    print(f"{len(top)} users x {args.items} items, identical values (1e-9) on both sides")
    for title, seconds in ((f"{', '.join(keys)}:", at_k), ("AUC per user and pooled:", auc)):
        print(title)
        base = next(iter(seconds.values()))
        for name, value in seconds.items():
            print(f"  {name:<42} {value * 1000:9.1f} ms   {value / base:6.2f}x recause's time")


if __name__ == "__main__":
    main()
