"""Stage `fairness`: the champion's accuracy by user group, its long-tail exposure, the joint model's counterfactual
flips, and the trade-off curve of the long-tail re-ranker (`recause.fairness`).

On valid and test, as `evaluate` ranks them (train history; train, and valid when testing, excluded; the same tie
order), each user's ``rerank.candidates`` best items of the served champion are kept, and every list below is cut
from them: the plain top-k and the re-ranked one at each strength of ``rerank.curve``. Reported:
- per user group (gender, age band, occupation) NDCG@k and Recall@k on test with bootstrap intervals, the gap and
  the ratio (groups under ``min_group_users`` pooled for the gap);
- APLT / ACLT against the long tail's share of the catalogue and of train interactions;
- the target: the larger of the long-tail exposure gap and the largest user-group gap of the plain lists on test,
  and whether ``rerank.strength`` (chosen on valid) cuts it by ``target.gap_reduction`` within
  ``target.max_ndcg_loss`` of NDCG@k, on valid and on test;
- for the joint model (the one reading user features), the mean Jaccard of each test top-k before and after
  flipping ``counterfactual.flip``, and the NDCG@k cost of mean-imputing each of ``counterfactual.remove``.
Writes metrics/fairness.json, metrics/plots/fairness/ and reports/fairness.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from recause.artifacts import atomic_path, load_model, read_parquet, require_file, write_json, write_text
from recause.config import load_params
from recause.config.fairness import CounterfactualParams
from recause.data.matrix import interaction_matrix
from recause.evaluation.ranking import tie_priority
from recause.fairness.audit import audit
from recause.fairness.counterfactual import counterfactual, joint_side
from recause.fairness.groups import attribute_labels
from recause.fairness.report import fairness_report, groups_figure, tradeoff_figure
from recause.layout import LAYOUT
from recause.models.registry import models
from recause.serving import load_served
from tasks._stage import run_stage

PROCESSED_DIR = LAYOUT.processed
CHAMPION = LAYOUT.champion
USERS = LAYOUT.users
JOINT = LAYOUT.joint
METRICS = LAYOUT.metrics_file("fairness")
PLOTS = LAYOUT.plot_dir("fairness")
REPORT = LAYOUT.report("fairness")


def joint_counterfactual(
    users: pd.DataFrame, parts: dict, settings: CounterfactualParams, k: int, tie_seed: int
) -> dict:
    """``counterfactual`` of the joint model fit on the main split; why not, when it is missing or cannot be flipped."""
    folder = JOINT / "main"  # the joint model fit on the main split
    if not (folder / "joint.json").exists():
        return {"skipped": f"no joint model in {folder}"}
    model, meta = load_model(folder, "joint", {"joint": models()["joint"].model_type()})
    side = joint_side(model, meta, users)
    if isinstance(side, str):
        return {"skipped": side}
    return counterfactual(side, settings, users, parts, k, tie_seed)


def publish(report: dict) -> None:
    """metrics/fairness.json, the two figures and the Markdown report."""
    write_json(METRICS, report)
    with atomic_path(PLOTS) as tmp:
        tmp.mkdir(parents=True)
        for name, figure in (("tradeoff", tradeoff_figure(report)), ("groups", groups_figure(report))):
            figure.savefig(tmp / f"{name}.png")
            plt.close(figure)
    write_text(REPORT, fairness_report(report))


def main() -> None:
    params = load_params()
    settings = params.fairness
    tie_seed = params.evaluate.tie_seed
    served_name = str(json.loads(require_file(CHAMPION, "the champion").read_text(encoding="utf-8"))["served"])
    served = load_served(Path("."), served_name)
    parts = {p: read_parquet(PROCESSED_DIR / f"{p}.parquet", f"{p} part") for p in ("train", "valid", "test")}
    matrices = {p: interaction_matrix(parts[p], served.users, served.items) for p in parts}
    train = matrices["train"]
    users = read_parquet(USERS, "users table")
    users = users.assign(user_id=users["user_id"].astype(str))
    labels = attribute_labels(users, served.users.ids, [a for a in settings.attributes if a in users])
    model = served.model
    by_rows = hasattr(model, "score_users")

    def score_rows(rows: np.ndarray) -> np.ndarray:
        return model.score_users(rows) if by_rows else model.score(train[rows])

    priority = tie_priority(len(served.items), tie_seed)
    report = {
        "model": served_name,
        "k": settings.k,
        **audit(score_rows, matrices, labels, priority, settings),
        "counterfactual": joint_counterfactual(users, parts, settings.counterfactual, settings.k, tie_seed),
    }
    publish(report)
    aim = report["target"]
    print(
        f"fairness: {served_name} targets the {aim['targeted']} gap ({aim['test']['gap_before']:.3f} on test); "
        f"strength {aim['strength']} -> {aim['test']['gap_after']:.3f} at {aim['test']['relative_ndcg_loss']:+.2%} "
        f"NDCG@{settings.k} loss: {'met' if aim['test']['met'] else 'NOT met'} -> {REPORT}"
    )


if __name__ == "__main__":
    run_stage(main)
