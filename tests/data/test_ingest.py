"""Ingest on the real MovieLens-100K files: schema, item text, pseudonyms, user-supplied files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recause.config import TableFile, UserFiles
from recause.data.pseudonym import pseudonymise_tables
from recause.data.sampling import sample_users
from recause.data.schemas import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, Tables
from recause.errors import InputDataError
from tasks.ingest import user_tables

ROOT = Path(__file__).resolve().parents[2]
KEY = b"k" * 32


def test_movielens_tables_have_the_documented_shape(ml100k: Tables) -> None:
    assert (len(ml100k.interactions), len(ml100k.items), len(ml100k.users)) == (100_000, 1_682, 943)
    assert tuple(ml100k.interactions.columns) == INTERACTION_COLUMNS
    assert tuple(ml100k.items.columns) == ITEM_COLUMNS
    assert tuple(ml100k.users.columns) == USER_COLUMNS
    assert ml100k.interactions["rating"].between(1, 5).all()
    toy_story = ml100k.items.set_index("item_id").loc["1"]
    assert toy_story["text"] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert list(toy_story["genres"]) == ["Animation", "Children's", "Comedy"]
    assert ml100k.items["text"].str.len().gt(0).all()
    assert ml100k.users["age"].notna().all() and set(ml100k.users["gender"]) == {"M", "F"}


def test_pseudonyms_are_consistent_across_tables_and_hide_raw_ids(ml100k: Tables) -> None:
    hidden = pseudonymise_tables(ml100k, KEY)
    raw_ids = set(ml100k.users["user_id"])
    assert raw_ids.isdisjoint(hidden.users["user_id"]) and raw_ids.isdisjoint(hidden.interactions["user_id"])
    # the same raw user maps to the same pseudonym in both tables, one-to-one
    via_users = dict(zip(ml100k.users["user_id"], hidden.users["user_id"], strict=True))
    via_interactions = dict(zip(ml100k.interactions["user_id"], hidden.interactions["user_id"], strict=True))
    assert via_interactions == {raw: via_users[raw] for raw in via_interactions}
    assert len(set(via_users.values())) == len(via_users)
    # another key gives other pseudonyms; the item table is untouched
    other = pseudonymise_tables(ml100k, b"x" * 32)
    assert set(other.users["user_id"]).isdisjoint(hidden.users["user_id"])
    assert hidden.items.equals(ml100k.items)


def test_sampling_keeps_whole_users_and_only_their_items(ml100k: Tables) -> None:
    small = sample_users(ml100k, 25, seed=0)
    assert small.interactions["user_id"].nunique() == 25 == len(small.users)
    assert set(small.items["item_id"]) == set(small.interactions["item_id"])
    per_user = ml100k.interactions.groupby("user_id").size()
    assert small.interactions.groupby("user_id").size().equals(per_user.loc[sorted(small.users["user_id"])])
    assert sample_users(ml100k, 25, seed=0).interactions.equals(small.interactions)


def test_user_files_with_their_own_column_names(ml100k: Tables, tmp_path: Path) -> None:
    ratings = ml100k.interactions.head(500).rename(columns={"user_id": "uid", "item_id": "movie", "rating": "stars"})
    ratings.to_csv(tmp_path / "ratings.csv", sep=";", index=False)
    movies = ml100k.items[["item_id", "title", "year"]].rename(columns={"item_id": "movie"})
    movies["genres"] = ml100k.items["genres"].map("|".join)
    movies.to_parquet(tmp_path / "movies.parquet")
    files = UserFiles(
        interactions=TableFile(
            path=str(tmp_path / "ratings.csv"), columns={"user_id": "uid", "item_id": "movie", "rating": "stars"}
        ),
        items=TableFile(path=str(tmp_path / "movies.parquet"), columns={"item_id": "movie"}),
    )
    tables, sources = user_tables(files)
    assert sources["interactions"] == str(tmp_path / "ratings.csv")
    assert len(tables.interactions) == 500 and tables.interactions["rating"].dtype == "float64"
    assert tables.items.set_index("item_id").loc["1", "text"] == ml100k.items.set_index("item_id").loc["1", "text"]
    assert set(tables.users["user_id"]) == set(tables.interactions["user_id"])

    broken = TableFile(path=str(tmp_path / "ratings.csv"), columns={"user_id": "uid", "item_id": "movie"})
    with pytest.raises(
        InputDataError, match=r"ratings\.csv: missing column\(s\) rating; found uid, movie, stars, timestamp"
    ):
        user_tables(UserFiles(interactions=broken, items=files.items))
    with pytest.raises(InputDataError, match="interactions file not found: .*nope.csv"):
        user_tables(UserFiles(interactions=TableFile(path=str(tmp_path / "nope.csv")), items=files.items))


def test_ingest_stage_writes_pseudonymised_tables_and_keeps_raw_ids_in_raw(tmp_path: Path, ml100k_wheel: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        f"data:\n  sample_users: 30\n  movielens100k:\n    cache_dir: {ml100k_wheel.parent}\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RECAUSE_PSEUDONYM_KEY", None)
    done = subprocess.run([sys.executable, "-m", "tasks.ingest"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    interactions = pd.read_parquet(tmp_path / "data/interim/interactions.parquet")
    users = pd.read_parquet(tmp_path / "data/interim/users.parquet")
    raw = pd.read_csv(tmp_path / "data/raw/ml-100k/ml-100k.user", sep="\t", dtype=str)
    assert interactions["user_id"].nunique() == 30 == len(users)
    assert set(users["user_id"]) == set(interactions["user_id"])
    assert set(users["user_id"]).isdisjoint(raw["user_id:token"])
    key_file = tmp_path / ".recause/pseudonym.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"

    # a key from the environment wins over the local file and changes every pseudonym
    env["RECAUSE_PSEUDONYM_KEY"] = "a-key-from-the-environment-0123456789"
    done = subprocess.run([sys.executable, "-m", "tasks.ingest"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again = pd.read_parquet(tmp_path / "data/interim/users.parquet")
    assert set(again["user_id"]).isdisjoint(users["user_id"]) and len(again) == 30


def test_ingest_stage_on_user_files_versions_a_copy_of_them(ml100k: Tables, tmp_path: Path) -> None:
    source = tmp_path / "mine"
    source.mkdir()
    ml100k.interactions.head(300).to_csv(source / "ratings.csv", index=False)
    ml100k.items[["item_id", "title"]].to_csv(source / "movies.csv", index=False)
    (tmp_path / "params.yaml").write_text(
        "data:\n  source: files\n  files:\n"
        f"    interactions: {{path: {source / 'ratings.csv'}}}\n"
        f"    items: {{path: {source / 'movies.csv'}}}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECAUSE_PSEUDONYM_KEY": "k" * 32}
    done = subprocess.run([sys.executable, "-m", "tasks.ingest"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data/raw/files/interactions.csv").read_bytes() == (source / "ratings.csv").read_bytes()
    assert (tmp_path / "data/raw/files/items.csv").read_bytes() == (source / "movies.csv").read_bytes()
    interactions = pd.read_parquet(tmp_path / "data/interim/interactions.parquet")
    assert len(interactions) == 300
    assert set(interactions["user_id"]).isdisjoint(ml100k.interactions["user_id"])
