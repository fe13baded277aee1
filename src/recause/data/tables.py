"""Canonical items and users tables from whatever columns a source has, and one entry point
(``canonical``) that gives any of the four tables recause's columns and types."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recause.data.schemas import SCHEMAS, as_text, coerce, normalise_interactions
from recause.errors import InputDataError


def item_text(title: str | None, year: str | None, genres: list[str]) -> str:
    """The string a language model reads for an item, e.g. 'Toy Story (1995). Genres: Comedy.'

    An item without a title has no text (""), so the validation gate sees it as empty.
    """
    if not title or not title.strip():
        return ""
    head = f"{title.strip()} ({year})" if year else title.strip()
    return f"{head}. Genres: {', '.join(genres)}." if genres else f"{head}."


def split_genres(value: object) -> list[str]:
    """Genres from a list, or from text separated by '|', ',' or spaces (MovieLens atomic files)."""
    if isinstance(value, (list, tuple, np.ndarray)):  # Parquet list columns read back as arrays
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    text = str(value)
    separator = "|" if "|" in text else ("," if "," in text else None)
    return [g.strip() for g in text.split(separator) if g.strip()]


def items_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical items from item_id + title (+ year, genres, or a ready-made text)."""
    items = pd.DataFrame({"item_id": frame["item_id"], "title": frame["title"]})
    items["year"] = frame["year"] if "year" in frame else None
    items["genres"] = frame["genres"].map(split_genres) if "genres" in frame else [[] for _ in range(len(frame))]
    items = coerce(items.assign(text=None), SCHEMAS["items"])
    if "text" in frame:
        items["text"] = as_text(frame["text"].reset_index(drop=True))
    else:
        items["text"] = [
            item_text(t, None if pd.isna(y) else str(y), g)
            for t, y, g in zip(items["title"], items["year"], items["genres"], strict=True)
        ]
    return items.loc[:, list(SCHEMAS["items"].names)]


def users_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical users; attributes the source lacks are null."""
    users = pd.DataFrame({"user_id": frame["user_id"]})
    for column in ("age", "gender", "occupation", "zip"):
        users[column] = frame[column] if column in frame else None
    return coerce(users, SCHEMAS["users"])


def canonical(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The table in recause's columns and types (values that do not parse stay text)."""
    if table == "interactions":
        return normalise_interactions(frame)
    if table == "items":
        if "title" not in frame and "text" not in frame:
            raise InputDataError("items need a 'text' or a 'title' column")
        return items_table(frame if "title" in frame else frame.assign(title=frame["text"]))
    if table == "users":
        return users_table(frame)
    if table == "bandit":
        return coerce(frame, SCHEMAS["bandit"]).reset_index(drop=True)
    raise InputDataError(f"unknown table '{table}'; choose one of {', '.join(SCHEMAS)}")
