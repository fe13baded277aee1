"""Stage `ope`: how well each estimator predicts one logged policy's value from the other's log,
and what recause's own policy would earn, on every campaign."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm import tqdm

from recause.artifacts import atomic_path, read_parquet, write_json
from recause.config import Params, load_params
from recause.layout import LAYOUT
from recause.ope.logs import to_arrays, user_categories
from recause.ope.policies import GreedyClickPolicy, bernoulli_ts_policy, bts_prior, uniform_policy
from recause.ope.protocol import EstimatorSettings, context_free, estimate_all, relative_errors
from recause.ope.report import ope_figure
from recause.parallel import Runner, open_runner
from tasks._stage import run_stage

BANDIT_DIR = LAYOUT.bandit
METRICS = LAYOUT.metrics_file("ope")
POLICY_METRICS = LAYOUT.metrics_file("ope_policy")
PLOT = LAYOUT.plot_dir("ope") / "relative_error.png"


def evaluate_campaigns(params: Params, runner: Runner) -> tuple[dict[str, dict], dict[str, dict]]:
    """Relative errors of every estimator in both directions, and recause's own policy, per campaign."""
    ope, campaigns = params.ope, params.bandit.campaigns
    settings = EstimatorSettings(
        estimators=ope.estimators,
        n_folds=ope.n_folds,
        clip=ope.clip,
        switch_tau=ope.switch_tau,
        dr_os_lambda=ope.dr_os_lambda,
        n_bootstrap=ope.n_bootstrap,
    )
    prior = json.loads((BANDIT_DIR / "prior_bts.json").read_text(encoding="utf-8"))
    results: dict[str, dict] = {"bts_from_random": {}, "random_from_bts": {}}
    own: dict[str, dict] = {}
    for campaign in campaigns:
        items = read_parquet(BANDIT_DIR / f"items_{campaign}.parquet", f"item context of '{campaign}'")
        logs = {
            p: read_parquet(BANDIT_DIR / f"{p}_{campaign}.parquet", f"{p} log of '{campaign}'")
            for p in ("random", "bts")
        }
        layout = user_categories(list(logs.values()))
        arrays = {p: to_arrays(log, items, layout) for p, log in logs.items()}
        n_actions, len_list = len(items), arrays["random"].len_list
        alpha, beta = bts_prior(prior, campaign, n_actions)
        bts = bernoulli_ts_policy(alpha, beta, len_list, ope.bts_simulations, ope.seed)
        uniform = uniform_policy(n_actions, len_list)
        truth = {p: float(log["click"].mean()) for p, log in logs.items()}
        plans = {
            "bts_from_random": (arrays["random"], bts, truth["bts"]),
            "random_from_bts": (arrays["bts"], uniform, truth["random"]),
        }
        for direction, (logged, policy, ground_truth) in plans.items():
            results[direction][campaign] = relative_errors(
                logged,
                context_free(policy),
                ground_truth,
                settings,
                ope.n_runs,
                ope.seed,
                progress=lambda it, d=direction, c=campaign: tqdm(it, desc=f"ope {d} {c}", leave=False, disable=None),
                runner=runner,
            )
            best = min(results[direction][campaign].items(), key=lambda kv: kv[1]["relative_ee_mean"])
            print(
                f"ope [{direction}/{campaign}] truth {ground_truth:.5f}; best {best[0]} relative error {best[1]['relative_ee_mean']:.3f}"
            )

        # recause's own policy: learned on one half of the random log, valued on the other half
        halves = np.random.default_rng(ope.seed).permutation(len(logs["random"])) % 2
        learn, hold_out = (arrays["random"].subset(np.flatnonzero(halves == h)) for h in (0, 1))
        greedy = GreedyClickPolicy().fit(learn)
        own[campaign] = {
            "logged_on_policy_value": truth,
            "recause_greedy": estimate_all(hold_out, greedy.action_dist, settings, ope.seed),
        }
    return results, own


def main() -> None:
    params = load_params()
    with open_runner(params.orchestration) as runner:
        if runner.where != "local":
            n_runs = 2 * len(params.bandit.campaigns) * params.ope.n_runs  # two directions per campaign
            print(f"ope: {n_runs} bootstrap runs on {runner.where}")
        results, own = evaluate_campaigns(params, runner)
    write_json(METRICS, results)
    write_json(POLICY_METRICS, own)
    with atomic_path(PLOT) as tmp:
        figure = ope_figure(results)
        figure.savefig(tmp, format="png")
        plt.close(figure)
    table = pd.DataFrame(
        {
            (d, c): {e: v["relative_ee_mean"] for e, v in by_estimator.items()}
            for d, cs in results.items()
            for c, by_estimator in cs.items()
        }
    )
    print("ope: mean relative estimation error\n" + table.round(3).to_string())


if __name__ == "__main__":
    run_stage(main)
