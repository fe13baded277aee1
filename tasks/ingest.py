"""Stage `ingest`: MovieLens-100K from the recbole wheel (or the user's files, or synthetic logs) -> tables.

Raw files (with raw user ids) live in ``data/raw`` and are never overwritten: the wheel fills in
only what is missing, so an edited or corrupted raw file is what the pipeline reads (and the
validation gate judges). Pseudonymised tables land in ``data/interim``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

from recause.artifacts import atomic_path, write_json, write_parquet
from recause.config import load_params
from recause.config.data import SyntheticParams, TableFile, UserFiles
from recause.data.keys import pseudonym_key
from recause.data.pseudonym import pseudonymise_tables
from recause.data.reader import read_delimited
from recause.data.sampling import sample_users
from recause.data.schemas import INTERACTION_COLUMNS, Tables, require_columns
from recause.data.synthetic import SyntheticSpec, synthetic_tables
from recause.data.tables import canonical
from recause.data.wheels import load_movielens
from recause.errors import InputDataError
from recause.layout import LAYOUT
from tasks._stage import run_stage

RAW_DIR = LAYOUT.raw
INTERIM_DIR = LAYOUT.interim
INCOMING_DIR = LAYOUT.incoming  # new interaction files are appended on the next run
SOURCES = INTERIM_DIR / "sources.json"
SAMPLE_SEED = 0


def read_user_table(spec: TableFile, table: str, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a user-supplied CSV/Parquet file and rename its columns to recause's names."""
    path = Path(spec.path)
    if not path.exists():
        raise InputDataError(f"{table} file not found: {path} (data.files.{table}.path)")
    theirs = [spec.columns.get(column, column) for column in required]
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise InputDataError(f"{path}: not a readable Parquet file: {str(error).splitlines()[0]}") from None
        require_columns(frame, tuple(theirs), str(path))
    else:
        frame = read_delimited(path.read_bytes(), str(path), theirs, sep=spec.sep)
    return frame.rename(columns={t: ours for ours, t in spec.columns.items()})


def user_tables(files: UserFiles) -> tuple[Tables, dict[str, str]]:
    """Canonical tables from the user's own files (item text is built when not given)."""
    interactions = canonical("interactions", read_user_table(files.interactions, "interactions", INTERACTION_COLUMNS))
    try:
        items = canonical("items", read_user_table(files.items, "items", ("item_id",)))
    except InputDataError as error:
        raise InputDataError(f"{files.items.path}: {error}") from None
    if files.users is not None:
        user_frame = read_user_table(files.users, "users", ("user_id",))
    else:
        user_frame = pd.DataFrame({"user_id": pd.unique(interactions["user_id"].dropna())})
    sources = {"interactions": files.interactions.path, "items": files.items.path}
    sources["users"] = files.users.path if files.users is not None else files.interactions.path
    return Tables(interactions, items, canonical("users", user_frame)), sources


def keep_raw_copies(files: UserFiles, target: Path) -> None:
    """Copy the user's files into data/raw so DVC versions the exact input of this run."""
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        for table in ("interactions", "items", "users"):
            spec: TableFile | None = getattr(files, table)
            if spec is not None:
                shutil.copy2(spec.path, tmp / f"{table}{Path(spec.path).suffix}")


def append_incoming(tables: Tables, directory: Path) -> tuple[Tables, list[str]]:
    """Interactions dropped into ``directory`` (CSV/TSV/Parquet, raw ids) appended to the logs."""
    files = sorted(
        p for p in directory.glob("*") if p.is_file() and p.suffix.lower() in {".csv", ".tsv", ".parquet", ".pq"}
    )
    frames = [
        canonical("interactions", read_user_table(TableFile(path=str(path)), "incoming", INTERACTION_COLUMNS))
        for path in files
    ]
    if not frames:
        return tables, []
    interactions = pd.concat([tables.interactions, *frames], ignore_index=True)
    return Tables(interactions, tables.items, tables.users), [str(path) for path in files]


def generated_tables(params: SyntheticParams) -> tuple[Tables, dict[str, str]]:
    """Synthetic MovieLens-like tables; the spec stands in for a source file (it is all they depend on)."""
    drawn = synthetic_tables(SyntheticSpec(**params.model_dump()))
    tables = Tables(*(canonical(name, getattr(drawn, name)) for name in ("interactions", "items", "users")))
    spec = ", ".join(f"{key}={value}" for key, value in params.model_dump().items())
    return tables, {table: f"synthetic({spec})" for table in ("interactions", "items", "users")}


def main() -> None:
    params = load_params().data
    if params.source == "movielens100k":
        tables, sources = load_movielens(params.movielens100k, RAW_DIR / "ml-100k")
    elif params.source == "synthetic":
        tables, sources = generated_tables(params.synthetic)
    else:
        assert params.files is not None  # guaranteed by DataParams
        tables, sources = user_tables(params.files)
        keep_raw_copies(params.files, RAW_DIR / "files")
    tables, incoming = append_incoming(tables, INCOMING_DIR)
    if incoming:
        sources["incoming"] = ", ".join(incoming)
        print(f"ingest: appended the interactions of {len(incoming)} file(s) in {INCOMING_DIR}/", file=sys.stderr)
    if params.sample_users is not None:
        tables = sample_users(tables, params.sample_users, seed=SAMPLE_SEED)
    if params.pseudonymise:
        tables = pseudonymise_tables(tables, pseudonym_key(params))
    for name in ("interactions", "items", "users"):
        write_parquet(getattr(tables, name), INTERIM_DIR / f"{name}.parquet")
    write_json(SOURCES, sources)
    print(
        f"ingest: {len(tables.interactions):,} interactions, {len(tables.items):,} items, "
        f"{len(tables.users):,} users -> {INTERIM_DIR}/"
    )


if __name__ == "__main__":
    run_stage(main)
