"""Stage `explain`: every user's top-k recommendations by the champion (`select_champion`), each with the
history item it owes most to (recomputed with the model: the score and rank without that item), as one
Parquet file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from recause.artifacts import write_json, write_parquet
from recause.causal.explain import explain_top_k
from recause.config import load_params
from recause.layout import LAYOUT
from recause.serving import champion, load_served
from recause.training.run import Timer
from tasks._stage import run_stage

OUTPUT = LAYOUT.explained_topk
METRICS = LAYOUT.metrics_file("explain")


def main() -> None:
    params = load_params().causal.explain
    model = champion(Path("."))  # the list `recause recommend` prints and topk.parquet holds
    served = load_served(Path("."), model)
    rows = []
    with Timer() as timer:
        for user in tqdm(range(len(served.users)), desc="explain", unit="user", disable=None):
            for rank, found in enumerate(explain_top_k(served.model.score, served.history[user], params.k), start=1):
                rows.append(
                    (served.users.ids[user], rank, served.items.ids[found.item], found.score,
                     None if found.reason is None else served.items.ids[found.reason], found.score_drop, found.rank_without)
                )  # fmt: skip
    frame = pd.DataFrame(
        rows, columns=["user_id", "rank", "item_id", "score", "because_of", "score_drop", "rank_without_reason"]
    )
    write_parquet(frame, OUTPUT)
    explained = frame["because_of"].notna()
    write_json(
        METRICS,
        {
            "model": model,
            "users": len(served.users),
            "k": params.k,
            "rows_with_a_reason": round(float(explained.mean()), 4),
            "median_rank_without_reason": float(frame.loc[explained, "rank_without_reason"].median()),
            "share_leaving_top_k_without_reason": round(
                float((frame.loc[explained, "rank_without_reason"] > params.k).mean()), 4
            ),
            "seconds": round(timer.seconds, 2),
        },
    )
    print(
        f"explain: {len(frame):,} recommendations of {len(served.users):,} users by {model} in {timer.seconds:.1f}s -> {OUTPUT}"
    )


if __name__ == "__main__":
    run_stage(main)
