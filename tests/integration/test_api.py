"""`recause api` on the tiny workspace: real-time lists equal `recause recommend`'s, reasons equal `recause explain`'s,
bad input never gives a 5xx, events reach data/incoming once, the exposure log carries the policy's propensities.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recause.causal.explain import explain_top_k
from recause.config import Params, load_params
from recause.data.keys import existing_pseudonym_key
from recause.data.pseudonym import pseudonym
from recause.data.schemas import INTERACTION_COLUMNS
from recause.data.tables import canonical
from recause.layout import LAYOUT
from recause.online.app import create_app
from recause.online.exposure import read_exposure
from recause.serving import champion, load_served
from tests.integration.workspaces import Workspace, clone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served_workspace(tiny_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One clone for the module: the API appends to its data/exposure and data/incoming."""
    return clone(tiny_workspace, tmp_path_factory.mktemp("api") / "recause")


def params_with(root: Path, **serving: object) -> Params:
    params = load_params(root / "params.yaml")
    return params.model_copy(update={"serving": params.serving.model_copy(update=serving)})


@pytest.fixture(scope="module")
def raw_user(served_workspace: Workspace) -> str:
    """A MovieLens id (as in the raw data) of a user the tiny workspace sampled: the key maps it to its pseudonym."""
    root = served_workspace.root
    params = load_params(root / "params.yaml")
    key = existing_pseudonym_key(params.data, root)
    known = set(load_served(root, champion(root)).users.ids)
    return next(str(n) for n in range(1, 944) if pseudonym(str(n), key) in known)


@pytest.fixture(scope="module")
def client(served_workspace: Workspace):  # noqa: ANN201
    with TestClient(create_app(served_workspace.root, params_with(served_workspace.root))) as test_client:
        yield test_client


def test_served_lists_are_recommends_lists_and_name_the_champion(
    client: TestClient, served_workspace: Workspace
) -> None:
    root = served_workspace.root
    served = load_served(root, champion(root))
    expected = served.top_k(7)
    for user in served.users.ids[:10]:
        answer = client.get(f"/recommendations/{user}", params={"k": 7})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        mine = expected[expected["user_id"] == user]
        assert [i["item_id"] for i in body["items"]] == mine["item_id"].tolist()
        assert np.allclose([i["score"] for i in body["items"]], mine["score"].to_numpy(), rtol=0, atol=1e-6)
        assert body["model"] == champion(root) and body["version"].startswith(f"{champion(root)}@")
    user = str(served.users.ids[0])
    printed = served_workspace.run("recause", "recommend", "--user", user, "--k", "3")
    assert printed.returncode == 0 and f"by {champion(root)}" in printed.stdout, printed.stderr[-2000:]
    first = client.get(f"/recommendations/{user}", params={"k": 3}).json()["items"][0]["title"]
    assert first[:20] in printed.stdout


def test_reasons_are_explains_reasons(client: TestClient, served_workspace: Workspace) -> None:
    served = load_served(served_workspace.root, champion(served_workspace.root))
    row = 3
    expected = explain_top_k(served.model.score, served.history[row], 5)
    body = client.get(f"/recommendations/{served.users.ids[row]}", params={"k": 5, "explain": "true"}).json()
    for item, reason in zip(body["items"], expected, strict=True):
        assert item["item_id"] == served.items.ids[reason.item]
        if reason.reason is None:
            assert item["reason"] is None
        else:
            assert item["reason"]["item_id"] == served.items.ids[reason.reason]
            assert item["reason"]["rank_without"] == reason.rank_without
    one = body["items"][0]
    explained = client.get(f"/explanations/{served.users.ids[row]}/{one['item_id']}", params={"k": 5}).json()
    assert explained["rank"] == 1 and explained["reasons"][0]["item_id"] == one["reason"]["item_id"]


def test_fold_in_of_a_known_history_gives_that_users_list(client: TestClient, served_workspace: Workspace) -> None:
    served = load_served(served_workspace.root, champion(served_workspace.root))
    row = 5
    liked = served.items.ids[served.history[row].indices].tolist()
    folded = client.post("/recommendations", json={"liked": liked, "k": 6}).json()
    known = client.get(f"/recommendations/{served.users.ids[row]}", params={"k": 6}).json()
    assert [i["item_id"] for i in folded["items"]] == [i["item_id"] for i in known["items"]]
    assert folded["known_user"] is False and folded["cold_start"] is False


