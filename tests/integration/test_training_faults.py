"""The `finetune` stage under injected faults: an out-of-memory error halves the micro-batch, a config
error stops at once.

Each case runs the real stage module in its own small workspace (200 MovieLens-100K items, 100 users). A
SIGKILL mid-run that the flow retries and resumes to the byte-identical result is tested on the tiny
workspace (test_pipeline.py); the fine-tuning objective's exact resume, item cache included, in
tests/code/test_training_loop.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recause.config import default_params_mapping
from recause.data.schemas import Tables
from recause.models.language.encoder import resolve_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TINY_FINETUNE = {"max_steps": 3, "batch_size": 16, "checkpoint_every": 2, "refresh_every": 3}

pytestmark = pytest.mark.integration


def _workspace(root: Path, ml100k: Tables) -> Path:
    items = ml100k.items.sort_values("item_id").head(200)
    interactions = ml100k.interactions[ml100k.interactions["item_id"].isin(items["item_id"])]
    interactions = interactions[interactions["user_id"].isin(interactions["user_id"].unique()[:100])]
    (root / "data/validated").mkdir(parents=True)
    (root / "data/processed/cold_item").mkdir(parents=True)
    (root / "models").mkdir()
    items.to_parquet(root / "data/validated/items.parquet", index=False)
    interactions.to_parquet(root / "data/processed/cold_item/train.parquet", index=False)
    (root / "models/pretrained").symlink_to(resolve_checkpoint("minilm-l6"))
    params = default_params_mapping()
    params["finetune"].update(TINY_FINETUNE)
    params["encoder"]["threads"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return root


def _finetune(root: Path, faults: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RECAUSE_FAULTS": faults,
        "RECAUSE_FAULTS_STATE": str(root / ".faults"),
        "RECAUSE_NO_PROGRESS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "tasks.finetune"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def _metrics(root: Path) -> dict:
    return json.loads((root / "metrics/finetune.json").read_text())


@pytest.mark.slow
def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(tmp_path: Path, ml100k: Tables) -> None:
    root = _workspace(tmp_path, ml100k)
    done = _finetune(root, faults="finetune:oom:1@1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "out of memory at step 1: redoing it with micro-batch 8" in done.stdout
    metrics = _metrics(root)
    assert metrics["out_of_memory_retries"] == 1
    assert metrics["micro_batch_size"] == TINY_FINETUNE["batch_size"] // 2
    assert metrics["examples_seen"] == TINY_FINETUNE["max_steps"] * TINY_FINETUNE["batch_size"]


def test_a_missing_checkpoint_directory_is_one_line_and_exit_2(tmp_path: Path, ml100k: Tables) -> None:
    root = _workspace(tmp_path, ml100k)
    (root / "models/pretrained").unlink()
    done = _finetune(root)
    assert done.returncode == 2  # exit 2: a user error, which the flow does not retry
    assert done.stderr.strip() == (
        "error: the `pretrain` stage's output: no Hugging Face checkpoint at models/pretrained (config.json missing)"
    )
