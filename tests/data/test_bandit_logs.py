"""The Open Bandit Dataset sample as recause reads it, and the policies evaluated on it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recause.ope.logs import obd_item_context, obd_log, to_arrays, user_categories
from recause.ope.policies import GreedyClickPolicy, bernoulli_ts_policy, bts_prior, per_round, uniform_policy
from recause.ope.reward_model import fit_predict_rewards


@pytest.fixture(scope="module")
def obd(open_bandit_random: Path):
    from tests.conftest import WHEEL_CACHE

    wheel = next(WHEEL_CACHE.glob("obp-0.4.1-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        log = obd_log(archive.read("obp/dataset/obd/random/all/all.csv"), "random/all.csv")
        items = obd_item_context(archive.read("obp/dataset/obd/random/all/item_context.csv"), "item_context.csv")
        prior = yaml.safe_load(archive.read("obp/policy/conf/prior_bts.yaml"))
    return log, items, prior


def test_a_log_is_tidy_and_typed(obd) -> None:
    log, items, _ = obd
    assert len(log) == 10_000 and log["round"].tolist() == list(range(10_000))
    assert log["item_id"].between(0, 79).all() and set(log["position"]) == {1, 2, 3}
    assert set(log["click"]) == {0, 1} and np.allclose(log["propensity_score"], 1 / 80)
    assert len([c for c in log if c.startswith("affinity_")]) == 80 and log["affinity_0"].dtype == "float32"
    assert log["timestamp"].min() > 1_500_000_000  # parsed from '2019-11-24 00:00:34.762830+00:00'
    assert items["item_id"].tolist() == list(range(80))


def test_arrays_share_one_feature_layout(obd) -> None:
    log, items, _ = obd
    layout = user_categories([log, log.iloc[:100]])
    arrays = to_arrays(log.iloc[:100], items, layout)
    full = to_arrays(log, items, layout)
    assert arrays.context.shape[1] == full.context.shape[1] == sum(len(v) for v in layout.values())
    assert (arrays.context.sum(axis=1) == 4).all()  # one value per user feature
    assert arrays.position.min() == 0 and arrays.len_list == 3 and arrays.affinity.shape == (100, 80)


def test_bts_action_distribution_from_its_prior(obd) -> None:
    _, _, prior = obd
    alpha, beta = bts_prior(prior, "all", 80)
    policy = bernoulli_ts_policy(alpha, beta, 3, 20_000, seed=0)
    assert policy.shape == (80, 3) and np.allclose(policy.sum(axis=0), 1.0)
    assert (policy.sum(axis=1) <= 1 + 1e-12).all()  # an item fills at most one slot per round
    # the item with the highest prior mean leads most often at the first position
    assert policy[:, 0].argmax() == np.argmax(alpha / (alpha + beta))
    with pytest.raises(KeyError, match="no BTS prior for campaign 'kids'"):
        bts_prior(prior, "kids", 80)


def test_two_armed_thompson_sampling_matches_its_closed_form() -> None:
    # P(Beta(2, 1) > Beta(1, 1)) = integral of 2x * x dx over [0, 1] = 2/3
    policy = bernoulli_ts_policy(np.array([2.0, 1.0]), np.array([1.0, 1.0]), 1, 200_000, seed=1)
    assert policy[0, 0] == pytest.approx(2 / 3, abs=0.005)
    assert np.allclose(uniform_policy(4, 2), 0.25) and per_round(uniform_policy(4, 2), np.array([0, 1, 1])).shape == (
        3,
        4,
    )


def test_reward_model_learns_a_planted_affinity_effect(obd) -> None:
    log, items, _ = obd
    arrays = to_arrays(log, items)
    rng = np.random.default_rng(0)
    affinity = rng.random((len(log), 80))
    planted = type(arrays)(**{**arrays.__dict__, "affinity": affinity})
    chosen = affinity[np.arange(len(log)), arrays.action]
    planted = type(arrays)(**{**planted.__dict__, "reward": (rng.random(len(log)) < 0.02 + 0.3 * chosen).astype(float)})
    q_hat = fit_predict_rewards(planted, n_folds=3, seed=0)
    assert q_hat.shape == (len(log), 80) and ((q_hat >= 0) & (q_hat <= 1)).all()
    # true click rates: ~0.305 in the top affinity decile, ~0.035 in the bottom one (8.7x)
    top, bottom = q_hat[affinity > 0.9].mean(), q_hat[affinity < 0.1].mean()
    assert 0.2 < top < 0.4 and 0.0 < bottom < 0.08 and top / bottom > 4


def test_greedy_policy_puts_the_kth_best_item_at_position_k(obd) -> None:
    log, items, _ = obd
    arrays = to_arrays(log, items)
    policy = GreedyClickPolicy().fit(arrays)
    dist = policy.action_dist(arrays)
    assert np.allclose(dist.sum(axis=1), 1.0) and set(np.unique(dist)) <= {0.0, 1.0}
    # the same user shown at positions 1, 2, 3 would get three different items
    same_user = type(arrays)(**{**arrays.subset(np.array([0, 0, 0])).__dict__, "position": np.array([0, 1, 2])})
    assert len(set(policy.action_dist(same_user).argmax(axis=1))) == 3


def _own_logs(directory: Path, corrupt_propensity: float | None = None) -> None:
    """Your own logs laid out like OBD: <policy>/<campaign>/<campaign>.csv, item_context.csv, prior_bts.yaml."""
    from tests.conftest import WHEEL_CACHE

    with zipfile.ZipFile(next(WHEEL_CACHE.glob("obp-0.4.1-*.whl"))) as archive:
        for policy in ("random", "bts"):
            target = directory / policy / "all"
            target.mkdir(parents=True)
            log = archive.read(f"obp/dataset/obd/{policy}/all/all.csv").decode().splitlines()[:2001]
            if corrupt_propensity is not None and policy == "bts":
                fields = log[5].split(",")
                fields[5] = str(corrupt_propensity)
                log[5] = ",".join(fields)
            (target / "all.csv").write_text("\n".join(log) + "\n")
            (target / "item_context.csv").write_bytes(archive.read(f"obp/dataset/obd/{policy}/all/item_context.csv"))
        (directory / "prior_bts.yaml").write_bytes(archive.read("obp/policy/conf/prior_bts.yaml"))


def _ingest(workspace: Path, logs: Path) -> subprocess.CompletedProcess[str]:
    from tests.conftest import ROOT

    (workspace / "params.yaml").write_text(f"bandit:\n  source: directory\n  directory: {logs}\n  campaigns: [all]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tasks.ingest_bandit"], cwd=workspace, env=env, capture_output=True, text=True
    )


def test_ingest_bandit_reads_your_own_logs(tmp_path: Path) -> None:
    _own_logs(tmp_path / "logs")
    done = _ingest(tmp_path, tmp_path / "logs")
    assert done.returncode == 0, done.stderr
    for name in ("random_all", "bts_all", "items_all"):
        assert (tmp_path / f"data/bandit/{name}.parquet").is_file()
    assert len(pd.read_parquet(tmp_path / "data/bandit/bts_all.parquet")) == 2000


def test_ingest_bandit_stops_on_a_log_the_gate_rejects(tmp_path: Path) -> None:
    _own_logs(tmp_path / "logs", corrupt_propensity=0.0)
    done = _ingest(tmp_path, tmp_path / "logs")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'logs/bts/all/all.csv'}: column 'propensity_score': "
        "rule 'propensity in (0, 1]' broken by 1 row(s); e.g. [0.0]"
    )
    assert not (tmp_path / "data/bandit").exists()  # nothing half-written


def test_logistic_rewards_for_every_action_equal_predicting_the_whole_feature_grid(obd) -> None:
    """The closed-form logit of the logistic reward model gives what sklearn gives on the (rounds x actions) grid."""
    from sklearn.linear_model import LogisticRegression

    from recause.ope.reward_model import _predict_every_action, features

    log, items, _ = obd
    arrays = to_arrays(log, items)
    model = LogisticRegression(max_iter=1000).fit(features(arrays, np.arange(len(log)), arrays.action), arrays.reward)
    rows = np.arange(0, len(log), 7)
    grid = model.predict_proba(
        features(arrays, np.repeat(rows, arrays.n_actions), np.tile(np.arange(arrays.n_actions), len(rows)))
    )[:, 1]
    np.testing.assert_allclose(_predict_every_action(model, arrays, rows), grid.reshape(len(rows), -1), rtol=1e-10)
