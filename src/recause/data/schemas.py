"""The typed schema of every table recause reads, and conversion of text columns to those types.

Conversion is lenient on purpose: a column whose values do not all parse keeps its text, so the
validation gate can name the offending rows and show them, instead of the reader crashing.
``finalise`` then gives accepted (validated) rows their strict dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from recause.errors import InputDataError

ColumnKind = Literal["id", "float", "int", "datetime", "text", "category", "list"]
NUMERIC_KINDS = ("float", "int", "datetime")


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    nullable: bool = False


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    key: str | None = None  # unique and never null
    unique_together: tuple[str, ...] = ()  # no two rows share these values

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


SCHEMAS: dict[str, TableSchema] = {
    "interactions": TableSchema(
        "interactions",
        (Column("user_id", "id"), Column("item_id", "id"), Column("rating", "float"), Column("timestamp", "int")),
        unique_together=("user_id", "item_id", "timestamp"),
    ),
    "items": TableSchema(
        "items",
        (
            Column("item_id", "id"),
            Column("title", "text"),
            Column("year", "int", nullable=True),
            Column("genres", "list"),
            Column("text", "text"),
        ),
        key="item_id",
    ),
    "users": TableSchema(
        "users",
        (
            Column("user_id", "id"),
            Column("age", "int", nullable=True),
            Column("gender", "category", nullable=True),
            Column("occupation", "category", nullable=True),
            Column("zip", "text", nullable=True),
        ),
        key="user_id",
    ),
    "bandit": TableSchema(
        "bandit",
        (
            Column("timestamp", "datetime"),
            Column("item_id", "id"),
            Column("position", "int"),
            Column("click", "int"),
            Column("propensity_score", "float"),
        ),
    ),
}

INTERACTION_COLUMNS = SCHEMAS["interactions"].names
ITEM_COLUMNS = SCHEMAS["items"].names
USER_COLUMNS = SCHEMAS["users"].names


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


def as_text(values: pd.Series) -> pd.Series:
    """Strings, with nulls kept as nulls (plain astype(str) would turn them into 'nan')."""
    present = values.notna()
    text = pd.Series(np.full(len(values), None, dtype=object), index=values.index, dtype=object)
    text[present.to_numpy()] = values[present].astype(str).to_numpy(dtype=object)  # vectorised str() per value
    return text


def _numeric_or_text(values: pd.Series, kind: ColumnKind) -> pd.Series:
    if kind == "datetime":
        if pd.api.types.is_numeric_dtype(values):
            return values.astype("Int64")
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
        since_epoch = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        seconds = pd.Series(since_epoch, index=values.index).astype("Int64")
    else:
        seconds = pd.to_numeric(values, errors="coerce")
    if (seconds.notna() | values.isna()).all():
        if kind == "float":
            return seconds.astype("float64")
        if (seconds.dropna() % 1 == 0).all():
            return seconds.astype("Int64")
    return as_text(values)


def coerce(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The schema's columns (plus any others, untouched) in the schema's types where values allow."""
    require_columns(frame, schema.names, schema.name)
    out = frame.copy()
    for column in schema.columns:
        if column.kind in NUMERIC_KINDS:
            out[column.name] = _numeric_or_text(out[column.name], column.kind)
        elif column.kind != "list":
            out[column.name] = as_text(out[column.name])
    return out  # index kept: it identifies rows for the validation gate


def finalise(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Strict dtypes for rows that passed validation (non-nullable numbers become plain numpy)."""
    out = frame.copy()
    for column in schema.columns:
        if column.kind == "float":
            out[column.name] = out[column.name].astype("float32")
        elif column.kind in ("int", "datetime") and not column.nullable:
            out[column.name] = out[column.name].astype("int64")
        elif column.kind in ("int", "datetime"):
            out[column.name] = out[column.name].astype("Int32")
    return out


def normalise_interactions(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical interaction columns, typed where values allow."""
    require_columns(frame, INTERACTION_COLUMNS, "interactions")
    return coerce(frame.loc[:, list(INTERACTION_COLUMNS)], SCHEMAS["interactions"]).reset_index(drop=True)
