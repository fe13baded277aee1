"""Stage `split`: deterministic train/valid/test parts, their cold-item and intervened variants, RecBole atomic files."""

from __future__ import annotations

from recause.artifacts import atomic_path, read_parquet
from recause.config import load_params
from recause.data.split import cold_item_parts, intervened_parts, split_interactions, to_recbole_atomic
from recause.layout import LAYOUT
from tasks._stage import run_stage

INTERACTIONS = LAYOUT.interactions
PROCESSED_DIR = LAYOUT.processed
COLD_DIR = "cold_item"  # inside PROCESSED_DIR
INTERVENED_DIR = "intervened"  # inside PROCESSED_DIR


def main() -> None:
    params = load_params().split
    interactions = read_parquet(INTERACTIONS, "interactions table")
    parts = split_interactions(interactions, params)
    cold_parts = cold_item_parts(parts, params.cold_item_fraction, params.seed)
    intervened = intervened_parts(interactions, params.intervened, params.seed)
    name = params.recbole_dataset_name
    with atomic_path(PROCESSED_DIR) as tmp:
        (tmp / "recbole" / name).mkdir(parents=True)
        (tmp / COLD_DIR).mkdir()
        (tmp / INTERVENED_DIR).mkdir()
        for part, frame in parts.items():
            frame.to_parquet(tmp / f"{part}.parquet", index=False)
            (tmp / "recbole" / name / f"{name}.{part}.inter").write_text(to_recbole_atomic(frame), encoding="utf-8")
        for part, frame in cold_parts.items():
            frame.to_parquet(tmp / COLD_DIR / f"{part}.parquet", index=False)
        for part, frame in intervened.items():
            frame.to_parquet(tmp / INTERVENED_DIR / f"{part}.parquet", index=False)
    sizes = ", ".join(f"{part} {len(frame):,}" for part, frame in parts.items())
    print(f"split ({params.protocol}): {sizes}; cold-item variant: {len(cold_parts['cold']):,} rows of held-out items")
    sizes = ", ".join(f"{part} {len(frame):,}" for part, frame in intervened.items())
    print(f"split: intervened variant (near-uniform exposure in valid/test): {sizes}")


if __name__ == "__main__":
    run_stage(main)
