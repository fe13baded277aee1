"""Wiring shared by the training stages: the items' text and embeddings, and a checkpointed stage run."""

from __future__ import annotations

import json
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import torch

import recause.models.language
import recause.training
from recause.artifacts import read_item_embeddings, read_parquet, require_file
from recause.data.matrix import IdIndex
from recause.layout import LAYOUT
from recause.models.base import Recommender
from recause.models.language.retrieval import lm_retrieval_from_heads
from recause.training.digest import code_digest
from recause.training.faults import FaultInjector
from recause.training.loop import CheckpointDir, Objective, Optimizer
from recause.training.run import RunPlan, TrainRun

ITEMS = LAYOUT.items
EMBEDDINGS = LAYOUT.embeddings
TWO_TOWER = LAYOUT.finetuned
CODE = (recause.models.language, recause.training)  # what a language-model stage's results depend on


def item_texts() -> pd.DataFrame:
    """Item ids and text in a fixed order (sorted by id), the row order of every item tensor."""
    items = read_parquet(ITEMS, "items table").loc[:, ["item_id", "text"]]
    items["item_id"] = items["item_id"].astype(str)
    return items.sort_values("item_id", kind="stable").reset_index(drop=True)


def item_embeddings(items: IdIndex) -> np.ndarray:
    """The `embed` stage's item embeddings in the row order of ``items`` (every item must have one)."""
    return read_item_embeddings(EMBEDDINGS, items.ids)


def lm_retrieval(items: IdIndex) -> Recommender:
    """``lm_retrieval``: the `embed` stage's item embeddings, aligned to ``items``, with the heads `finetune` saved."""
    from safetensors.numpy import load_file

    heads = load_file(str(require_file(TWO_TOWER / "two_tower.safetensors", "two-tower heads")))
    config = json.loads((TWO_TOWER / "two_tower.json").read_text(encoding="utf-8"))
    return lm_retrieval_from_heads(item_embeddings(items), heads, config["temperature"])


def stage_inputs(*depends_on: Any, code: tuple[ModuleType, ...] = CODE) -> tuple[Any, ...]:
    """What a stage's run depends on besides its params: ``depends_on`` (input digests) and the code that
    trains (``code`` and the stage's own module), for ``plan_run``'s checkpoint fingerprint."""
    return (*depends_on, code_digest(*code, sys.modules["__main__"]))


def train_stage(
    stage: str,
    plan: RunPlan,
    objective: Objective,
    optimizer: Optimizer,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> TrainRun:
    """Train (or resume) under ``checkpoints/<plan.name>/`` with the stage's injected faults."""
    checkpoints = CheckpointDir(LAYOUT.checkpoints / plan.name)
    return plan.train(objective, optimizer, device, dtype, checkpoints=checkpoints, faults=FaultInjector(stage))
