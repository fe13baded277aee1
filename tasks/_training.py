"""I/O shared by the language-model stages: device, the training run (checkpoints, faults, progress), plots."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import torch

import recause.models.language
import recause.training
from recause.artifacts import atomic_path, read_parquet, require_file
from recause.config.language import EncoderParams, TrainingParams
from recause.data.matrix import IdIndex
from recause.errors import InputDataError
from recause.layout import LAYOUT
from recause.models.joint import JointParams
from recause.training.device import autocast_dtype, resolve_device, set_threads
from recause.training.faults import FaultInjector
from recause.training.loop import CheckpointDir, LoopConfig, Objective, TrainResult, train
from recause.training.report import loss_figure

ITEMS = LAYOUT.items
EMBEDDINGS = LAYOUT.embeddings
CODE = (recause.models.language, recause.training)  # what a training stage's results depend on


def item_texts() -> pd.DataFrame:
    """Item ids and text in a fixed order (sorted by id), the row order of every item tensor."""
    items = read_parquet(ITEMS, "items table").loc[:, ["item_id", "text"]]
    items["item_id"] = items["item_id"].astype(str)
    return items.sort_values("item_id", kind="stable").reset_index(drop=True)


def item_embeddings(items: IdIndex) -> np.ndarray:
    """The `embed` stage's item embeddings in the row order of ``items`` (every item must have one)."""
    from safetensors import safe_open

    with safe_open(str(require_file(EMBEDDINGS, "item embeddings")), framework="np") as handle:
        ids = json.loads(handle.metadata()["item_ids"])
        embeddings = handle.get_tensor("embeddings")
    rows = IdIndex(np.asarray(ids, dtype=str)).positions(items.ids)
    if (rows < 0).any():
        raise InputDataError(f"{EMBEDDINGS} lacks {(rows < 0).sum()} of the {len(items):,} items: re-run `embed`")
    return embeddings[rows]


def runtime(encoder: EncoderParams) -> tuple[torch.device, torch.dtype | None]:
    set_threads(encoder.threads)
    device = resolve_device(encoder.device)
    dtype = autocast_dtype(device, encoder.precision)
    print(f"device: {device}{'' if dtype is None else f' (autocast {dtype})'}, threads {torch.get_num_threads()}")
    return device, dtype


def total_steps(params: TrainingParams, n_examples: int) -> int:
    steps = max(math.ceil(params.epochs * n_examples / params.batch_size), 1)
    return min(steps, params.max_steps) if params.max_steps else steps


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def code_digest(*modules: ModuleType) -> str:
    """Digest of the source of these modules (packages: every file in them), so changed code never
    resumes a checkpoint that older code wrote."""
    paths = [Path(m.__file__).parent if m.__file__.endswith("__init__.py") else Path(m.__file__) for m in modules]
    return file_digest(*(p for p in paths))


def fingerprint(*parts: Any) -> str:
    """What a run depends on; a checkpoint written under another fingerprint is not resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def step_progress(total: int, desc: str):  # noqa: ANN201
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


def save_loss_plot(result: TrainResult, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path.parent) as tmp:
        tmp.mkdir(parents=True)
        figure = loss_figure(result.losses, title, validation=result.validation, best_step=result.best_step)
        figure.savefig(tmp / path.name)
        plt.close(figure)


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def run_training(
    stage: str,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    params: TrainingParams | JointParams,
    n_examples: int,
    depends_on: tuple[Any, ...],
    device: torch.device,
    dtype: torch.dtype | None,
    validate: Callable[[], float] | None = None,
    validate_every: int | None = None,
    run_name: str | None = None,
    code: tuple[ModuleType, ...] = CODE,
) -> TrainRun:
    """Train (or resume) under ``checkpoints/<run_name or stage>/`` with the stage's injected faults and a progress bar.

    ``depends_on`` are the params and input digests the run depends on; ``code`` and the stage's own module are
    added here. ``validate_every`` overrides the params' (e.g. a default of once per epoch computed by the caller).
    """
    steps = total_steps(params, n_examples)
    run_name = run_name or stage
    config = LoopConfig(
        total_steps=steps,
        batch_size=params.batch_size,
        micro_batch_size=params.micro_batch_size or params.batch_size,
        seed=params.seed,
        checkpoint_every=params.checkpoint_every,
        fingerprint=fingerprint(params, *depends_on, code_digest(*code, sys.modules["__main__"])),
        validate_every=(validate_every or getattr(params, "validate_every", None)) if validate is not None else None,
        patience=getattr(params, "patience", None),
    )
    with Timer() as timer:
        result = train(
            objective, optimizer, config, CheckpointDir(LAYOUT.checkpoints / run_name), device, dtype,
            before_forward=FaultInjector(stage), progress=step_progress(steps, run_name), validate=validate,
        )  # fmt: skip
    return TrainRun(result, steps, timer.seconds)


@dataclass(frozen=True)
class TrainRun:
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


def loss_summary(losses: list[float], window: int = 10) -> dict[str, float]:
    values = np.asarray(losses, dtype=float)
    return {
        "loss_first": float(values[:window].mean()),
        "loss_last": float(values[-window:].mean()),
        "steps": int(len(values)),
    }
