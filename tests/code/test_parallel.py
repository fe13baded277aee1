"""Runners: the local loop keeps order, a Dask LocalCluster gives the local numbers, a dead address fails fast."""

from __future__ import annotations

import socket
import time

import numpy as np
import pandas as pd
import pytest

from recause.config import DaskParams, EvaluateParams, OrchestrationParams
from recause.data.matrix import IdIndex, interaction_matrix
from recause.errors import ParamsError
from recause.evaluation.protocol import evaluate_all
from recause.models.baselines import EASE, ItemKNN, Pop
from recause.ope.logs import BanditArrays
from recause.ope.protocol import EstimatorSettings, context_free, relative_errors
from recause.parallel import LocalRunner, open_runner

ESTIMATORS = ("replay", "ipw", "snipw", "dm", "dr", "sndr", "switch_dr", "dr_os")


def bandit_log(n: int = 1500, n_actions: int = 5, len_list: int = 2, seed: int = 0) -> BanditArrays:
    """A uniform-random log whose click rate depends on the user's group and the item."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, size=n)
    action = rng.integers(0, n_actions, size=n)
    click_rate = rng.uniform(0.05, 0.4, size=(3, n_actions))
    return BanditArrays(
        action=action,
        position=rng.integers(0, len_list, size=n),
        reward=(rng.random(n) < click_rate[groups, action]).astype(float),
        pscore=np.full(n, 1.0 / n_actions),
        context=np.eye(3)[groups],
        action_context=rng.standard_normal((n_actions, 2)),
        affinity=np.zeros((n, n_actions)),
        n_actions=n_actions,
        len_list=len_list,
    )


def ranking_inputs(seed: int = 0) -> tuple[dict[str, pd.DataFrame], dict, IdIndex]:
    """A random 80/10/10 split of 60 users x 80 items, and Pop, ItemKNN and EASE fitted on its train."""
    rng = np.random.default_rng(seed)
    events = pd.DataFrame({"user_id": rng.integers(0, 60, 3000).astype(str), "item_id": rng.integers(0, 80, 3000)})
    events = events.drop_duplicates().assign(item_id=lambda f: f["item_id"].astype(str))
    part = rng.choice(["train", "valid", "test"], size=len(events), p=[0.8, 0.1, 0.1])
    parts = {name: events[part == name] for name in ("train", "valid", "test")}
    items = IdIndex.from_values(events["item_id"])
    users = IdIndex.from_values(events["user_id"])
    train = interaction_matrix(parts["train"], users, items)
    return parts, {m.name: m.fit(train) for m in (Pop(), ItemKNN(), EASE())}, items


def test_the_local_runner_maps_in_input_order_with_shared_inputs() -> None:
    def shifted(item: int, offset: int) -> int:
        return item + offset

    seen: list[int] = []
    results = LocalRunner().map(shifted, [7, 3, 9], progress=lambda it: [seen.append(x) or x for x in it], offset=10)
    assert results == [17, 13, 19] and seen == [7, 3, 9]
    with open_runner(OrchestrationParams()) as runner:
        assert runner.where == "local"


def test_a_dask_local_cluster_gives_the_local_numbers() -> None:
    arrays = bandit_log()
    policy = context_free(np.random.default_rng(1).dirichlet(np.ones(5), size=2).T)  # (n_actions, len_list)
    settings = EstimatorSettings(estimators=ESTIMATORS, switch_tau=100.0, dr_os_lambda=100.0, n_bootstrap=20)
    parts, models, items = ranking_inputs()
    params = EvaluateParams(batch_users=16)

    local_ope = relative_errors(arrays, policy, 0.2, settings, n_runs=4, seed=7)
    local_ranking = evaluate_all(parts, models, items, params, splits=("valid", "test"))
    dask = OrchestrationParams(runner="dask", dask=DaskParams(n_workers=2, threads_per_worker=1))
    with open_runner(dask) as runner:
        assert runner.where.startswith("dask tcp://127.0.0.1:") and runner.where.endswith("(LocalCluster, 2 workers)")
        assert relative_errors(arrays, policy, 0.2, settings, n_runs=4, seed=7, runner=runner) == local_ope
        ranking = evaluate_all(parts, models, items, params, splits=("valid", "test"), runner=runner)
    assert ranking == local_ranking
    assert list(ranking) == ["valid", "test"] and list(ranking["test"]) == ["pop", "itemknn", "ease"]


def test_an_unreachable_scheduler_is_a_one_line_params_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    params = OrchestrationParams(runner="dask", dask=DaskParams(address=f"tcp://127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(ParamsError, match=rf"no Dask scheduler reachable at tcp://127.0.0.1:{port} within 1 s"):
        with open_runner(params, connect_timeout=1.0):
            pass
    assert time.monotonic() - started < 10
