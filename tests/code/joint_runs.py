"""A joint-model training run that can be killed at a step and resumed: what the resume tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recause.models.joint import JointModel
from recause.training.loop import CheckpointDir, TrainResult


def train_until(run: Any, directory: Path, crash_at: int | None, name: str) -> tuple[JointModel, TrainResult]:
    """Train ``run`` (``joint_training``'s) with checkpoints in ``directory``; at step ``crash_at`` raise, as a
    killed process would stop (a later call with the same directory resumes)."""

    def hook(step: int) -> None:
        if step == crash_at:
            raise RuntimeError(f"killed at step {step}")

    plan = run.plan((name,), show_progress=False)
    trained = plan.train(run.objective, run.optimizer, run.device, checkpoints=CheckpointDir(directory),
                         faults=hook, log=lambda message: None)  # fmt: skip
    return run.finish(trained.result, 0.0), trained.result
