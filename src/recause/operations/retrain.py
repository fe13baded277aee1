"""Scheduled retraining around a pipeline run: is there new data, the challenger against the champion,
promotion (push and commit), and putting the champion back (a rejected challenger, a rollback).

The champion is a pointer (``LAYOUT.accepted``) to the dvc.lock it was accepted with; its artifacts
stay in the DVC cache and remote. The flow (``flows/retrain.py``) only wires these steps to Prefect.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from recause.artifacts import load_model, read_parquet
from recause.config import Params, load_params
from recause.config.data import DataParams
from recause.config.retrain import GateParams
from recause.data.matrix import IdIndex
from recause.errors import RecauseError
from recause.evaluation.protocol import evaluate_on_holdout
from recause.layout import LAYOUT
from recause.models.base import Recommender
from recause.operations.champion import (
    Champion,
    GateDecision,
    Registry,
    decide,
    frozen_holdout,
    lock_outs,
    now,
    promoted,
    rolled_back,
)
from recause.operations.off_policy import off_policy_value
from recause.operations.store import fingerprint, materialise, read_registry, write_registry
from recause.serving import SERVABLE, model_location, model_type
from recause.serving import champion as champion_of
from recause.workspace import run_dvc, workspace_lock

Log = Callable[[str], None]
SPLIT_PARTS = ("train", "valid", "test")


def raw_inputs(root: Path, data: DataParams) -> list[Path]:
    """What the fingerprint covers: raw data, incoming files and the user's own source files."""
    layout = LAYOUT.under(root)
    files = data.files
    own = [Path(t.path) for t in (files.interactions, files.items, files.users) if t] if files else []
    return [layout.raw, layout.incoming, *[p if p.is_absolute() else root / p for p in own]]


def nothing_new(champion: Champion | None, seen: str, force: bool) -> str | None:
    """Why no challenger is needed (the champion saw these very inputs), or None when one is."""
    if champion is None or champion.fingerprint != seen or force:
        return None
    return f"No new data since the champion accepted at {champion.accepted_at}: nothing retrained."


def _split_parts(directory: Path) -> dict[str, pd.DataFrame]:
    return {part: read_parquet(directory / f"{part}.parquet", f"split part '{part}'") for part in SPLIT_PARTS}


def _gate_model(root: Path, name: str) -> tuple[Recommender, IdIndex]:
    """The gated model of the workspace (or champion's copy) at ``root`` and its item vocabulary.

    ``champion``: the model that run's `select_champion` chose to serve (its ``models/champion.json``).
    """
    name = champion_of(root) if name == "champion" else name
    if name not in SERVABLE:
        raise RecauseError(
            f"retrain.gate.model '{name}' is not servable: choose champion or one of {', '.join(SERVABLE)}"
        )
    folder, _ = model_location(LAYOUT.under(root), name)
    model, meta = load_model(folder, name, {name: model_type(name)})
    return model, IdIndex(np.asarray(meta["item_ids"], dtype=str))


def _out_holding(champion: Champion, path: Path) -> Path:
    """The output of the champion's dvc.lock that is ``path`` or holds it (a model file in a model folder)."""
    for out in map(Path, champion.outs):
        if path == out or path.is_relative_to(out):
            return out
    raise RecauseError(f"the champion accepted at {champion.accepted_at} has no output holding {path} in its dvc.lock")


def _champion_output(root: Path, champion: Champion, output: Path, target: Path) -> None:
    """One output of the champion's dvc.lock, from the DVC cache into ``target``."""
    md5 = champion.outs.get(output.as_posix())
    if md5 is None:
        raise RecauseError(f"the champion accepted at {champion.accepted_at} has no output {output} in its dvc.lock")
    materialise(root, md5, target)


def challenge(root: Path, champion: Champion | None, gate: GateParams, tie_seed: int) -> GateDecision:
    """The challenger (the workspace's outputs) against the champion (its outputs from the DVC cache).

    Both are judged on the frozen holdout: test rows of both splits, of items both models know.
    """
    layout = LAYOUT.under(root)
    parts = _split_parts(layout.processed)
    model, items = _gate_model(root, gate.model)
    served_log = off_policy_value(root, model, items, parts, gate.off_policy) if gate.off_policy else None
    if champion is None:
        value, users = evaluate_on_holdout(model, items, parts, parts["test"], gate.metric, tie_seed)
        return decide(None, value, users, len(parts["test"]), gate).model_copy(update={"off_policy": served_log})
    with tempfile.TemporaryDirectory(prefix="recause-champion-") as scratch:
        old = LAYOUT.under(Path(scratch))

        def fetch(path: Path) -> None:  # the champion's output holding ``path``, into the scratch workspace
            out = _out_holding(champion, path)
            _champion_output(root, champion, out, Path(scratch) / out)

        fetch(LAYOUT.processed)
        if gate.model == "champion":  # the model that run's own selection served
            fetch(LAYOUT.champion)
        fetch(model_location(LAYOUT, champion_of(Path(scratch)) if gate.model == "champion" else gate.model)[0])
        old_parts = _split_parts(old.processed)
        old_model, old_items = _gate_model(Path(scratch), gate.model)
    holdout = frozen_holdout(old_parts["test"], parts["test"])
    holdout = holdout[(items.positions(holdout["item_id"]) >= 0) & (old_items.positions(holdout["item_id"]) >= 0)]
    before, users = evaluate_on_holdout(old_model, old_items, old_parts, holdout, gate.metric, tie_seed)
    after, _ = evaluate_on_holdout(model, items, parts, holdout, gate.metric, tie_seed)
    return decide(before, after, users, len(holdout), gate).model_copy(update={"off_policy": served_log})


