"""Scheduled retraining: new data -> challenger -> gate against the champion -> promote or reject.

The champion is a pointer (models/champion.json) to the dvc.lock it was accepted with; promotion
pushes its artifacts to the DVC remote and commits the pointer, dvc.lock and params.yaml; rejection
puts the champion's outputs back. `rollback` restores the previous champion the same way.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.pipeline import run_stages, stage_order
from flows.workspace import tool_env, workspace_lock
from recause.artifacts import load_model
from recause.config import load_params
from recause.config.retrain import GateParams
from recause.data.matrix import IdIndex
from recause.evaluation.protocol import evaluate_on_holdout
from recause.models.baselines import BASELINES
from recause.operations.champion import (
    Champion,
    GateDecision,
    Registry,
    decide,
    frozen_holdout,
    gate_report,
    lock_outs,
    now,
    promoted,
    rolled_back,
)
from recause.operations.store import REGISTRY, fingerprint, materialise, read_registry, write_registry

Log = Callable[[str], None]
MODELS = "models/baselines"
SPLIT = "data/processed"
KEPT_UNCACHED = ("metrics", "reports")  # cache: false outputs, put back by hand when a challenger is rejected


def raw_inputs(root: Path) -> list[Path]:
    """What the fingerprint covers: raw data, incoming files and the user's own source files."""
    data = load_params(root / "params.yaml").data
    own = (
        [Path(t.path) for t in (data.files.interactions, data.files.items, data.files.users) if t] if data.files else []
    )
    return [root / "data/raw", root / "data/incoming", *[p if p.is_absolute() else root / p for p in own]]


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    dvc = shutil.which("dvc", path=tool_env()["PATH"]) or "dvc"
    return subprocess.run([dvc, *args], cwd=root, env=tool_env(), capture_output=True, text=True)


def restore_outputs(root: Path, champion: Champion, log: Log) -> None:
    """Put the champion's dvc.lock back and check its outputs out of the DVC cache."""
    (root / "dvc.lock").write_text(champion.dvc_lock, encoding="utf-8")
    done = _dvc(root, "checkout", "--force", "--quiet")
    if done.returncode != 0:
        log(f"dvc checkout of the champion's outputs reported: {done.stderr.strip()[-500:]}")
    log(f"workspace outputs are the champion's again (accepted {champion.accepted_at})")


def push_and_commit(root: Path, message: str, remote: str, remote_name: str, commit: bool, log: Log) -> None:
    """`dvc push` the artifacts to the champion remote; commit pointer, dvc.lock and params in git."""
    url = remote if "://" in remote else str((root / remote).resolve())
    if "://" not in remote:
        Path(url).mkdir(parents=True, exist_ok=True)
    _dvc(root, "remote", "add", "--local", "--force", remote_name, url)
    pushed = _dvc(root, "push", "--remote", remote_name, "--quiet")
    if pushed.returncode != 0:
        raise RuntimeError(f"dvc push to {url} failed: {pushed.stderr.strip()[-500:]}")
    log(f"champion artifacts pushed to the DVC remote '{remote_name}' ({url})")
    if commit:
        commit_pointer(root, ["dvc.lock", "params.yaml", str(REGISTRY)], message, log)


