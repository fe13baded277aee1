"""Stage `uplift`: rank items by the effect a recommendation has (IPS-unbiased, DLCE-style) and by
accuracy, on planted truth where the effect of every (user, item) is known; causal precision and CDCG."""

from __future__ import annotations

import numpy as np

from recause.artifacts import read_parquet, write_json
from recause.causal.semi_synthetic import interaction_grid, plant
from recause.causal.uplift import fit_accuracy, fit_uplift
from recause.config import load_params
from recause.evaluation.causal_metrics import causal_precision_at_k, cdcg
from recause.layout import LAYOUT
from recause.training.run import Timer
from tasks._stage import run_stage

INTERACTIONS = LAYOUT.interactions
METRICS = LAYOUT.metrics_file("uplift")


def main() -> None:
    params = load_params().causal
    events = read_parquet(INTERACTIONS, "interactions")
    world = plant(interaction_grid(events), params.semi_synthetic, params.seed)
    with Timer() as timer:
        uplift = fit_uplift(world.treatment, world.outcome, world.propensity, params.uplift, params.seed)
        accuracy = fit_accuracy(world.outcome, params.uplift, params.seed)
    # A generator of its own: plant(seed) has drawn from default_rng(seed) already.
    random_scores = np.random.default_rng([params.seed, 12345]).random(world.treatment.shape)
    rankings = {"uplift": uplift.scores(), "accuracy": accuracy.scores(), "random": random_scores}
    truths = {"realised_effect": world.realised_effect, "expected_effect": world.effect}
    results: dict[str, dict] = {}
    for name, scores in rankings.items():
        results[name] = {}
        for truth, tau in truths.items():
            for k in params.uplift.ks:
                results[name][f"{truth}/cp@{k}"] = causal_precision_at_k(scores, tau, k)
            results[name][f"{truth}/cdcg"] = cdcg(scores, tau)
    k = params.uplift.ks[0]
    ratio = results["uplift"][f"realised_effect/cp@{k}"] / results["accuracy"][f"realised_effect/cp@{k}"]
    write_json(METRICS, {**results, f"uplift_over_accuracy_cp@{k}": ratio, "train_seconds": round(timer.seconds, 2)})
    line = ", ".join(f"{name} {r[f'realised_effect/cp@{k}']:.4f}" for name, r in results.items())
    print(f"uplift: CP@{k} {line} ({ratio:.2f}x accuracy), trained in {timer.seconds:.1f}s")


if __name__ == "__main__":
    run_stage(main)