@contextmanager
def uncached_outputs_kept(root: Path) -> Iterator[Callable[[], None]]:
    """Copy aside the outputs DVC does not cache (metrics, reports); yields what puts them back.

    `dvc checkout` restores a champion's cached outputs only, so a rejected challenger's metrics
    and reports would otherwise stay behind.
    """
    kept = [LAYOUT.metrics, LAYOUT.reports]
    with tempfile.TemporaryDirectory(prefix="recause-uncached-") as scratch:
        for path in kept:
            if (root / path).exists():
                shutil.copytree(root / path, Path(scratch) / path)

        def put_back() -> None:
            for path in kept:
                if (Path(scratch) / path).exists():
                    shutil.rmtree(root / path, ignore_errors=True)
                    shutil.copytree(Path(scratch) / path, root / path)

        yield put_back


def restore_outputs(root: Path, champion: Champion, log: Log) -> None:
    """Put the champion's dvc.lock back and check its outputs out of the DVC cache."""
    LAYOUT.under(root).dvc_lock.write_text(champion.dvc_lock, encoding="utf-8")
    done = run_dvc(root, "checkout", "--force", "--quiet")
    if done.returncode != 0:
        log(f"dvc checkout of the champion's outputs reported: {done.stderr.strip()[-500:]}")
    log(f"workspace outputs are the champion's again (accepted {champion.accepted_at})")


def promote(root: Path, registry: Registry, params: Params, decision: GateDecision, log: Log) -> Champion:
    """Make the workspace's outputs the champion: the registry, the DVC remote, and a commit."""
    lock = LAYOUT.under(root).dvc_lock.read_text(encoding="utf-8")
    settings, gate = params.retrain, params.retrain.gate
    champion = Champion(
        fingerprint=fingerprint(raw_inputs(root, params.data)),
        accepted_at=now(),
        model=gate.model,
        metric=gate.metric,
        value=decision.challenger,
        outs=lock_outs(lock),
        dvc_lock=lock,
    )
    write_registry(root, promoted(registry, champion))
    push(root, settings.remote, settings.remote_name, log)
    if settings.commit:
        message = f"retrain: promote challenger ({gate.model} {gate.metric} {decision.challenger:.4f})"
        commit_pointer(root, [LAYOUT.dvc_lock, LAYOUT.params, LAYOUT.accepted], message, log)
    return champion


def push(root: Path, remote: str, remote_name: str, log: Log) -> None:
    """`dvc push` the workspace's cached outputs to the champion remote (a directory or a URL)."""
    url = remote if "://" in remote else str((root / remote).resolve())
    if "://" not in remote:
        Path(url).mkdir(parents=True, exist_ok=True)
    run_dvc(root, "remote", "add", "--local", "--force", remote_name, url)
    pushed = run_dvc(root, "push", "--remote", remote_name, "--quiet")
    if pushed.returncode != 0:
        raise RuntimeError(f"dvc push to {url} failed: {pushed.stderr.strip()[-500:]}")
    log(f"champion artifacts pushed to the DVC remote '{remote_name}' ({url})")


def commit_pointer(root: Path, paths: list[Path], message: str, log: Log) -> None:
    """Commit the champion pointer and what it points through, when the workspace is a git repository."""
    if not (root / ".git").exists():
        return
    git = ["git", "-c", "user.name=recause retrain", "-c", "user.email=retrain@recause.local"]
    subprocess.run([*git, "add", *map(str, paths)], cwd=root, check=True, capture_output=True)
    done = subprocess.run([*git, "commit", "-q", "-m", message], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        log(f"git commit skipped: {(done.stdout + done.stderr).strip()[-300:]}")


def rollback(root: Path, log: Log) -> Champion:
    """Make the previous champion current again: its dvc.lock, its outputs, the pointer (and commit)."""
    with workspace_lock(root, log):
        registry = rolled_back(read_registry(root))
        assert registry.current is not None
        restore_outputs(root, registry.current, log)
        write_registry(root, registry)
        if load_params(LAYOUT.under(root).params).retrain.commit:
            message = f"rollback: champion accepted at {registry.current.accepted_at}"
            commit_pointer(root, [LAYOUT.dvc_lock, LAYOUT.accepted], message, log)
        return registry.current
