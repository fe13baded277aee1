"""`recause api` under stress on the tiny workspace: schema-driven fuzzing finds no 5xx and no response off its
schema, and a promotion and a rollback under load fail no request and change the version every response names.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from recause.config import load_params
from recause.online.app import create_app
from recause.serving import champion, load_served
from tests.integration.workspaces import Workspace, clone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fuzzed_app(tiny_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = clone(tiny_workspace, tmp_path_factory.mktemp("fuzz") / "recause").root
    app = create_app(root, load_params(root / "params.yaml"))
    with TestClient(app):  # runs the lifespan: the model is loaded before the first generated request
        yield app


def test_fuzzed_requests_never_get_a_server_error_or_an_off_schema_response(fuzzed_app) -> None:  # noqa: ANN001
    """Every operation of the OpenAPI schema, with inputs schemathesis derives from it (valid and not), a bounded
    number each and a fixed seed: no 5xx, and every documented response matches its schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def call(case) -> None:  # noqa: ANN001
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        call()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _point_champion_at(root: Path, model: str) -> None:
    """What a promotion or a rollback changes for the server: the model models/champion.json names."""
    path = root / "models/champion.json"
    choice = json.loads(path.read_text(encoding="utf-8"))
    partial = path.with_name(".champion.json.partial")
    partial.write_text(json.dumps({**choice, "served": model}), encoding="utf-8")
    os.replace(partial, path)  # a new file: the clone's original stays untouched


def test_promotion_and_rollback_under_load_fail_no_request(workspace_clone: Workspace) -> None:
    root = workspace_clone.root
    original = champion(root)
    params = load_params(root / "params.yaml")
    params = params.model_copy(update={"serving": params.serving.model_copy(update={"reload_interval_s": 0.1})})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(root, params), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    users = load_served(root, original).users.ids[:8].tolist()
    stop, outcomes = threading.Event(), Counter()
    versions: list[list[str]] = [[] for _ in users]  # per client: its requests are sequential, so its order is real

    def hammer(number: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while not stop.is_set():
                try:
                    answer = client.get(f"/recommendations/{users[number]}", params={"k": 5})
                    outcomes[answer.status_code] += 1
                    if answer.status_code == 200:
                        versions[number].append(answer.json()["version"])
                except httpx.HTTPError as error:
                    outcomes[type(error).__name__] += 1

    clients = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    try:
        for client in clients:
            client.start()
        for model in ("ease", original):  # a promotion of another model, then the rollback
            time.sleep(1.0)
            _point_champion_at(root, model)
            deadline = time.time() + 15
            while not all(v and v[-1].startswith(f"{model}@") for v in versions) and time.time() < deadline:
                time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join()
        server.should_exit = True
        thread.join(timeout=10)
    assert set(outcomes) == {200} and outcomes[200] > 100, outcomes
    for seen in versions:  # every client saw the old model, then only the new one, then only the old one again
        order = [v.split("@")[0] for i, v in enumerate(seen) if i == 0 or v != seen[i - 1]]
        assert order == [original, "ease", original], order
