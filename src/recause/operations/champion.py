"""The champion/challenger gate and the champion registry, as pure functions over plain data.

The registry is one small JSON file (``models/accepted.json``): the current champion and the ones
it replaced. A champion is a pointer, not a copy: the dvc.lock it was accepted with names every
artifact by its DVC hash, so the artifacts themselves stay in the DVC cache and remote.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, Field

from recause.config.retrain import GateParams
from recause.errors import RecauseError


class Champion(BaseModel):
    fingerprint: str = Field(description="Hash of the raw inputs the champion was trained on.")
    accepted_at: str
    model: str
    metric: str
    value: float | None = Field(description="Its metric on the holdout of the run that accepted it.")
    outs: dict[str, str] = Field(description="Stage output path -> DVC hash, from its dvc.lock.")
    dvc_lock: str = Field(description="The dvc.lock it was accepted with (restores its outputs).")


class Registry(BaseModel):
    current: Champion | None = None
    previous: list[Champion] = Field(default_factory=list, description="Replaced champions, oldest first.")


class GateDecision(BaseModel):
    promote: bool
    reason: str
    champion: float | None
    challenger: float
    holdout_users: int
    holdout_rows: int
    off_policy: dict | None = None  # the challenger on the served exposure log (recause.operations.off_policy)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lock_outs(dvc_lock: str) -> dict[str, str]:
    """Every stage output of a dvc.lock text as path -> md5 (directories end in '.dir')."""
    document = yaml.safe_load(dvc_lock) or {}
    return {
        out["path"]: out["md5"]
        for stage in (document.get("stages") or {}).values()
        for out in stage.get("outs") or []
        if "md5" in out
    }


def frozen_holdout(champion_test: pd.DataFrame, challenger_test: pd.DataFrame) -> pd.DataFrame:
    """Interactions held out from both models: in the champion's test part and the challenger's.

    Neither model trained or selected on them, so both are judged on the same unseen rows even when
    new data re-drew the split.
    """
    keys = ["user_id", "item_id"]
    shared = challenger_test.merge(champion_test[keys].drop_duplicates(), on=keys, how="inner")
    return shared.reset_index(drop=True)


def decide(champion: float | None, challenger: float, users: int, rows: int, gate: GateParams) -> GateDecision:
    """Promote when there is no champion, or when the challenger beats it by ``min_improvement``."""
    metric = gate.metric
    facts = {"champion": champion, "challenger": challenger, "holdout_users": users, "holdout_rows": rows}
    if champion is None:
        return GateDecision(promote=True, reason="no champion yet: the first accepted run becomes one", **facts)
    if users < gate.min_holdout_users:
        reason = f"the frozen holdout has {users} users, fewer than min_holdout_users={gate.min_holdout_users}"
        return GateDecision(promote=False, reason=reason, **facts)
    if not np.isfinite(challenger):
        return GateDecision(promote=False, reason=f"the challenger's {metric} is not a number", **facts)
    needed = champion + gate.min_improvement
    if challenger >= needed:
        reason = f"{metric} {challenger:.4f} >= champion {champion:.4f} + min_improvement {gate.min_improvement:g}"
        return GateDecision(promote=True, reason=reason, **facts)
    reason = f"{metric} {challenger:.4f} < champion {champion:.4f} + min_improvement {gate.min_improvement:g}"
    return GateDecision(promote=False, reason=reason, **facts)


def promoted(registry: Registry, challenger: Champion) -> Registry:
    """The registry with ``challenger`` as champion and the old champion kept for rollback."""
    previous = [*registry.previous, registry.current] if registry.current else list(registry.previous)
    return Registry(current=challenger, previous=previous)


def rolled_back(registry: Registry) -> Registry:
    """The registry with the previous champion restored; the current one is dropped."""
    if registry.current is None:
        raise RecauseError("there is no champion to roll back")
    if not registry.previous:
        raise RecauseError(f"the champion accepted at {registry.current.accepted_at} has no predecessor")
    return Registry(current=registry.previous[-1], previous=registry.previous[:-1])


def gate_report(decision: GateDecision, gate: GateParams, fingerprint: str) -> str:
    """Markdown for the retrain run's artifact: the verdict and the numbers behind it."""
    verdict = "PROMOTED" if decision.promote else "REJECTED"
    champion = "none" if decision.champion is None else f"{decision.champion:.4f}"
    return "\n".join(
        [
            f"# Retrain: challenger {verdict}",
            "",
            f"**Why:** {decision.reason}.",
            "",
            f"| | {gate.model} {gate.metric} |",
            "|---|---|",
            f"| champion | {champion} |",
            f"| challenger | {decision.challenger:.4f} |",
            "",
            f"Frozen holdout: {decision.holdout_rows:,} interactions of {decision.holdout_users:,} users that "
            "are in the test part of both the champion's split and the challenger's (neither trained on them).",
            f"Minimum improvement: {gate.min_improvement:g}. Raw-input fingerprint: `{fingerprint[:16]}`.",
            "",
            "The champion stays in place." if not decision.promote else "The challenger is the new champion.",
            *_off_policy_lines(decision.off_policy),
        ]
    )


def _off_policy_lines(found: dict | None) -> list[str]:
    if found is None:
        return []
    low, high = found["interval"]
    return [
        "",
        f"On the served exposure log ({found['rounds']:,} shown items), {found['estimator']} estimates the "
        f"challenger's click rate per shown item at {found['value']:.4f} (95% interval {low:.4f}-{high:.4f}); "
        f"the served lists got {found['logged_click_rate']:.4f}. Reported only: the holdout decides.",
    ]
