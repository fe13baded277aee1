"""Stage `causal_estimate`: every causal question of params, identified on the discovered graph and
estimated by each estimator with an interval; and the same on planted truth, where the answer is known."""

from __future__ import annotations

from recause.artifacts import write_json
from recause.causal.effects import estimate_effects, identify, question_frame
from recause.config import load_params
from recause.layout import LAYOUT
from tasks._causal import PLANTED_QUESTION, planted_table, study_frames
from tasks._stage import run_stage

OUTPUT = LAYOUT.causal_estimates


def main() -> None:
    params = load_params().causal
    answers = {}
    for name, (frame, graph, question) in study_frames(params).items():
        estimand, strategy = identify(frame, graph, question)
        estimates = estimate_effects(
            frame, graph, question, params.estimators, params.refute.num_simulations, params.seed, params.strata
        )
        answers[name] = {
            "treatment": question.treatment,
            "outcome": question.outcome,
            "identification": strategy,
            "adjustment_set": sorted(estimand.get_backdoor_variables()) if strategy == "backdoor" else [],
            "rows": len(frame),
            "estimators": {n: {"estimate": e.value, "ci": list(e.ci)} for n, e in estimates.items()},
        }
        primary = estimates[params.primary_estimator]
        print(
            f"causal_estimate [{name}]: {primary.value:+.4f} [{primary.ci[0]:+.4f}, {primary.ci[1]:+.4f}] ({primary.estimator})"
        )

    table, true_ate, graph = planted_table(params)
    frame = question_frame(table, PLANTED_QUESTION)
    estimates = estimate_effects(
        frame, graph, PLANTED_QUESTION, params.estimators, params.refute.num_simulations, params.seed, params.strata
    )
    naive = float(
        frame.loc[frame["recommended"] == 1, "consumed"].mean()
        - frame.loc[frame["recommended"] == 0, "consumed"].mean()
    )
    planted = {
        "true_ate": true_ate,
        "naive_difference": naive,
        "rows": len(frame),
        "estimators": {
            n: {
                "estimate": e.value,
                "ci": list(e.ci),
                "relative_error": (e.value - true_ate) / true_ate if true_ate else None,
            }
            for n, e in estimates.items()
        },
    }
    primary = estimates[params.primary_estimator]
    print(
        f"causal_estimate [planted truth]: true ATE {true_ate:.4f}, naive {naive:.4f}, {primary.estimator} {primary.value:.4f}"
    )
    write_json(OUTPUT, {"questions": answers, "semi_synthetic": planted})


if __name__ == "__main__":
    run_stage(main)
