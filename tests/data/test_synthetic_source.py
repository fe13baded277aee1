"""`data.source: synthetic` through the real stage modules: ingest, the validation gate, split, baselines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
N_INTERACTIONS = 20_000


def run(stage: str, workspace: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECAUSE_PSEUDONYM_KEY": "k" * 32, "GX_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "-m", f"tasks.{stage}"], cwd=workspace, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{stage}: {done.stderr[-2000:]}"
    return done.stdout + done.stderr


def test_synthetic_logs_flow_through_the_gate_split_and_baselines_with_ease_capped(tmp_path: Path) -> None:
    params = {
        "data": {"source": "synthetic", "synthetic": {"interactions": N_INTERACTIONS, "seed": 3}},
        "validate": {"drift": {"enabled": False}},
        "models": {"baselines": {"ease": {"max_items": 100}}},  # the catalogue here is ~640 items: EASE must be skipped
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    run("ingest", tmp_path)
    interactions = pd.read_parquet(tmp_path / "data/interim/interactions.parquet")
    items = pd.read_parquet(tmp_path / "data/interim/items.parquet")
    assert len(interactions) == N_INTERACTIONS
    assert interactions["user_id"].str.startswith("u").all()  # pseudonymised like any other source
    assert items["text"].str.len().gt(0).all() and interactions["item_id"].isin(items["item_id"]).all()
    first = interactions.copy()
    run("ingest", tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "data/interim/interactions.parquet"), first)

    gate = run("validate", tmp_path)
    assert f"interactions {N_INTERACTIONS:,}/{N_INTERACTIONS:,} rows accepted" in gate
    run("split", tmp_path)
    sizes = [len(pd.read_parquet(tmp_path / f"data/processed/{part}.parquet")) for part in ("train", "valid", "test")]
    assert sum(sizes) == N_INTERACTIONS and sizes[0] > 7 * sizes[2]

    fitted = run("train_baselines", tmp_path)
    assert f"ease skipped (models.baselines.ease): {len(items):,} items exceed max_items 100" in fitted
    saved = {path.stem for path in (tmp_path / "models/baselines").glob("*.json")}
    assert saved == {"pop", "itemknn"}
