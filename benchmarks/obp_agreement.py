"""recause's off-policy estimators against obp 0.4.1 on the Open Bandit Dataset sample.

1. Agreement: obp's IPW, SNIPW, DM and DR run on exactly recause's arrays (actions, rewards,
   positions, propensities, action distribution, reward-model predictions); every absolute
   difference must be <= 1e-9.
2. The relative-error protocol, BTS valued from Random logs, each tool with its own reward model,
   on the same bootstrap samples.

obp needs pandas < 2, so it runs in its own venv, benchmarks/.venv-obp (created on first use).
Run: .venv/bin/python benchmarks/obp_agreement.py [--campaign all] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import yaml

from recause.layout import LAYOUT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = LAYOUT.under(ROOT)

from recause.config import WheelSource  # noqa: E402
from recause.data.wheels import locate_wheel  # noqa: E402
from recause.ope.estimators import ESTIMATORS, LoggedRounds  # noqa: E402
from recause.ope.logs import obd_item_context, obd_log, to_arrays, user_categories  # noqa: E402
from recause.ope.policies import bernoulli_ts_policy, bts_prior, per_round  # noqa: E402
from recause.ope.reward_model import fit_predict_rewards  # noqa: E402

OBP_VENV = ROOT / "benchmarks" / ".venv-obp"
OBP_REQUIREMENTS = ["obp==0.4.1", "pandas<2", "numpy<2", "scikit-learn<1.6", "scipy<1.14"]
COMPARED = {"ipw": "ipw", "snipw": "snipw", "dm": "dm", "dr": "dr"}

OBP_SIDE = r"""
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from obp.ope import (DirectMethod, DoublyRobust, InverseProbabilityWeighting, OffPolicyEvaluation,
                     RegressionModel, SelfNormalizedInverseProbabilityWeighting)
d = np.load(sys.argv[1])
names = {"ipw": InverseProbabilityWeighting(), "snipw": SelfNormalizedInverseProbabilityWeighting(),
         "dm": DirectMethod(), "dr": DoublyRobust()}
common = dict(reward=d["reward"], action=d["action"], position=d["position"], pscore=d["pscore"],
              action_dist=d["action_dist"])
same = {n: float(e.estimate_policy_value(**common, estimated_rewards_by_reg_model=d["q_hat"]))
        for n, e in names.items()}
errors = {n: [] for n in names}
n_actions, len_list = d["action_dist"].shape[1], d["action_dist"].shape[2]
for rows in d["bootstrap"]:
    model = RegressionModel(n_actions=n_actions, len_list=len_list, action_context=d["action_context"],
                            base_model=LogisticRegression(C=1.0, max_iter=1000))
    q = model.fit_predict(context=d["context"][rows], action=d["action"][rows], reward=d["reward"][rows],
                          position=d["position"][rows], pscore=d["pscore"][rows],
                          action_dist=d["action_dist"][rows], n_folds=3, random_state=0)
    ope = OffPolicyEvaluation(bandit_feedback=dict(n_rounds=len(rows), action=d["action"][rows],
                              reward=d["reward"][rows], position=d["position"][rows], pscore=d["pscore"][rows]),
                              ope_estimators=list(names.values()))
    found = ope.estimate_policy_values(action_dist=d["action_dist"][rows], estimated_rewards_by_reg_model=q)
    for n, e in names.items():
        errors[n].append(abs(found[e.estimator_name] - float(d["truth"])) / float(d["truth"]))
print(json.dumps({"same_inputs": same, "relative_errors": errors}))
"""


def obp_python() -> Path:
    python = OBP_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {OBP_VENV} for obp 0.4.1 (once, a few minutes)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(OBP_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)  # the CPU wheel on disk; obp requires torch
        subprocess.run([*pip, *OBP_REQUIREMENTS], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", default="all")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    wheel = locate_wheel(WheelSource(package="obp", version="0.4.1", cache_dir=str(WORKSPACE.wheels)))
    with zipfile.ZipFile(wheel) as archive:
        base = f"obp/dataset/obd/%s/{args.campaign}/"
        logs = {p: obd_log(archive.read(base % p + f"{args.campaign}.csv"), p) for p in ("random", "bts")}
        items = obd_item_context(archive.read(base % "random" + "item_context.csv"), "item_context")
        prior = yaml.safe_load(archive.read("obp/policy/conf/prior_bts.yaml"))
    arrays = to_arrays(logs["random"], items, user_categories(list(logs.values())))
    policy = bernoulli_ts_policy(*bts_prior(prior, args.campaign, len(items)), arrays.len_list, 100_000, seed=12345)
    truth = float(logs["bts"]["click"].mean())
    q_hat = fit_predict_rewards(arrays, n_folds=3, seed=0)
    rounds = LoggedRounds(arrays.action, arrays.reward, arrays.pscore, per_round(policy, arrays.position), q_hat)
    ours = {name: float(ESTIMATORS[name](rounds).mean()) for name in COMPARED}

    n = len(arrays.action)
    bootstrap = np.stack([np.random.default_rng(run).integers(0, n, size=n) for run in range(args.runs)])
    our_errors: dict[str, list[float]] = {name: [] for name in COMPARED}
    for rows in bootstrap:
        sample = arrays.subset(rows)
        sample_rounds = LoggedRounds(
            sample.action,
            sample.reward,
            sample.pscore,
            per_round(policy, sample.position),
            fit_predict_rewards(sample, 3, seed=0),
        )
        for name in COMPARED:
            our_errors[name].append(abs(ESTIMATORS[name](sample_rounds).mean() - truth) / truth)

    full_dist = np.repeat(policy[None, :, :], n, axis=0)  # obp's (n_rounds, n_actions, len_list)
    full_q = np.repeat(q_hat[:, :, None], arrays.len_list, axis=2)  # obp reads each round's own position
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npz"
        np.savez(
            inputs, action=arrays.action, position=arrays.position, reward=arrays.reward, pscore=arrays.pscore,
            action_dist=full_dist, q_hat=full_q, context=np.hstack([arrays.context, arrays.affinity]),
            action_context=arrays.action_context, bootstrap=bootstrap, truth=truth,
        )  # fmt: skip
        done = subprocess.run([str(obp_python()), "-c", OBP_SIDE, str(inputs)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"obp side failed:\n{done.stderr[-3000:]}")
    theirs = json.loads(done.stdout.strip().splitlines()[-1])

    print(f"Open Bandit Dataset, campaign '{args.campaign}': BTS valued from the Random log (truth {truth:.5f})")
    print("1. same inputs (recause's reward model), absolute difference must be <= 1e-9")
    worst = 0.0
    for name, obp_name in COMPARED.items():
        diff = abs(ours[name] - theirs["same_inputs"][obp_name])
        worst = max(worst, diff)
        print(f"   {name:6s} recause {ours[name]:.12f}  obp {theirs['same_inputs'][obp_name]:.12f}  |diff| {diff:.1e}")
    print(f"   worst {worst:.1e}: {'AGREE' if worst <= 1e-9 else 'DISAGREE'}")
    print(f"2. relative estimation error over the same {args.runs} bootstrap samples (mean +- std)")
    print(f"   {'estimator':10s} {'recause':>16s} {'obp 0.4.1':>16s}")
    for name, obp_name in COMPARED.items():
        mine, other = np.array(our_errors[name]), np.array(theirs["relative_errors"][obp_name])
        print(f"   {name:10s} {mine.mean():7.3f} +- {mine.std():5.3f} {other.mean():7.3f} +- {other.std():5.3f}")
    if worst > 1e-9:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