def commit_pointer(root: Path, paths: list[str], message: str, log: Log) -> None:
    """Commit the champion pointer and what it points through, when the workspace is a git repository."""
    if not (root / ".git").exists():
        return
    git = ["git", "-c", "user.name=recause retrain", "-c", "user.email=retrain@recause.local"]
    subprocess.run([*git, "add", *paths], cwd=root, check=True, capture_output=True)
    done = subprocess.run([*git, "commit", "-q", "-m", message], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        log(f"git commit skipped: {(done.stdout + done.stderr).strip()[-300:]}")


def _parts(directory: Path) -> dict[str, pd.DataFrame]:
    return {part: pd.read_parquet(directory / f"{part}.parquet") for part in ("train", "valid", "test")}


def _model(directory: Path, name: str):  # noqa: ANN202
    model, meta = load_model(directory, name, BASELINES)
    return model, IdIndex(np.asarray(meta["item_ids"], dtype=str))


def challenge(root: Path, champion: Champion | None, gate: GateParams, tie_seed: int) -> GateDecision:
    """The challenger (the workspace's outputs) against the champion (from the DVC cache)."""
    parts = _parts(root / SPLIT)
    model, items = _model(root / MODELS, gate.model)
    if champion is None:
        value, users = evaluate_on_holdout(model, items, parts, parts["test"], gate.metric, tie_seed)
        return decide(None, value, users, len(parts["test"]), gate)
    with tempfile.TemporaryDirectory(prefix="recause-champion-") as scratch:
        old = Path(scratch)
        materialise(root, champion.outs[SPLIT], old / "split")
        materialise(root, champion.outs[MODELS], old / "models")
        old_parts = _parts(old / "split")
        old_model, old_items = _model(old / "models", gate.model)
    holdout = frozen_holdout(old_parts["test"], parts["test"])
    holdout = holdout[(items.positions(holdout["item_id"]) >= 0) & (old_items.positions(holdout["item_id"]) >= 0)]
    before, users = evaluate_on_holdout(old_model, old_items, old_parts, holdout, gate.metric, tie_seed)
    after, _ = evaluate_on_holdout(model, items, parts, holdout, gate.metric, tie_seed)
    return decide(before, after, users, len(holdout), gate)


def _snapshot(root: Path, scratch: Path) -> None:
    for name in KEPT_UNCACHED:
        if (root / name).exists():
            shutil.copytree(root / name, scratch / name)


def _put_back(root: Path, scratch: Path) -> None:
    for name in KEPT_UNCACHED:
        if (scratch / name).exists():
            shutil.rmtree(root / name, ignore_errors=True)
            shutil.copytree(scratch / name, root / name)


@flow(name="recause-retrain")
def retrain(workspace: str = ".", force: bool = False) -> dict[str, object] | State:
    """Retrain when the raw inputs changed; promote the challenger only if it beats the champion.

    Args:
        workspace: The recause project folder (holds dvc.yaml and params.yaml).
        force: Train a challenger even when no new data arrived (e.g. after a params change).
    """
    logger = get_run_logger()
    root = Path(workspace).resolve()
    with workspace_lock(root, logger.info), tempfile.TemporaryDirectory(prefix="recause-uncached-") as scratch:
        params = load_params(root / "params.yaml")
        registry = read_registry(root)
        champion = registry.current
        seen = fingerprint(raw_inputs(root))
        if champion is not None and champion.fingerprint == seen and not force:
            message = f"No new data since the champion accepted at {champion.accepted_at}: nothing retrained."
            logger.info(message)
            create_markdown_artifact(key="retrain-report", markdown=f"# Retrain: skipped\n\n{message}\n")
            return {"outcome": "no-new-data"}
        _snapshot(root, Path(scratch))
        outcome = run_stages(root, stage_order(root, params.retrain.stages), set())
        if isinstance(outcome, State):
            if champion is not None:
                restore_outputs(root, champion, logger.info)
                _put_back(root, Path(scratch))
            return outcome
        decision = challenge(root, champion, params.retrain.gate, params.evaluate.tie_seed)
        report = gate_report(decision, params.retrain.gate, seen)
        if decision.promote:
            lock = (root / "dvc.lock").read_text(encoding="utf-8")
            gate = params.retrain.gate
            new = Champion(
                fingerprint=fingerprint(raw_inputs(root)),
                accepted_at=now(),
                model=gate.model,
                metric=gate.metric,
                value=decision.challenger,
                outs=lock_outs(lock),
                dvc_lock=lock,
            )
            write_registry(root, promoted(registry, new))
            message = f"retrain: promote challenger ({gate.model} {gate.metric} {decision.challenger:.4f})"
            settings = params.retrain
            push_and_commit(root, message, settings.remote, settings.remote_name, settings.commit, logger.info)
        else:
            assert champion is not None  # the first run is always promoted
            restore_outputs(root, champion, logger.info)
            _put_back(root, Path(scratch))
        logger.info(report.splitlines()[2])
        create_markdown_artifact(key="retrain-report", markdown=report, description="Champion/challenger gate")
        return {"outcome": "promoted" if decision.promote else "rejected", **decision.model_dump()}


def rollback(root: Path, log: Log) -> Champion:
    """Make the previous champion current again: its dvc.lock, its outputs, the pointer (and commit)."""
    with workspace_lock(root, log):
        registry: Registry = rolled_back(read_registry(root))
        assert registry.current is not None
        restore_outputs(root, registry.current, log)
        write_registry(root, registry)
        if load_params(root / "params.yaml").retrain.commit:
            message = f"rollback: champion accepted at {registry.current.accepted_at}"
            commit_pointer(root, ["dvc.lock", str(REGISTRY)], message, log)
        return registry.current
