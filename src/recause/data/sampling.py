"""Seeded subsets of the data for small parameter profiles (tests, smoke runs)."""

from __future__ import annotations

import numpy as np

from recause.data.schemas import Tables


def sample_users(tables: Tables, n_users: int, seed: int) -> Tables:
    """Keep ``n_users`` users drawn with ``seed``, their interactions, and the items they touched."""
    users = np.sort(tables.interactions["user_id"].dropna().unique())
    if n_users >= len(users):
        return tables
    keep = set(np.random.default_rng(seed).choice(users, size=n_users, replace=False))
    interactions = tables.interactions[tables.interactions["user_id"].isin(keep)]
    items = tables.items[tables.items["item_id"].isin(set(interactions["item_id"]))]
    user_table = tables.users[tables.users["user_id"].isin(keep)]
    return Tables(
        interactions=interactions.reset_index(drop=True),
        items=items.reset_index(drop=True),
        users=user_table.reset_index(drop=True),
    )
