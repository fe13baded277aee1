"""The stages that use the runner, on a real Dask cluster, write exactly the numbers of a local run.

A scheduler and two single-threaded workers run as separate processes on 127.0.0.1, outside the
workspace (they read no files). On the tiny profile, DVC builds the inputs of `ope` and `evaluate`;
both stage modules run locally, then again with `orchestration.runner: dask` against that
scheduler, and their metrics must be byte-identical. The language-model inputs of `evaluate`
(embed's and finetune's outputs, over a minute of CPU) are random stand-ins of the same format: the
runner is under test here, test_pipeline.py covers the language model.
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

import numpy as np
import pandas as pd
import pytest

from recause.config import apply_params_updates
from tasks._training import EMBEDDINGS
from tasks.evaluate import TWO_TOWER
from tests.integration.test_pipeline import BIN, _run, workspace  # noqa: F401 (workspace: a fixture)

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


def _stand_in_language_model(root: Path, dim: int = 8) -> None:
    """Item embeddings and two-tower heads as `embed` and `finetune` write them, with random values."""
    from safetensors.numpy import save_file

    items = sorted(pd.read_parquet(root / "data/validated/items.parquet")["item_id"].astype(str))  # embed's order
    rng = np.random.default_rng(0)
    (root / EMBEDDINGS).parent.mkdir(parents=True, exist_ok=True)
    embeddings = {"embeddings": rng.standard_normal((len(items), dim)).astype(np.float32)}
    save_file(embeddings, str(root / EMBEDDINGS), metadata={"item_ids": json.dumps(items)})
    (root / TWO_TOWER).mkdir(parents=True, exist_ok=True)
    shapes = {"user_projection.weight": (dim, dim), "user_projection.bias": (dim,), "item_bias.weight": (1, dim)}
    heads = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    save_file(
        {**heads, "item_bias.bias": np.zeros(1, dtype=np.float32)}, str(root / TWO_TOWER / "two_tower.safetensors")
    )
    (root / TWO_TOWER / "two_tower.json").write_text(json.dumps({"temperature": 0.05}), encoding="utf-8")


def _run_stages(root: Path, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Run `ope` and `evaluate` (not through DVC); their metrics and what they printed."""
    printed = ""
    for stage in STAGES:
        done = _run([sys.executable, "-m", f"tasks.{stage}"], root, env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        printed += done.stdout
    return {path: (root / path).read_text() for path in METRICS}, printed


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


def test_ope_and_evaluate_on_a_dask_cluster_write_the_local_numbers(
    workspace: tuple[Path, dict[str, str]],  # noqa: F811
    dask_scheduler: str,
) -> None:
    root, env = workspace
    apply_params_updates(root / "params.yaml", profile=root / "tests/profiles/tiny.yaml")
    done = _run([str(BIN / "dvc"), "repro", "train_baselines", "ingest_bandit"], root, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _stand_in_language_model(root)
    joint = _run([sys.executable, "-m", "tasks.train_joint"], root, env)  # once: it does not use the runner
    assert joint.returncode == 0, joint.stdout[-3000:] + joint.stderr[-3000:]
    local, printed = _run_stages(root, env)
    assert "on dask" not in printed

    on_dask = ["orchestration.runner=dask", f"orchestration.dask.address={dask_scheduler}"]
    apply_params_updates(root / "params.yaml", overrides=on_dask)
    on_cluster, printed = _run_stages(root, env)
    assert f"ope: 4 bootstrap runs on dask {dask_scheduler}" in printed, printed
    assert f"evaluate: 22 (split, model) segments on dask {dask_scheduler}" in printed, printed
    assert on_cluster == local
