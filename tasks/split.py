"""Stage `split`: deterministic train/valid/test(/cold) parts + RecBole atomic files of the same split."""

from __future__ import annotations

from pathlib import Path

from recause.data.split import split_interactions, to_recbole_atomic
from tasks._io import atomic_path, load_params, read_parquet, run_stage

INTERACTIONS = Path("data/validated/interactions.parquet")
PROCESSED_DIR = Path("data/processed")


def main() -> None:
    params = load_params().split
    interactions = read_parquet(INTERACTIONS, "interactions table")
    parts = split_interactions(interactions, params)
    name = params.recbole_dataset_name
    with atomic_path(PROCESSED_DIR) as tmp:
        (tmp / "recbole" / name).mkdir(parents=True)
        for part, frame in parts.items():
            frame.to_parquet(tmp / f"{part}.parquet", index=False)
            (tmp / "recbole" / name / f"{name}.{part}.inter").write_text(to_recbole_atomic(frame), encoding="utf-8")
    sizes = ", ".join(f"{part} {len(frame):,}" for part, frame in parts.items())
    print(f"split ({params.protocol}): {sizes} -> {PROCESSED_DIR}/")


if __name__ == "__main__":
    run_stage(main)
