"""Stage `select_champion`: the one model behind `recommend`, `explain`, `topk.parquet` and the retrain gate.

Candidates are the evaluated models whose lists come from the user's history (`recause.serving.EXPLAINABLE`:
`explain` can then explain the very list `recommend` prints) and that are not a debiased variant. With
`champion.serve_debiased`, the candidates are the families that have one (the registry's `debiased_variant`,
chosen on the intervened valid by its training stage), and the champion's debiased variant is served.
The champion is the best of them on `champion.split` (valid: no other value is accepted) by `champion.metric`; ties within
`champion.tie_tolerance` go to the first in report order. After the choice, and only as a report, the
champion is compared with the best other baseline on test, user by user (a paired test).
Writes models/champion.json (the choice: what is served), metrics/champion.json (every candidate, the
comparison) and every user's top-k of the served model (data/recommendations/topk.parquet).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from recause.artifacts import read_parquet, require_file, write_json, write_parquet
from recause.config import load_params
from recause.data.matrix import interaction_matrix, split_users
from recause.errors import RecauseError
from recause.evaluation.ranking import evaluate_ranking, tie_priority
from recause.layout import LAYOUT
from recause.models.registry import baselines, models
from recause.selection import paired_difference, pick, summary
from recause.serving import EXPLAINABLE, load_served
from tasks._stage import run_stage

RANKING = LAYOUT.metrics_file("ranking")
CHOICE = LAYOUT.champion
METRICS = LAYOUT.metrics_file("champion")
TOPK = LAYOUT.topk


def per_user_test(models: list[str], metric: str, tie_seed: int) -> dict[str, np.ndarray]:
    """Each model's ``metric`` per test user (the users with test events, in one order), as `evaluate` scores test:
    history train, train and valid excluded, ties by the same priority."""
    parts = {p: read_parquet(LAYOUT.processed / f"{p}.parquet", f"{p} part") for p in ("train", "valid", "test")}
    users = split_users(parts.values())
    name, _, k = metric.partition("@")
    found: dict[str, np.ndarray] = {}
    for model_name in models:
        served = load_served(Path("."), model_name)
        train, valid, test = (interaction_matrix(parts[p], users, served.items) for p in ("train", "valid", "test"))
        values: dict[str, np.ndarray] = {}
        evaluate_ranking(
            served.model.score, train, train + valid, test, [int(k)], [name],
            priority=tie_priority(len(served.items), tie_seed), per_user_out=values,
        )  # fmt: skip
        found[model_name] = values[metric]
    return found


def main() -> None:
    params = load_params()
    settings = params.champion
    ranking = json.loads(require_file(RANKING, "ranking metrics").read_text(encoding="utf-8"))
    selection_split = ranking[settings.split]
    entries = models()
    candidates = [m for m in selection_split if m in EXPLAINABLE and not entries[m].capabilities.debiases]
    if settings.serve_debiased:  # only a family with a debiased variant can serve one
        candidates = [m for m in candidates if entries[m].debiased_variant in EXPLAINABLE]
    if not candidates:
        raise RecauseError(
            f"select_champion: no candidate on '{settings.split}' (serve_debiased: {settings.serve_debiased})"
        )
    chosen = pick(selection_split, candidates, settings.metric, settings.tie_tolerance)
    served = entries[chosen.name].debiased_variant if settings.serve_debiased else chosen.name
    others = [m for m in baselines() if m in selection_split and m != chosen.name]
    rival = pick(selection_split, others, settings.metric).name
    per_user = per_user_test([chosen.name, rival], settings.metric, params.evaluate.tie_seed)
    comparison = paired_difference(per_user[chosen.name], per_user[rival], settings.confidence)
    write_json(
        CHOICE,
        {"served": served, "chosen": chosen.name, "criterion": settings.model_dump(), "candidates": chosen.values},
    )
    report = {
        "champion": chosen.name,
        "served": served,
        "metric": settings.metric,
        "candidates": {
            m: {f"{settings.split}_{settings.metric}": v, "chosen": m == chosen.name} for m, v in chosen.values.items()
        },
        "test_against_best_other_baseline": {"baseline": rival, **asdict(comparison), "ratio": comparison.ratio},
    }
    write_json(METRICS, report)
    model = load_served(Path("."), served)
    write_parquet(model.top_k(settings.top_k), TOPK)
    variant = f", serving its debiased variant {served}" if served != chosen.name else ""
    print(
        f"select_champion: {chosen.name} (best of {len(chosen.values)} on {settings.split} {settings.metric}: "
        f"{chosen.values[chosen.name]:.4f}{variant}); top-{settings.top_k} of {len(model.users):,} users -> {TOPK}"
    )
    print(f"select_champion: {summary(report)}")


if __name__ == "__main__":
    run_stage(main)
