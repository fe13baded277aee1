"""The exposure log -> off-policy evaluation round trip: a simulated population with known preferences is served
through the API by an exploring policy, clicks come back as events, and the greedy policy's value estimated from
that log (SNIPS and IPS, recause.ope) contains its true value, which the log's own click rate does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recause.config import load_params
from recause.data.keys import existing_pseudonym_key
from recause.data.pseudonym import pseudonym
from recause.layout import LAYOUT
from recause.online.app import create_app
from recause.online.exposure import logged_rounds, read_clicks, read_exposure
from recause.online.policy import PolicySettings, marginals
from recause.ope.estimators import estimate
from recause.operations.off_policy import off_policy_value
from recause.serving import champion, load_served
from tests.integration.workspaces import Workspace

pytestmark = pytest.mark.integration

K, REQUESTS, EPSILON, POOL = 3, 1500, 0.5, 10


def test_ope_on_the_served_exposure_log_recovers_another_policys_true_value(workspace_clone: Workspace) -> None:
    root = workspace_clone.root
    params = load_params(root / "params.yaml")
    serving = params.serving.model_copy(update={"policy": "epsilon", "epsilon": EPSILON, "exploration_pool": POOL})
    served = load_served(root, champion(root))
    key = existing_pseudonym_key(params.data, root)
    raw_of = {pseudonym(str(n), key): str(n) for n in range(1, 944)}  # the tiny profile samples MovieLens users
    users = [u for u in served.users.ids if u in raw_of]
    rows = np.array([served.user_rows[u] for u in users])
    scores = np.asarray(served.scores(rows), dtype=np.float64)
    seen = served.history[rows].toarray() > 0
    # Known preferences: a click is likelier the better the model ranks the item for that user.
    standard = (scores - scores.mean(axis=1, keepdims=True)) / scores.std(axis=1, keepdims=True)
    click = 1 / (1 + np.exp(-(2.0 * standard - 4.0)))
    greedy = [marginals(scores[u], seen[u], K, PolicySettings("greedy")) for u in range(len(users))]
    rng = np.random.default_rng(0)
    events, asked = [], []
    with TestClient(create_app(root, params.model_copy(update={"serving": serving}))) as client:
        for number in range(REQUESTS):
            u = number % len(users)
            body = client.get(f"/recommendations/{users[u]}", params={"k": K, "request_id": f"sim-{number}"}).json()
            asked.append(u)
            for item in body["items"]:
                column = served.items.positions(np.asarray([item["item_id"]]))[0]
                if rng.random() < click[u, column]:
                    events.append({"event_id": f"sim-{number}-{item['position']}", "user_id": raw_of[users[u]],
                                   "item_id": item["item_id"], "request_id": body["request_id"],
                                   "timestamp": 890_000_000 + number})  # fmt: skip
        for start in range(0, len(events), 500):
            answer = client.post("/events", json={"events": events[start : start + 500]})
            assert answer.status_code == 200 and answer.json()["accepted"] == len(events[start : start + 500])
    exposure = read_exposure(LAYOUT.under(root).exposure)
    assert len(exposure) == REQUESTS * K
    clicks = read_clicks(LAYOUT.under(root).incoming)
    assert len(clicks) == len(events)
    position_of_user = {user: u for u, user in enumerate(users)}
    rounds = logged_rounds(exposure, clicks, served.items.ids, lambda user: greedy[position_of_user[user]])
    truth = float(np.mean([np.mean([click[u, g.argmax()] for g in greedy[u]]) for u in asked]))
    logged = float(rounds.reward.mean())
    for name in ("snipw", "ipw"):
        found = estimate(name, rounds, n_bootstrap=500, seed=0)
        assert found.interval[0] <= truth <= found.interval[1], (name, found, truth)
        assert not found.interval[0] <= logged <= found.interval[1], (name, found, logged)
    # The retrain gate's report of a challenger on the served log: here the champion itself, whose greedy value
    # is the truth above.
    parts = {p: pd.read_parquet(LAYOUT.under(root).processed / f"{p}.parquet") for p in ("train", "valid", "test")}
    gate = off_policy_value(root, served.model, served.items, parts, "snipw")
    assert gate is not None and gate["rounds"] == REQUESTS * K
    assert gate["interval"][0] <= truth <= gate["interval"][1] and gate["logged_click_rate"] == logged
