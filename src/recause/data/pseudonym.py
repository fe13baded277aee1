"""Keyed pseudonymisation of user ids: the same user gets the same pseudonym in every table."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd

from recause.data.schemas import Tables

PSEUDONYM_HEX_CHARS = 16


def pseudonym(raw_id: str, key: bytes) -> str:
    """HMAC-SHA256 of the raw id under ``key``, shortened; not reversible without the key."""
    digest = hmac.new(key, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "u" + digest[:PSEUDONYM_HEX_CHARS]


def pseudonymise_ids(ids: pd.Series, key: bytes) -> pd.Series:
    """Hash every distinct id once and map rows by code (nulls stay null for the validation gate to see)."""
    present = ids.notna()
    codes, distinct = pd.factorize(ids[present].astype(str))
    hashed = np.array([pseudonym(raw, key) for raw in distinct], dtype=object)
    if len(set(hashed)) != len(hashed):
        raise ValueError("pseudonym collision: lengthen PSEUDONYM_HEX_CHARS")
    mapped = pd.Series(np.full(len(ids), None, dtype=object), index=ids.index, dtype=object)
    mapped[present.to_numpy()] = hashed[codes]
    return mapped


def pseudonymise_tables(tables: Tables, key: bytes) -> Tables:
    """Replace user ids in interactions and users with their keyed pseudonyms."""
    if len(key) < 16:
        raise ValueError("pseudonym key must be at least 16 bytes")
    interactions = tables.interactions.copy()
    users = tables.users.copy()
    interactions["user_id"] = pseudonymise_ids(interactions["user_id"], key)
    users["user_id"] = pseudonymise_ids(users["user_id"], key)
    return Tables(interactions=interactions, items=tables.items, users=users)
