"""One file's bytes -> the canonical table it holds, for validating a file on its own.

Accepts CSV/TSV (delimiter sniffed), Parquet, and RecBole atomic files (.inter/.item/.user),
which are converted the way ingest converts MovieLens.
"""

from __future__ import annotations

import io

import pandas as pd

from recause.data.movielens import ATOMIC_FILES, parse_atomic, repair_release_years
from recause.data.reader import read_delimited
from recause.data.schemas import SCHEMAS, require_columns
from recause.data.tables import canonical
from recause.errors import InputDataError

_KEYS = {
    "interactions": SCHEMAS["interactions"].names,
    "items": ("item_id",),
    "users": ("user_id",),
    "bandit": SCHEMAS["bandit"].names,
}


def table_from_bytes(table: str, data: bytes, name: str) -> pd.DataFrame:
    """Parse ``data`` (a file called ``name``) as ``table``; unparseable files raise InputDataError."""
    if table not in _KEYS:
        raise InputDataError(f"unknown table '{table}'; choose one of {', '.join(_KEYS)}")
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in ("parquet", "pq"):
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except (OSError, ValueError) as error:
            raise InputDataError(f"{name}: not a readable Parquet file: {str(error).splitlines()[0]}") from None
        require_columns(frame, _KEYS[table], name)
        return canonical(table, frame)
    atomic = {suffix_: table_ for table_, suffix_ in ATOMIC_FILES.items()}
    if suffix in atomic:
        if atomic[suffix] != table:
            raise InputDataError(f"{name}: a RecBole .{suffix} file holds {atomic[suffix]}, not {table}")
        frame = parse_atomic(data, name, table)
        if table == "items":
            frame, _ = repair_release_years(frame)
            frame = frame.rename(columns={"movie_title": "title", "release_year": "year", "class": "genres"})
        return canonical(table, frame.rename(columns={"zip_code": "zip"}))
    return canonical(table, read_delimited(data, name, _KEYS[table]))
