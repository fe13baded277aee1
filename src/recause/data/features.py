"""Side features of users and items as dense float32 matrices (the joint model's side inputs).

Users: age bucket (MovieLens' bands), gender and occupation, one-hot. Items: genres multi-hot and
the release year, standardised. A column a table lacks contributes nothing, and a row with a
missing value gets all zeros in that column's block, so user-supplied tables with fewer columns
work unchanged. Rows follow the given id order (``IdIndex.ids``); ids absent from the table get
zero rows (e.g. an item without catalogue data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recause.data.tables import split_genres

AGE_BANDS = (18, 25, 35, 45, 50, 56)  # MovieLens-1M's age groups: <18, 18-24, ..., 56+


def one_hot(values: pd.Series) -> np.ndarray:
    """One column per distinct non-null value (sorted, so the layout is reproducible); nulls are zero rows."""
    present = values.dropna()
    categories = np.sort(present.astype(str).unique())
    codes = np.full(len(values), -1)
    codes[values.notna().to_numpy()] = np.searchsorted(categories, present.astype(str).to_numpy())
    matrix = np.zeros((len(values), len(categories)), dtype=np.float32)
    known = codes >= 0
    matrix[np.flatnonzero(known), codes[known]] = 1.0
    return matrix


def _aligned(table: pd.DataFrame, id_column: str, ids: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray | None:
    """The table's feature rows in the order of ``ids`` (zeros for ids it lacks); None without features.

    Features are computed on the whole table, so the column layout never depends on which ids are asked for.
    """
    blocks = [block for block in blocks if block.shape[1]]
    if not blocks:
        return None
    features = np.hstack(blocks).astype(np.float32)
    keys = table[id_column].astype(str).to_numpy()
    first = ~pd.Series(keys).duplicated().to_numpy()
    rows = pd.Index(keys[first]).get_indexer(np.asarray(ids, dtype=str))
    out = np.zeros((len(rows), features.shape[1]), dtype=np.float32)
    out[rows >= 0] = features[np.flatnonzero(first)[rows[rows >= 0]]]
    return out


def user_side_features(users: pd.DataFrame, ids: np.ndarray) -> np.ndarray | None:
    """(len(ids), d) one-hot age band, gender and occupation; None when the table has none of them."""
    users = users.reset_index(drop=True)
    blocks = []
    if "age" in users:
        age = pd.to_numeric(users["age"], errors="coerce").astype("float64")
        bands = pd.Series(np.digitize(age.fillna(0).to_numpy(), AGE_BANDS)).where(age.notna().to_numpy())
        blocks.append(one_hot(bands))
    blocks += [one_hot(users[column].astype("string")) for column in ("gender", "occupation") if column in users]
    return _aligned(users, "user_id", ids, blocks)


def item_side_features(items: pd.DataFrame, ids: np.ndarray) -> np.ndarray | None:
    """(len(ids), d) genres multi-hot and standardised release year; None when the table has neither."""
    items = items.reset_index(drop=True)
    blocks = []
    if "genres" in items:
        exploded = items["genres"].map(split_genres).explode().dropna()
        names = np.sort(exploded.astype(str).unique())
        matrix = np.zeros((len(items), len(names)), dtype=np.float32)
        matrix[exploded.index.to_numpy(), np.searchsorted(names, exploded.astype(str).to_numpy())] = 1.0
        blocks.append(matrix)
    if "year" in items:
        year = pd.to_numeric(items["year"], errors="coerce").astype("float64")
        if year.notna().any():
            spread = year.std() if year.notna().sum() > 1 and year.std() > 0 else 1.0
            blocks.append(((year - year.mean()) / spread).fillna(0.0).to_numpy(np.float32)[:, None])
    return _aligned(items, "item_id", ids, blocks)
