"""The stages that use the runner, on a real Dask cluster, write exactly the numbers of a local run.

A scheduler and two single-threaded workers run as separate processes on 127.0.0.1, outside the
workspace (they read no files). In a clone of the tiny workspace the flow built (where `ope` and
`evaluate` ran locally), both stage modules run again with `orchestration.runner: dask` against that
scheduler, and their metrics must be byte-identical to the flow's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recause.config import apply_params_updates
from recause.layout import LAYOUT
from tests.integration.workspaces import TinyBuild, Workspace

STAGES = ("ope", "evaluate")
METRICS = ("metrics/ope.json", "metrics/ope_policy.json", "metrics/ranking.json")

pytestmark = pytest.mark.integration


def _start(args: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    # own session, so teardown can stop a worker together with the process its nanny spawned
    with log.open("wb") as sink:
        return subprocess.Popen(args, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _run_stages(workspace: Workspace) -> tuple[dict[str, str], str]:
    """Run `ope` and `evaluate` (not through DVC); their metrics and what they printed."""
    printed = ""
    for stage in STAGES:
        done = workspace.run(sys.executable, "-m", f"tasks.{stage}")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        printed += done.stdout
    return {path: (workspace.root / path).read_text() for path in METRICS}, printed


def _printed_by_the_flow(build: TinyBuild) -> str:
    """What `ope` and `evaluate` printed when the flow ran them (Prefect logs each line of a stage)."""
    lines = (build.stdout + build.stderr).splitlines()
    return "\n".join(line for line in lines if any(f"Task run '{stage}' - " in line for stage in STAGES))


def _address(scheduler_file: Path) -> str | None:
    """The scheduler's address once it has written all of its file."""
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


@pytest.fixture
def dask_scheduler(tmp_path: Path) -> Iterator[str]:
    """The address of a real scheduler with two workers (1 thread each), all separate processes."""
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard", "--scheduler-file", str(scheduler_file)]
    processes = [
        _start(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", *common],
            tmp_path / "scheduler.log",
            tmp_path,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while (address := _address(scheduler_file)) is None:
            assert processes[0].poll() is None, (tmp_path / "scheduler.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the Dask scheduler did not start within 60 s"
            time.sleep(0.2)
        for n in range(2):
            worker = [sys.executable, "-m", "distributed.cli.dask_worker", "--nthreads", "1", "--nworkers", "1"]
            local = ["--local-directory", str(tmp_path / f"worker-{n}"), "--death-timeout", "60"]
            processes.append(_start([*worker, *local, *common], tmp_path / f"worker-{n}.log", tmp_path))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)


@pytest.mark.slow
def test_ope_and_evaluate_on_a_dask_cluster_write_the_local_numbers(
    tiny_build: TinyBuild, workspace_clone: Workspace, dask_scheduler: str
) -> None:
    root = workspace_clone.root
    local = {path: (root / path).read_text() for path in METRICS}  # what the flow's local run wrote
    printed = _printed_by_the_flow(tiny_build)
    assert "python -m tasks.ope" in printed and "python -m tasks.evaluate" in printed
    assert "on dask" not in printed

    on_dask = ["orchestration.runner=dask", f"orchestration.dask.address={dask_scheduler}"]
    apply_params_updates(LAYOUT.under(root).params, overrides=on_dask)
    on_cluster, printed = _run_stages(workspace_clone)
    assert f"ope: 4 bootstrap runs on dask {dask_scheduler}" in printed, printed
    segments = sum(len(models) for models in json.loads(local["metrics/ranking.json"]).values())
    assert f"evaluate: {segments} (split, model) segments on dask {dask_scheduler}" in printed, printed
    assert on_cluster == local
