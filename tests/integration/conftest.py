"""What the integration tests share per test run: one Prefect server, and the tiny pipeline built once by
the flow (`recause run --profile tests/profiles/tiny.yaml`), whichever xdist worker asks first; the
others wait for it. A test that changes a workspace takes a clone of the built one (``workspace_clone``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from filelock import FileLock

from recause.workspace import tool_env
from tests.integration.prefect_server import PrefectServer, shared_server
from tests.integration.workspaces import BUILD_RECORD, TinyBuild, Workspace, clone, fresh_copy
from tests.shared_run import run_dir, run_owner_pid

TINY_PROFILE = "tests/profiles/tiny.yaml"
BUILD_TIMEOUT_S = 1800  # a few minutes on 2 idle cores; pytest-timeout covers test calls only (pyproject)


@pytest.fixture(scope="session")
def prefect_server() -> PrefectServer:
    return shared_server(run_dir(), run_owner_pid())


@pytest.fixture(scope="session")
def workspace_env(prefect_server: PrefectServer) -> dict[str, str]:
    """The environment of a workspace's commands: this venv's tools, the run's Prefect server."""
    return prefect_server.env(tool_env())


@pytest.fixture(scope="session")
def tiny_build(workspace_env: dict[str, str], ml100k_wheel: Path, open_bandit_random: Path) -> TinyBuild:
    """The tiny pipeline, built once per test run by the flow in a fresh copy of the project."""
    shared = run_dir()
    record = shared / BUILD_RECORD
    with FileLock(shared / "tiny-build.lock"):
        if not record.exists():
            wheels = sorted(ml100k_wheel.parent.glob("*.whl"))  # recbole (MovieLens) and obp (Open Bandit)
            workspace = fresh_copy(shared / "tiny" / "recause", wheels, workspace_env)
            started = time.monotonic()
            done = workspace.run("recause", "run", "--profile", TINY_PROFILE, timeout=BUILD_TIMEOUT_S)
            result = {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
            record.write_text(json.dumps({**result, "seconds": round(time.monotonic() - started, 1)}))
    built = json.loads(record.read_text())
    return TinyBuild(Workspace(shared / "tiny" / "recause", workspace_env), **built)


@pytest.fixture(scope="session")
def tiny_workspace(tiny_build: TinyBuild) -> Workspace:
    """The built tiny workspace, read-only: a test that changes a workspace takes ``workspace_clone``."""
    if tiny_build.returncode != 0:
        pytest.fail(f"the tiny pipeline did not build:\n{tiny_build.stdout[-3000:]}\n{tiny_build.stderr[-3000:]}")
    return tiny_build.workspace


@pytest.fixture
def workspace_clone(tiny_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A clone of the built tiny workspace (DVC cache, dvc.lock, outputs): `dvc status` is clean in it."""
    return clone(tiny_workspace, tmp_path / "recause")
