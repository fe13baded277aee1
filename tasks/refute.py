"""Stage `refute`: every refuter against each question's primary estimate and against planted truth;
writes `metrics/causal.json` (estimates, refutations, discovery, planted truth) and a Markdown report."""

from __future__ import annotations

import json

from recause.artifacts import require_file, write_json, write_text
from recause.causal.effects import question_frame, refute_effect, verdicts
from recause.causal.report import causal_report
from recause.config import load_params
from recause.layout import LAYOUT
from tasks._causal import PLANTED_QUESTION, planted_table, study_frames
from tasks._stage import run_stage

ESTIMATES = LAYOUT.causal_estimates
DISCOVERY = LAYOUT.metrics_file("causal_discovery")
METRICS = LAYOUT.metrics_file("causal")
REPORT = LAYOUT.report("causal")


def main() -> None:
    params = load_params().causal
    estimated = json.loads(require_file(ESTIMATES, "causal estimates").read_text(encoding="utf-8"))
    discovery = json.loads(require_file(DISCOVERY, "discovery metrics").read_text(encoding="utf-8"))
    primary = params.primary_estimator
    questions = {}
    for name, (frame, graph, question) in study_frames(params).items():
        answer = estimated["questions"][name]
        chosen = answer["estimators"][primary]
        refutations = refute_effect(frame, graph, question, primary, params.refute, params.seed, params.strata)
        questions[name] = {
            "estimate": chosen["estimate"], "ci": chosen["ci"], "estimator": primary, **answer, **verdicts(refutations)
        }  # fmt: skip
        print(f"refute [{name}]: {'REFUTED' if questions[name]['refuted'] else 'not refuted'}")

    table, true_ate, graph = planted_table(params)
    refutations = refute_effect(
        question_frame(table, PLANTED_QUESTION),
        graph,
        PLANTED_QUESTION,
        primary,
        params.refute,
        params.seed,
        params.strata,
    )
    planted = estimated["semi_synthetic"]
    chosen = planted["estimators"][primary]
    semi_synthetic = {
        "estimate": chosen["estimate"], "ci": chosen["ci"], "estimator": primary, **planted, **verdicts(refutations)
    }  # fmt: skip
    print(
        f"refute [planted truth]: {'REFUTED' if semi_synthetic['refuted'] else 'not refuted'} (true ATE {true_ate:.4f})"
    )
    summary = {
        method: {
            "edges": result["edges"],
            "undirected": result["undirected"],
            "share_of_implied_independences_holding": result["graph_refutation"]["share_holding"],
            "known_truth": result["known_truth"],
        }
        for method, result in discovery["methods"].items()
    }
    metrics = {"questions": questions, "discovery": summary, "semi_synthetic": semi_synthetic}
    write_json(METRICS, metrics)
    write_text(REPORT, causal_report(metrics, primary_method=discovery["primary"]))


if __name__ == "__main__":
    run_stage(main)
