"""A resumable training loop shared by every heavy model.

Determinism is per step, not per run: the examples and dropout masks of step ``s`` come from
generators seeded with ``(seed, s)``, and the checkpoint holds the module (buffers included) and
the optimizer. A run resumed from the checkpoint at step ``s`` therefore continues exactly as an
uninterrupted run would (on CPU; CUDA kernels may differ in the last bits).

With a ``validate`` callback the loop scores the model every ``validate_every`` steps (higher is
better) and ends with the best-scoring weights: early stopping on a validation set, decided by
the data the caller holds out, never by the test split. With ``patience`` it also stops once that
many validations in a row brought no improvement; the checkpoint then records the stop, so a rerun
does not train on past it.

Without a checkpoint folder (``checkpoints=None``) nothing is loaded or saved: the same loop, for
library callers that train in memory.

Out-of-memory during a step is survived by halving the micro-batch and redoing the step: the
gradient is accumulated over more, smaller micro-batches, so the effective batch stays the same.
With in-batch negatives the negatives of a smaller micro-batch are fewer; the loss is then an
estimate of the same objective with more variance, not the identical number.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from recause.training.device import autocast, is_out_of_memory

Log = Callable[[str], None]


class Optimizer(Protocol):
    """What the loop needs of an optimizer (a ``torch.optim.Optimizer``, or several behind one object)."""

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def step(self) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class Objective(Protocol):
    """What the loop trains: a module, the examples of a step, and the loss of some of them."""

    module: nn.Module

    def examples(self, step: int, rng: np.random.Generator) -> np.ndarray:
        """Indices of the examples of one optimizer step."""

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        """Mean loss over the examples ``rows``."""

    def before_step(self, step: int) -> None:
        """Hook run before each step (e.g. refresh a cache); must depend only on module state."""


@dataclass(frozen=True)
class LoopConfig:
    total_steps: int
    batch_size: int
    micro_batch_size: int
    seed: int
    checkpoint_every: int
    fingerprint: str  # what the run depends on; a checkpoint with another fingerprint is ignored
    validate_every: int | None = None
    patience: int | None = None  # validations without improvement before stopping (None: never stop early)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    micro_batch_size: int = 0
    out_of_memory_retries: int = 0
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, score)
    best_step: int | None = None
    stopped_early: bool = False


class CheckpointDir:
    """The latest checkpoint of one run, replaced atomically (a reader never sees half of one)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _latest(self) -> Path | None:
        """The checkpoint folder to read; after a kill between save's two renames, the newer complete one."""
        for candidate in (self.directory, self._sibling("saving"), self._sibling("old")):
            if (candidate / "progress.json").is_file():  # written last: its presence means complete
                return candidate
        return None

    def _sibling(self, suffix: str) -> Path:
        return self.directory.with_name(f".{self.directory.name}.{suffix}")

    def load(self, fingerprint: str, module: nn.Module, optimizer: Optimizer) -> dict | None:
        folder = self._latest()
        if folder is None:
            return None
        progress = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
        if progress.get("fingerprint") != fingerprint:
            return None
        from safetensors.torch import load_file

        module.load_state_dict(load_file(str(folder / "module.safetensors")))
        optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
        return progress

    def best_state(self) -> dict[str, torch.Tensor] | None:
        """The best-validated weights stored with the latest checkpoint, if any."""
        from safetensors.torch import load_file

        folder = self._latest()
        best = None if folder is None else folder / "best.safetensors"
        return load_file(str(best)) if best is not None and best.is_file() else None

    def save(
        self,
        progress: dict,
        module: nn.Module,
        optimizer: Optimizer,
        best_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        from safetensors.torch import save_file

        staging = self._sibling("saving")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
        save_file(state, str(staging / "module.safetensors"))
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        if best_state is not None:
            save_file(best_state, str(staging / "best.safetensors"))
        (staging / "progress.json").write_text(json.dumps(progress) + "\n", encoding="utf-8")
        old = self._sibling("old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        staging.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)


def step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def seed_torch(seed: int, device: torch.device) -> None:
    """Seed the CPU generator, and the CUDA ones when training there (what ``torch.manual_seed`` does,
    without queueing a lazy CUDA seeding, with a stack trace, on every step of a CPU run)."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)


def stale_validations(validation: list[tuple[int, float]], best_step: int | None) -> int:
    """Validations after the best one (the count ``patience`` is compared with)."""
    return 0 if best_step is None else sum(1 for step, _ in validation if step > best_step)


def train(
    objective: Objective,
    optimizer: Optimizer,
    config: LoopConfig,
    checkpoints: CheckpointDir | None,
    device: torch.device,
    dtype: torch.dtype | None = None,
    before_forward: Callable[[int], None] = lambda step: None,
    progress: Callable[[Iterable[int], int], Iterable[int]] = lambda steps, start: steps,
    log: Log = print,
    validate: Callable[[], float] | None = None,
) -> TrainResult:
    """Run (or resume) ``config.total_steps`` optimizer steps; returns the loss of every step.

    With ``validate``, the module ends with the weights of the best-validated step (and with
    ``config.patience``, training may end early). ``checkpoints=None``: nothing is loaded or saved.
    """
    result = TrainResult(micro_batch_size=config.micro_batch_size)
    best_state: dict[str, torch.Tensor] | None = None
    saved = None if checkpoints is None else checkpoints.load(config.fingerprint, objective.module, optimizer)
    if saved is not None:
        result.losses = list(saved["losses"])
        result.resumed_from = int(saved["step"])
        result.micro_batch_size = int(saved["micro_batch_size"])
        result.validation = [(int(step), float(score)) for step, score in saved.get("validation", [])]
        result.best_step = saved.get("best_step")
        result.stopped_early = bool(saved.get("stopped_early", False))
        best_state = checkpoints.best_state()
        log(f"resuming from the checkpoint at step {result.resumed_from}/{config.total_steps}")
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    objective.module.train()
    last = result.resumed_from if result.stopped_early else config.total_steps
    for step in progress(range(result.resumed_from, last), result.resumed_from):
        rows = objective.examples(step, np.random.default_rng(step_seed(config.seed, step)))
        objective.before_step(step)
        while True:
            seed_torch(step_seed(config.seed + 1, step), device)
            optimizer.zero_grad(set_to_none=True)
            try:
                before_forward(step)
                step_loss = 0.0
                for start in range(0, len(rows), result.micro_batch_size):
                    chunk = rows[start : start + result.micro_batch_size]
                    with autocast(device, dtype):
                        loss = objective.loss(chunk) * (len(chunk) / len(rows))
                    scaler.scale(loss).backward()
                    step_loss += float(loss.detach())
                break
            except Exception as error:
                if not is_out_of_memory(error) or result.micro_batch_size <= 1:
                    raise
                result.micro_batch_size //= 2
                result.out_of_memory_retries += 1
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                log(f"out of memory at step {step}: redoing it with micro-batch {result.micro_batch_size}")
        scaler.step(optimizer)
        scaler.update()
        result.losses.append(step_loss)
        done = step + 1
        if (
            validate is not None
            and config.validate_every
            and (done % config.validate_every == 0 or done == config.total_steps)
        ):
            score = float(validate())
            objective.module.train()
            if result.best_step is None or score > max(s for _, s in result.validation):
                result.best_step = done
                best_state = {
                    k: v.detach().cpu().clone().contiguous() for k, v in objective.module.state_dict().items()
                }
            result.validation.append((done, score))
            log(f"validation at step {done}: {score:.4f} (best: step {result.best_step})")
            if (
                config.patience is not None
                and done < config.total_steps  # at the last step the run ends anyway: not an early stop
                and stale_validations(result.validation, result.best_step) >= config.patience
            ):
                result.stopped_early = True
                log(f"stopping early at step {done}: {config.patience} validations without improvement")
        if checkpoints is not None and (
            done % config.checkpoint_every == 0 or done == config.total_steps or result.stopped_early
        ):
            progress_state = {
                "step": done,
                "losses": result.losses,
                "micro_batch_size": result.micro_batch_size,
                "fingerprint": config.fingerprint,
                "validation": result.validation,
                "best_step": result.best_step,
                "stopped_early": result.stopped_early,
            }
            checkpoints.save(progress_state, objective.module, optimizer, best_state)
        if result.stopped_early:
            break
    if best_state is not None:
        objective.module.load_state_dict(best_state)
    return result
