"""The privacy-utility curve: test NDCG@10 and membership-inference AUC at epsilon 1, 3, 8 and inf.

Each model family is fit on the main train as its stage fits it with `privacy.dp` on (recause.privacy.gram: the
Gaussian mechanism on the item Gram, delta = 1 / n_users unless params.yaml sets it) at each epsilon, for a few
noise seeds; epsilon = inf is today's non-private fit. Test NDCG@10 follows `evaluate` (full ranking, train and
valid excluded, the same tie order), and the ratio is to the non-private model of the same family.

The audit (recause.privacy.membership) fits the same family, with the knobs chosen above, on a seeded half of the
train users and attacks with a score threshold: AUC 0.5 is no leakage.

Families (FAMILIES, one function each; add a family there): `ease` (train_baselines: EASE with its params-file
ridge, grown by the release's `ridge_added`), `hybrid_ease` (train_hybrid on main: the models.hybrid grid chosen
on valid; the cold head is left out, main chooses cold_weight 0), `joint` (train_joint's `joint`, under DP by
DP-SGD: recause.models.joint.private; scored by fold-in of the history like the others). A family is
``fit(bench, train_rows, dp, knobs) -> Fitted``: ``dp`` None is the non-private fit; ``knobs`` None lets it choose
on valid, else it reuses what an earlier fit chose (the audit's fit); ``bench.mechanism(dp)`` is the release's
mechanism with the full train's delta, which the audit's fit on half the users keeps.

  .venv/bin/python benchmarks/privacy.py                      # ~5 min on 2 cores
  .venv/bin/python benchmarks/privacy.py --families ease --seeds 0 --shrink 0 --noise-ridge 2

Needs `recause run` up to train_hybrid (data/processed, data/embeddings). Writes benchmarks/results/privacy.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recause.artifacts import read_item_embeddings
from recause.config import Params, load_params
from recause.config.joint import JointParams
from recause.config.privacy import DPParams
from recause.data.features import item_side_features
from recause.data.matrix import IdIndex, interaction_matrix, split_users
from recause.evaluation.ranking import ScoreFn, evaluate_ranking, tie_priority
from recause.layout import LAYOUT
from recause.models.baselines.ease import EASE
from recause.models.hybrid import select_on_valid, settings
from recause.models.joint import train_joint
from recause.models.registry import baselines_params
from recause.privacy.gram import GramMechanism, mechanism_for, private_gram
from recause.privacy.membership import dp_auc_bound, membership_audit

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = LAYOUT.under(ROOT)
RESULTS = ROOT / "benchmarks" / "results" / "privacy.json"
EPSILONS = (1.0, 3.0, 8.0, math.inf)
AUDIT_SEED = 0  # which users are members: the same halves at every epsilon
TARGETS = {"ndcg_ratio_at_8": 0.8, "auc_at_1": 0.55}  # the done-when


@dataclass(frozen=True)
class Bench:
    """The main split as matrices, the item embeddings, and the params the stages read."""

    params: Params
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    embeddings: np.ndarray
    priority: np.ndarray

    def mechanism(self, dp: DPParams) -> GramMechanism:
        return mechanism_for(self.train, dp)


@dataclass(frozen=True)
class Fitted:
    score: ScoreFn
    knobs: dict  # what the fit chose on valid, reused by the audit's fit


Family = Callable[[Bench, sp.csr_matrix, DPParams | None, dict | None], Fitted]


def dense_scorer(weights: np.ndarray) -> ScoreFn:
    return lambda history: np.asarray(history @ weights, dtype=np.float32)


def fit_ease(bench: Bench, rows: sp.csr_matrix, dp: DPParams | None, knobs: dict | None) -> Fitted:
    model = EASE(baselines_params(bench.params.models.baselines)["ease"])
    if dp is None:
        return Fitted(dense_scorer(model.fit(rows).weights), {})
    private = private_gram(rows, dp, "main", bench.mechanism(dp))
    return Fitted(dense_scorer(model.fit_gram(private.gram, private.ridge).weights), {})


def fit_hybrid(bench: Bench, rows: sp.csr_matrix, dp: DPParams | None, knobs: dict | None) -> Fitted:
    stage = bench.params.models.hybrid
    grid = settings(stage.reg_weights, stage.popularity_regs, stage.content_weights, stage.content_power)
    grid = [s.model_copy(update={"debias_offset": stage.debias_offset}) for s in grid]
    release = {}
    if dp is not None:
        private = private_gram(rows, dp, "main", bench.mechanism(dp))
        release = {"gram": private.gram, "counts": private.counts}
        grid = [s.model_copy(update={"reg_weight": s.reg_weight + private.ridge}) for s in grid]
    if knobs is not None:
        grid = [grid[0].model_validate(knobs)]
    chosen = select_on_valid(rows, bench.valid, bench.embeddings, grid, stage.metric, bench.priority, **release)
    return Fitted(chosen.model.score, chosen.best.model_dump())


def fit_joint(bench: Bench, rows: sp.csr_matrix, dp: DPParams | None, knobs: dict | None) -> Fitted:
    """train_joint's `joint` (models.joint, no debiasing) on ``rows``; with ``dp``, DP-SGD at its epsilon
    (privacy.dp.sgd: user-level, history user vectors; recause.models.joint.private). Scored like every family
    here, from the users' train histories (``JointModel.score``, the fold-in), so the towers get no user side
    features: the DP model's users are exactly that fold-in; the plain one is trained with ID rows instead."""
    stage = bench.params.models.joint
    params = JointParams(**stage.model_dump(include=set(JointParams.model_fields)) | {"debias": "none"})
    catalogue = pd.read_parquet(WORKSPACE.items)
    items = IdIndex.from_values(catalogue["item_id"])
    content = item_side_features(catalogue, items.ids) if stage.use_side_features else None
    if dp is not None:  # the full train's delta, also for the audit's fit on half the users
        dp = dp.model_copy(update={"enabled": True, "delta": bench.mechanism(dp).delta})
    model = train_joint(
        rows, params, item_text=bench.embeddings if stage.use_text else None, item_features=content,
        valid=bench.valid, progress=False, dp=dp,
    )  # fmt: skip
    return Fitted(model.score, {})


