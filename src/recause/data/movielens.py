"""Turn MovieLens-100K as shipped in RecBole's atomic-file format into recause's tables."""

from __future__ import annotations

import pandas as pd

from recause.data.reader import read_delimited
from recause.data.schemas import Tables, normalise_interactions
from recause.data.tables import items_table, users_table

#: File suffix and the columns each atomic file must have, by table.
ATOMIC_FILES = {"interactions": "inter", "items": "item", "users": "user"}
ATOMIC_COLUMNS = {
    "interactions": ("user_id", "item_id", "rating", "timestamp"),
    "items": ("item_id", "movie_title", "release_year", "class"),
    "users": ("user_id", "age", "gender", "occupation", "zip_code"),
}


def parse_atomic(data: bytes, name: str, table: str) -> pd.DataFrame:
    """Parse a RecBole atomic file (tab-separated, unquoted, header ``field:type``) as text columns."""
    return read_delimited(data, name, ATOMIC_COLUMNS[table], sep="\t", quoted=False)


def repair_release_years(item: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """RecBole's conversion left non-numeric years in two ML-100K rows (267 'unkonwn', the unknown
    placeholder; 1412 'V', split off the title '... (1995) (V)'). Use the title's '(YYYY)' when it
    has one, else no year; return what was repaired so it is reported, not silent."""
    year = item["release_year"]
    bad = year.notna() & ~year.astype(str).str.fullmatch(r"\d{4}")
    if not bad.any():
        return item, []
    from_title = item["movie_title"].astype(str).str.extract(r"\((\d{4})\)\s*$", expand=False)
    repaired = item.copy()
    repaired.loc[bad, "release_year"] = from_title[bad]
    notes = [
        f"item {i}: release year {y!r} replaced by {'none' if pd.isna(n) else n}"
        for i, y, n in zip(item.loc[bad, "item_id"], year[bad], from_title[bad], strict=True)
    ]
    return repaired, notes


def movielens_tables(inter: pd.DataFrame, item: pd.DataFrame, user: pd.DataFrame) -> tuple[Tables, list[str]]:
    """Canonical interactions/items/users from the three parsed atomic files, and repair notes."""
    item, notes = repair_release_years(item)
    items = items_table(item.rename(columns={"movie_title": "title", "release_year": "year", "class": "genres"}))
    users = users_table(user.rename(columns={"zip_code": "zip"}))
    return Tables(interactions=normalise_interactions(inter), items=items, users=users), notes
