"""Turn MovieLens-100K as shipped in RecBole's atomic-file format into recause's tables."""

from __future__ import annotations

import io

import pandas as pd

from recause.data.schemas import Tables, normalise_interactions
from recause.errors import InputDataError

#: File suffixes of the atomic files recause reads, by table.
ATOMIC_FILES = {"interactions": "inter", "items": "item", "users": "user"}


def parse_atomic(text: str, name: str) -> pd.DataFrame:
    """Parse a RecBole atomic file (tab-separated, header ``field:type``) keeping values as text."""
    lines = text.splitlines()
    if not lines:
        raise InputDataError(f"{name}: file is empty")
    header = [field.split(":", 1)[0] for field in lines[0].split("\t")]
    frame = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame.columns = header
    return frame


def item_text(title: str, year: str | None, genres: list[str]) -> str:
    """The string a language model reads for an item, e.g. 'Toy Story (1995). Genres: Comedy.'"""
    head = f"{title} ({year})" if year else title
    return f"{head}. Genres: {', '.join(genres)}." if genres else f"{head}."


def movielens_tables(inter: pd.DataFrame, item: pd.DataFrame, user: pd.DataFrame) -> Tables:
    """Build canonical interactions/items/users from the three parsed atomic files."""
    interactions = normalise_interactions(inter)

    genres = item["class"].str.split().map(lambda g: list(g) if isinstance(g, list) else [])
    year = pd.to_numeric(item["release_year"], errors="coerce").astype("Int32")
    titles = item["movie_title"].str.strip()
    items = pd.DataFrame(
        {
            "item_id": item["item_id"].astype(str),
            "title": titles,
            "year": year,
            "genres": genres,
        }
    )
    items["text"] = [
        item_text(t, None if pd.isna(y) else str(y), g)
        for t, y, g in zip(items["title"], items["year"], items["genres"], strict=True)
    ]

    users = pd.DataFrame(
        {
            "user_id": user["user_id"].astype(str),
            "age": pd.to_numeric(user["age"], errors="coerce").astype("Int16"),
            "gender": user["gender"].astype(str),
            "occupation": user["occupation"].astype(str),
            "zip": user["zip_code"].astype(str),
        }
    )
    return Tables(interactions=interactions, items=items, users=users)
