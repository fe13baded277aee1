"""The variables table that causal discovery and effect estimation read: one numeric row per rating.

Every column is a number so that conditional-independence tests and scores can use it directly:

- ``age_bucket``: index of the user's age among ``age_bucket_edges`` (``searchsorted(edges, age, "right")``:
  with the default edges, under 18 -> 0, 18-24 -> 1, ..., 56 and over -> 5).
- ``gender``: 0 for "M", 1 for "F".
- ``occupation``: position of the occupation in the sorted list of occupations found in ``users``
  (the list is kept in ``table.attrs["occupation_codes"]``).
- ``item_year``: release year; rows whose item has no year are dropped (count in ``attrs["dropped_rows"]``).
- ``popularity_bucket``: quantile bucket, over items, of the item's number of ratings in ``interactions``
  (0 = least rated items). Tied counts share a bucket, so there can be fewer than ``popularity_buckets``.
- ``genre_overlap``: share of the item's genres already present among the genres of the items the user rated
  strictly earlier (by timestamp); 0 for a user's first rating and for ratings tied with it.
- ``rating``: the rating as given (float).

Rows keep the order of ``interactions`` (less the dropped rows), so they can be matched back to it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from recause.config.causal import VariablesParams

GENDER_CODES = {"M": 0, "F": 1}


def variables_table(
    interactions: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, params: VariablesParams
) -> pd.DataFrame:
    """One row per rating with the columns of ``params.columns``, all numeric.

    Rows that cannot be coded (item without a year, user without age/gender/occupation) are dropped; how many,
    by reason, is in ``attrs["dropped_rows"]``. Pure: the inputs are not modified.
    """
    events = interactions[["user_id", "item_id", "rating", "timestamp"]].reset_index(drop=True)
    # Overlap and popularity come from the full history, before any row is dropped, so dropping an item
    # without a year does not change what the user is known to have seen.
    events["genre_overlap"] = genre_overlap(events, items)
    counts = events["item_id"].value_counts()
    buckets = pd.qcut(counts, params.popularity_buckets, labels=False, duplicates="drop")
    events["popularity_bucket"] = events["item_id"].map(buckets)

    occupations = sorted(users["occupation"].dropna().unique())
    user_codes = pd.DataFrame(
        {
            "user_id": users["user_id"],
            "age_bucket": _age_bucket(users["age"], params.age_bucket_edges),
            "gender": users["gender"].map(GENDER_CODES),
            "occupation": users["occupation"].map({name: code for code, name in enumerate(occupations)}),
        }
    )
    item_codes = pd.DataFrame({"item_id": items["item_id"], "item_year": items["year"]})
    table = events.merge(user_codes, on="user_id", how="left", validate="many_to_one").merge(
        item_codes, on="item_id", how="left", validate="many_to_one"
    )

    dropped: dict[str, int] = {}
    for column in ("item_year", "age_bucket", "gender", "occupation"):
        missing = table[column].isna()
        dropped[column] = int(missing.sum())
        table = table.loc[~missing]
    out = pd.DataFrame(
        {
            "age_bucket": table["age_bucket"].astype("int64"),
            "gender": table["gender"].astype("int64"),
            "occupation": table["occupation"].astype("int64"),
            "item_year": table["item_year"].astype("int64"),
            "popularity_bucket": table["popularity_bucket"].astype("int64"),
            "genre_overlap": table["genre_overlap"].astype("float64"),
            "rating": table["rating"].astype("float64"),
        }
    )[list(params.columns)].reset_index(drop=True)
    out.attrs["dropped_rows"] = dropped
    out.attrs["occupation_codes"] = list(occupations)
    return out


def genre_overlap(events: pd.DataFrame, items: pd.DataFrame) -> np.ndarray:
    """For each event, the share of the item's genres seen in the user's strictly earlier events (vectorised).

    Events are sorted by (user, timestamp); a per-row running count of genres, minus the count at the start of
    the user's history and taken at the start of the row's (user, timestamp) block, is what was seen before.
    """
    vocabulary = sorted({g for genres in items["genres"] for g in _as_list(genres)})
    column = {g: j for j, g in enumerate(vocabulary)}
    item_genres = np.zeros((len(items), max(len(vocabulary), 1)), dtype=np.int32)
    for row, genres in enumerate(items["genres"]):
        for g in _as_list(genres):
            item_genres[row, column[g]] = 1
    item_row = pd.Series(np.arange(len(items)), index=items["item_id"].to_numpy())

    rows = item_row.reindex(events["item_id"].to_numpy()).to_numpy()
    known = ~np.isnan(rows)
    genres = np.zeros((len(events), item_genres.shape[1]), dtype=np.int32)
    genres[known] = item_genres[rows[known].astype(np.int64)]

    user_code = pd.factorize(events["user_id"])[0]
    stamp_all = events["timestamp"].astype("int64").to_numpy()
    order = np.lexsort((stamp_all, user_code))
    user, stamp = user_code[order], stamp_all[order]
    g_sorted = genres[order]
    before = np.cumsum(g_sorted, axis=0) - g_sorted  # exclusive running count over all users
    idx = np.arange(len(order))
    user_start = np.maximum.accumulate(np.where(np.r_[True, user[1:] != user[:-1]], idx, 0))
    block_start = np.maximum.accumulate(
        np.where(np.r_[True, (user[1:] != user[:-1]) | (stamp[1:] != stamp[:-1])], idx, 0)
    )
    seen = (before[block_start] - before[user_start[block_start]]) > 0
    n_genres = g_sorted.sum(axis=1)
    shared = (seen & (g_sorted > 0)).sum(axis=1)
    overlap_sorted = np.divide(shared, n_genres, out=np.zeros(len(order)), where=n_genres > 0)
    overlap = np.empty(len(order))
    overlap[order] = overlap_sorted
    return overlap


def sample_rows(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``n`` rows (all rows when there are fewer), index reset, attrs kept."""
    sample = table.sample(n=min(n, len(table)), random_state=seed).reset_index(drop=True)
    sample.attrs = dict(table.attrs)
    return sample


def _age_bucket(age: pd.Series, edges: tuple[int, ...]) -> pd.Series:
    values = pd.to_numeric(age, errors="coerce").astype("float64")
    codes = np.searchsorted(np.asarray(edges, dtype=float), values.to_numpy(), side="right").astype("float64")
    codes[values.isna().to_numpy()] = np.nan
    return pd.Series(codes, index=age.index)


def _as_list(genres: object) -> list[str]:
    if genres is None or (isinstance(genres, float) and np.isnan(genres)):
        return []
    if isinstance(genres, str):
        return [genres]
    return [str(g) for g in genres] if isinstance(genres, Iterable) else []
