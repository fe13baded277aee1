"""One way to set up a training run: its step count, its ``LoopConfig`` and its progress bar.

``plan_run`` is the one place that turns a model's training params, the number of examples and
what the run depends on into loop settings; the language-model stages, the joint model's stage and
its in-memory fit all go through it, so they count steps and validate alike. ``RunPlan.train``
runs the shared loop (``recause.training.loop``) under that plan and times it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from recause.training import loop
from recause.training.digest import run_fingerprint
from recause.training.loop import CheckpointDir, Log, LoopConfig, Objective, Optimizer, TrainResult

Progress = Callable[[Iterable[int], int], Iterable[int]]  # (steps, first step) -> the steps, shown


class RunParams(Protocol):
    """The training params every run reads (language-model and joint params both have them)."""

    epochs: float
    max_steps: int | None
    batch_size: int
    micro_batch_size: int | None
    seed: int
    checkpoint_every: int


def planned_examples(n_examples: int, epochs: float) -> int:
    """Examples a run visits: ceil(n_examples * epochs)."""
    return math.ceil(round(n_examples * epochs, 6))  # round: 3 * 0.1 epochs of 10 examples is 3, not 4


def planned_steps(n_examples: int, params: RunParams) -> int:
    """Optimizer steps of a run: ceil(n_examples * epochs / batch_size), at least 1, capped by ``max_steps``.

    The one count of every run. (The language-model stages once skipped ``planned_examples``' rounding; the
    counts agree whenever n_examples * epochs is exact in floating point, as with the whole epochs of
    params.yaml and tests/profiles/tiny.yaml, and differ only where float error crosses an integer.)
    """
    steps = max(math.ceil(planned_examples(n_examples, params.epochs) / params.batch_size), 1)
    return steps if params.max_steps is None else min(steps, params.max_steps)


def no_progress(steps: Iterable[int], start: int) -> Iterable[int]:
    return steps


def step_progress(total: int, desc: str) -> Progress:
    """A progress bar with ETA over optimizer steps (also shown, less often, when not on a terminal)."""
    from tqdm import tqdm

    def progress(steps: Iterable[int], start: int) -> Iterator[int]:
        interactive = sys.stderr.isatty()
        bar = tqdm(
            steps, total=total, initial=start, desc=desc, unit="step", file=sys.stderr,
            mininterval=0.5 if interactive else 15.0, disable=os.environ.get("RECAUSE_NO_PROGRESS") == "1",
        )  # fmt: skip
        yield from bar

    return progress


class Timer:
    """Wall-clock seconds of a ``with`` block (``seconds``, set on exit)."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def loss_summary(losses: list[float], window: int = 10) -> dict[str, float]:
    """Mean loss of the first and last ``window`` steps, and the number of steps."""
    values = np.asarray(losses, dtype=float)
    return {
        "loss_first": float(values[:window].mean()),
        "loss_last": float(values[-window:].mean()),
        "steps": int(len(values)),
    }


@dataclass(frozen=True)
class TrainRun:
    """A finished run: the loop's result, the planned step count and the seconds it took."""

    result: TrainResult
    steps: int
    seconds: float

    def metrics(self) -> dict[str, Any]:
        """What every training stage reports about its run."""
        return {
            **loss_summary(self.result.losses),
            "resumed_from_step": self.result.resumed_from,
            "micro_batch_size": self.result.micro_batch_size,
            "out_of_memory_retries": self.result.out_of_memory_retries,
            "train_seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class RunPlan:
    """A run's name, loop settings, validation callback and progress bar (``plan_run`` builds it)."""

    name: str
    config: LoopConfig
    validate: Callable[[], float] | None = None
    progress: Progress = no_progress

    @property
    def steps(self) -> int:
        return self.config.total_steps

    def train(
        self,
        objective: Objective,
        optimizer: Optimizer,
        device: torch.device,
        dtype: torch.dtype | None = None,
        checkpoints: CheckpointDir | None = None,
        faults: Callable[[int], None] = lambda step: None,
        log: Log = print,
    ) -> TrainRun:
        """Train (or resume from ``checkpoints``) under this plan; ``faults`` runs before each forward pass."""
        with Timer() as timer:
            result = loop.train(
                objective, optimizer, self.config, checkpoints, device, dtype, before_forward=faults,
                progress=self.progress, log=log, validate=self.validate,
            )  # fmt: skip
        return TrainRun(result, self.steps, timer.seconds)


def plan_run(
    params: RunParams,
    n_examples: int,
    depends_on: tuple[Any, ...] = (),
    validate: Callable[[], float] | None = None,
    validate_every: int | None = None,
    name: str = "train",
    show_progress: bool = True,
) -> RunPlan:
    """The plan of a run over ``n_examples`` examples (see ``planned_steps`` for its length).

    ``depends_on`` (input and code digests) goes into the checkpoint fingerprint with ``params``.
    ``validate`` runs every ``validate_every`` steps (default: the params' ``validate_every``), with
    the params' ``patience`` if they have one. ``name`` labels the progress bar (and a stage's checkpoints).
    """
    steps = planned_steps(n_examples, params)
    config = LoopConfig(
        total_steps=steps,
        batch_size=params.batch_size,
        micro_batch_size=params.micro_batch_size or params.batch_size,
        seed=params.seed,
        checkpoint_every=params.checkpoint_every,
        fingerprint=run_fingerprint(params, *depends_on),
        validate_every=(validate_every or getattr(params, "validate_every", None)) if validate is not None else None,
        patience=getattr(params, "patience", None) if validate is not None else None,
    )
    return RunPlan(name, config, validate, step_progress(steps, name) if show_progress else no_progress)