FAMILIES: dict[str, Family] = {"ease": fit_ease, "hybrid_ease": fit_hybrid, "joint": fit_joint}


def load_bench(params: Params) -> Bench:
    items = IdIndex.from_values(pd.read_parquet(WORKSPACE.items)["item_id"])
    parts = {p: pd.read_parquet(WORKSPACE.processed / f"{p}.parquet") for p in ("train", "valid", "test")}
    users = split_users(parts.values())
    matrices = {p: interaction_matrix(frame, users, items) for p, frame in parts.items()}
    return Bench(params, *matrices.values(), item_embeddings(items), tie_priority(len(items), params.evaluate.tie_seed))


def item_embeddings(items: IdIndex) -> np.ndarray:
    """`embed`'s item embeddings in the order of ``items``."""
    return read_item_embeddings(WORKSPACE.embeddings, items.ids)


def measure(bench: Bench, family: Family, dp: DPParams | None) -> dict[str, float]:
    """Test NDCG@10 of the family fit on all of train, and the audit's AUC with the same knobs."""
    fitted = family(bench, bench.train, dp, None)
    excluded = bench.train + bench.valid
    ndcg = evaluate_ranking(fitted.score, bench.train, excluded, bench.test, [10], ["ndcg"], priority=bench.priority)
    audit = membership_audit(bench.train, lambda rows: family(bench, rows, dp, fitted.knobs).score, AUDIT_SEED)
    return {"ndcg@10": ndcg["ndcg@10"], "mia_auc": audit.auc}


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def curve(bench: Bench, family: Family, base: DPParams, epsilons: list[float], seeds: list[int]) -> list[dict]:
    """One row per epsilon: mean and sd over the noise seeds (one run at inf), and the ratio to inf."""
    rows = []
    for epsilon in epsilons:
        runs = (
            [measure(bench, family, None)]
            if math.isinf(epsilon)
            else [measure(bench, family, base.model_copy(update={"epsilon": epsilon, "seed": s})) for s in seeds]
        )
        label = "inf" if math.isinf(epsilon) else epsilon  # JSON has no infinity
        row = {"epsilon": label, **{key: spread([run[key] for run in runs]) for key in runs[0]}}
        if not math.isinf(epsilon):
            row["delta"] = bench.mechanism(base).delta
            row["mia_auc_bound"] = dp_auc_bound(epsilon, row["delta"])  # what any attack could reach
        rows.append(row)
        print(
            f"  epsilon {epsilon}: " + ", ".join(f"{k} {v['mean']:.4f}" for k, v in row.items() if isinstance(v, dict))
        )
    plain = next((row["ndcg@10"]["mean"] for row in rows if row["epsilon"] == "inf"), None)
    for row in rows:
        row["ndcg_ratio"] = None if plain is None else row["ndcg@10"]["mean"] / plain
    return rows


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| model | epsilon | test NDCG@10 | ratio to non-private | membership AUC |", "|---|---|---|---|---|"]
    cell = lambda v: f"{v['mean']:.4f}" + (f" ± {v['sd']:.4f}" if v["sd"] else "")  # noqa: E731
    for name, rows in results.items():
        for row in rows:
            ratio = "" if row["ndcg_ratio"] is None else f"{row['ndcg_ratio']:.3f}"
            lines.append(f"| {name} | {row['epsilon']} | {cell(row['ndcg@10'])} | {ratio} | {cell(row['mia_auc'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}")
    parser.add_argument("--epsilons", default=",".join(f"{e:g}" for e in EPSILONS))
    parser.add_argument("--seeds", default="0,1,2", help="noise seeds (privacy.dp.seed) per finite epsilon")
    for knob in ("user_norm", "min_items", "shrink", "noise_ridge"):
        parser.add_argument(f"--{knob.replace('_', '-')}", type=float, help=f"privacy.dp.gram.{knob} (else params)")
    parser.add_argument("--no-normalize", action="store_true", help="privacy.dp.gram.normalize false")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    params = load_params(WORKSPACE.params)
    updates = {k: getattr(args, k) for k in ("user_norm", "shrink", "noise_ridge") if getattr(args, k) is not None}
    updates |= {"min_items": int(args.min_items)} if args.min_items is not None else {}
    updates |= {"normalize": False} if args.no_normalize else {}
    base = params.privacy.dp.model_copy(update={"gram": params.privacy.dp.gram.model_copy(update=updates)})
    bench = load_bench(params)
    epsilons = [float(e) for e in args.epsilons.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name in args.families.split(","):
        print(f"{name}:")
        results[name] = curve(bench, FAMILIES[name], base, epsilons, seeds)
    print("\n" + table(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {"gram": base.gram.model_dump(), "seeds": seeds, "targets": TARGETS, "results": results}
    args.output.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")


if __name__ == "__main__":
    main()