def test_unknown_users_get_the_popular_items_or_a_404(client: TestClient, served_workspace: Workspace) -> None:
    served = load_served(served_workspace.root, champion(served_workspace.root))
    popular = served.items.ids[np.argsort(-np.asarray(served.history.sum(axis=0)).ravel(), kind="stable")[:4]]
    body = client.get("/recommendations/no-such-user", params={"k": 4}).json()
    assert body["cold_start"] is True and [i["item_id"] for i in body["items"]] == popular.tolist()
    strict = create_app(served_workspace.root, params_with(served_workspace.root, unknown_user="not_found"))
    with TestClient(strict) as other:
        answer = other.get("/recommendations/no-such-user")
        assert answer.status_code == 404 and "unknown user 'no-such-user'" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "names"),
    [
        ("get", "/recommendations/1", {"params": {"k": 0}}, 422, "query.k"),
        ("get", "/recommendations/1", {"params": {"k": 101}}, 422, "query.k"),
        ("get", "/recommendations/1", {"params": {"k": "ten"}}, 422, "query.k"),
        ("get", "/recommendations/a%20b", {}, 422, "path.user_id"),
        ("post", "/recommendations", {"json": {"liked": ["1"], "colour": "red"}}, 422, "body.colour"),
        ("post", "/recommendations", {"json": {"liked": []}}, 422, "body.liked"),
        (
            "post",
            "/recommendations",
            {"json": {"liked": ["no-such-item"]}},
            422,
            "liked: unknown item id(s) no-such-item",
        ),
        (
            "post",
            "/recommendations",
            {"content": b"\xff\xfe{", "headers": {"content-type": "application/json"}},
            400,
            "body",
        ),
        ("post", "/recommendations", {"json": {"liked": ["1"] * 40_000}}, 413, "serving.max_body_bytes"),
        ("post", "/events", {"json": {"events": [{"event_id": "x", "user_id": "1"}]}}, 422, "body.events.0.item_id"),
        ("get", "/explanations/no-such-user/1", {}, 404, "unknown user 'no-such-user'"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(client: TestClient, method, path, kwargs, status, names) -> None:  # noqa: ANN001
    answer = getattr(client, method)(path, **kwargs)
    assert answer.status_code == status, answer.text
    assert names in answer.json()["detail"]


def test_events_are_checked_appended_once_and_readable_by_ingest(
    client: TestClient, served_workspace: Workspace, raw_user: str
) -> None:
    from recause.config.data import TableFile
    from tasks.ingest import read_user_table

    incoming = LAYOUT.under(served_workspace.root).incoming
    item = load_served(served_workspace.root, champion(served_workspace.root)).items.ids[0]
    event = {"event_id": "ev-1", "user_id": raw_user, "item_id": item, "rating": 4.0, "timestamp": 890_000_000}
    before = set(incoming.glob("events-*.csv"))  # other tests of this module post events to the same clone
    first = client.post(
        "/events", json={"events": [event, {**event, "event_id": "ev-2", "rating": 2.0, "timestamp": 890_000_001}]}
    )
    assert first.status_code == 200 and first.json() == {"accepted": 2, "duplicates": 0}
    again = client.post("/events", json={"events": [event]})
    assert again.json() == {"accepted": 0, "duplicates": 1}
    files = sorted(set(incoming.glob("events-*.csv")) - before)
    assert len(files) == 1
    table = canonical("interactions", read_user_table(TableFile(path=str(files[0])), "incoming", INTERACTION_COLUMNS))
    assert table["user_id"].tolist() == [raw_user, raw_user] and table["rating"].tolist() == [4.0, 2.0]
    for broken, rule in [({"rating": 9.0}, "rating within [1, 5]"), ({"item_id": "no-such-item"}, "item_id exists"),
                         ({"user_id": "no-such-user"}, "user_id exists")]:  # fmt: skip
        answer = client.post("/events", json={"events": [{**event, "event_id": "ev-3", **broken}]})
        assert answer.status_code == 422 and rule in answer.json()["detail"]
    assert set(incoming.glob("events-*.csv")) - before == set(files)


def test_events_need_the_api_key_off_loopback(
    served_workspace: Workspace, raw_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECAUSE_API_KEY", "s3cret")
    app = create_app(served_workspace.root, params_with(served_workspace.root, host="0.0.0.0"))
    batch = {"events": [{"event_id": "key-1", "user_id": raw_user, "item_id": "1", "timestamp": 890_000_000}]}
    with TestClient(app) as remote:
        assert remote.post("/events", json=batch).status_code == 401
        assert remote.post("/events", json=batch, headers={"X-API-Key": "wrong"}).status_code == 401
        assert remote.post("/events", json=batch, headers={"X-API-Key": "s3cret"}).status_code == 200
    monkeypatch.delenv("RECAUSE_API_KEY")
    refused = served_workspace.run("recause", "api", "--host", "0.0.0.0")
    assert refused.returncode == 2 and "refusing to bind 0.0.0.0 without an API key" in refused.stderr


def test_exposure_log_holds_pseudonyms_positions_and_the_policys_propensities(served_workspace: Workspace) -> None:
    root = served_workspace.root
    app = create_app(root, params_with(root, policy="epsilon", epsilon=0.4, exploration_pool=12))
    served = load_served(root, champion(root))
    with TestClient(app) as exploring:
        ids = [
            exploring.get(f"/recommendations/{u}", params={"k": 4, "request_id": f"r{u}"}).json()
            for u in served.users.ids[:8]
        ]
        replay = exploring.get(
            f"/recommendations/{served.users.ids[0]}", params={"k": 4, "request_id": f"r{served.users.ids[0]}"}
        )
    assert [i["item_id"] for i in replay.json()["items"]] == [i["item_id"] for i in ids[0]["items"]]
    log = read_exposure(LAYOUT.under(root).exposure)
    mine = log[log["round"].isin([body["request_id"] for body in ids])]
    assert len(mine) == 9 * 4 and set(mine["position"]) == {1, 2, 3, 4}  # the replay is shown, so logged, again
    assert set(mine["user_id"]) <= set(served.users.ids) and (mine["policy"] == "epsilon").all()
    top = served.top_k(4, np.arange(8))
    mine = mine.iloc[: 8 * 4]
    greedy = set(zip(top["user_id"], top["rank"], top["item_id"], strict=True))
    expected = [
        0.6 + 0.4 / 12 if (u, p, i) in greedy else 0.4 / 12
        for u, p, i in zip(mine["user_id"], mine["position"], mine["item_id"], strict=True)
    ]
    assert np.allclose(mine["propensity_score"].to_numpy(float), expected)
    assert not set(log["user_id"]) & {str(n) for n in range(1, 944)}  # pseudonyms only: no MovieLens id logged


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    paths = json.loads(client.get("/openapi.json").text)["paths"]
    assert {"/recommendations/{user_id}", "/recommendations", "/explanations/{user_id}/{item_id}", "/events",
            "/health", "/ready", "/metrics"} <= set(paths)  # fmt: skip
    counter = 'recause_requests_total{route="recommendations",status="200"} '

    def served_so_far() -> float:  # other tests of the module may have asked before this one, or not
        found = [line for line in client.get("/metrics").text.splitlines() if line.startswith(counter)]
        return float(found[0].removeprefix(counter)) if found else 0.0

    before = served_so_far()
    assert client.get("/recommendations/no-such-user").status_code == 200
    assert served_so_far() == before + 1
    metrics = client.get("/metrics").text
    assert "recause_model_info{" in metrics and client.get("/ready").json()["ready"] is True


def test_with_the_reranker_served_the_api_shows_its_lists_more_long_tail_than_the_plain_ones(
    served_workspace: Workspace,
) -> None:
    """fairness.rerank.served: the greedy lists are the re-ranker's (as `recause recommend` loads them), never a
    seen item, k long, and hold more long-tail items than the plain top-k of the same users."""
    root = served_workspace.root
    params = load_params(root / "params.yaml")
    fairness = params.fairness.model_copy(
        update={"rerank": params.fairness.rerank.model_copy(update={"served": True, "strength": 1.6})}
    )
    plain, reranked = load_served(root, champion(root)), load_served(root, champion(root), fairness)
    assert reranked.reranker is not None and plain.reranker is None
    tail = reranked.reranker.tail
    users = plain.users.ids[:20]
    expected = reranked.top_k(10, np.arange(20))
    quiet = params.serving.model_copy(update={"log_exposure": False})  # other tests read this clone's exposure log
    app = create_app(root, params.model_copy(update={"fairness": fairness, "serving": quiet}))
    with TestClient(app) as test_client:
        shown = {u: [i["item_id"] for i in test_client.get(f"/recommendations/{u}", params={"k": 10}).json()["items"]]
                 for u in users}  # fmt: skip
    in_tail = {"plain": 0, "reranked": 0}
    for row, user in enumerate(users):
        assert shown[user] == expected[expected["user_id"] == user]["item_id"].tolist()
        columns = plain.items.positions(np.asarray(shown[user], dtype=str))
        assert len(columns) == 10 and not plain.history[row].toarray()[0, columns].any()
        in_tail["reranked"] += int(tail[columns].sum())
        in_tail["plain"] += int(
            tail[plain.items.positions(plain.top_k(10, np.array([row]))["item_id"].to_numpy(str))].sum()
        )
    assert in_tail["reranked"] > in_tail["plain"]
