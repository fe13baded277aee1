"""The canonical tables recause works on, and a check that a frame has their shape."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recause.errors import InputDataError

INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "year", "genres", "text")
USER_COLUMNS = ("user_id", "age", "gender", "occupation", "zip")

#: The parts a split writes, in the order a model meets them.
SPLIT_PARTS = ("train", "valid", "test", "cold")


@dataclass(frozen=True)
class Tables:
    """The three tables every later stage reads."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    """Raise an InputDataError naming the table and the columns it lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{table}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}"
        )


def normalise_interactions(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes: string ids, float32 rating, int64 seconds since the epoch."""
    require_columns(frame, INTERACTION_COLUMNS, "interactions")
    out = frame.loc[:, list(INTERACTION_COLUMNS)].copy()
    out["user_id"] = out["user_id"].astype(str)
    out["item_id"] = out["item_id"].astype(str)
    out["rating"] = pd.to_numeric(out["rating"], errors="raise").astype("float32")
    out["timestamp"] = pd.to_numeric(out["timestamp"], errors="raise").astype("int64")
    return out.reset_index(drop=True)
