"""Scheduled retraining end to end on a real workspace (a clone of the tiny one): DVC, Prefect, git, a
DVC remote.

One story, in order: the first run becomes the champion (pushed and committed); no new data means
nothing is retrained; new data with crippled params gives a worse challenger that is rejected and
the champion's outputs come back; a later challenger is promoted; `recause rollback` restores the
first champion's outputs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recause.config import update_params_file
from recause.layout import LAYOUT
from tests.integration.workspaces import Workspace

PROFILE = {"retrain": {"stages": ["train_baselines"], "gate": {"model": "ease", "metric": "ndcg@10"}}}

pytestmark = pytest.mark.integration


def _retrain(workspace: Workspace, *flags: str) -> str:
    done = workspace.run("recause", "retrain", *flags)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _set_params(root: Path, updates: dict) -> None:
    update_params_file(LAYOUT.under(root).params, updates)


def _digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _registry(root: Path) -> dict:
    return json.loads((root / "models/accepted.json").read_text(encoding="utf-8"))


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def _drop_new_interactions(root: Path) -> None:
    """One new rating per raw user, of an item that user has not rated, later than any event."""
    raw = pd.read_csv(root / "data/raw/ml-100k/ml-100k.inter", sep="\t")
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    rated = set(zip(raw["user_id"], raw["item_id"], strict=True))
    items = sorted(raw["item_id"].unique())
    rows = []
    for user in sorted(raw["user_id"].unique()):
        item = next(i for i in items[user % 50 :] if (user, i) not in rated)
        rows.append({"user_id": user, "item_id": item, "rating": 4.0, "timestamp": int(raw["timestamp"].max()) + user})
    pd.DataFrame(rows).to_csv(root / "data/incoming/week-48.csv", index=False)


@pytest.fixture
def workspace(workspace_clone: Workspace) -> Workspace:
    """A clone of the tiny workspace, retraining its baselines, committed to its git repository."""
    root = workspace_clone.root
    _set_params(root, PROFILE)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "workspace"], cwd=root, check=True)
    return workspace_clone


@pytest.mark.slow
def test_retrain_gate_promotes_rejects_and_rolls_back(workspace: Workspace) -> None:
    root = workspace.root
    ease = root / "models/baselines/ease.safetensors"

    assert _retrain(workspace).startswith("retrain: promoted (no champion yet")
    first = _registry(root)["current"]
    first_model = _digest(ease)
    assert first["outs"]["models/baselines"].endswith(".dir")
    assert "retrain: promote challenger" in _git(root, "log", "-1", "--format=%s")
    assert not _git(root, "status", "--porcelain", "dvc.lock", "models/accepted.json").strip()
    remote = root / ".recause/dvc-remote/files/md5"
    assert any(remote.rglob("*.dir")), "champion artifacts were not pushed to the DVC remote"

    assert _retrain(workspace) == "retrain: no-new-data"

    _drop_new_interactions(root)
    _set_params(root, {"models": {"baselines": {"ease": {"reg_weight": 0.001}}}})  # a crippled challenger
    verdict = _retrain(workspace)
    assert verdict.startswith("retrain: rejected (ndcg@10 "), verdict
    assert _registry(root)["current"] == first
    assert _digest(ease) == first_model, "the rejected challenger's model was left in place"
    assert (
        yaml.safe_load((root / "dvc.lock").read_text())["stages"]["train_baselines"]["outs"][0]["md5"]
        == (first["outs"]["models/baselines"])
    )

    _set_params(
        root, {"models": {"baselines": {"ease": {"reg_weight": 250.0}}}, "retrain": {"gate": {"min_improvement": -1.0}}}
    )
    assert _retrain(workspace).startswith("retrain: promoted (ndcg@10 ")
    second = _registry(root)
    assert second["previous"][-1] == {**first} and second["current"]["fingerprint"] != first["fingerprint"]
    assert _digest(ease) != first_model

    done = workspace.run("recause", "rollback")
    assert done.returncode == 0, done.stderr[-2000:]
    assert first["accepted_at"] in done.stdout
    assert _registry(root)["current"] == first and _digest(ease) == first_model
    assert _git(root, "log", "-1", "--format=%s").startswith("rollback: champion accepted at")

    done = workspace.run("recause", "rollback")
    assert done.returncode == 2 and "has no predecessor" in done.stderr


def test_two_runs_triggered_at_once_serialise_on_the_workspace_lock(workspace_clone: Workspace) -> None:
    root, env = workspace_clone.root, workspace_clone.env
    command = [str(Path(sys.executable).parent / "recause"), "run", "--stage", "split", "--force", "split"]
    runs = [subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    runs.append(
        subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    )
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    ran = [next(line for line in output.splitlines() if line.startswith("stages run: ")) for output in outputs]
    assert all("split" in line.split(";")[0] for line in ran), ran
    assert sum("waiting for the workspace lock" in output for output in outputs) == 1
    assert not any("Unable to acquire lock" in output or "is locked" in output for output in outputs)
