"""Params of `ingest`: where interactions, items and users come from, and their pseudonyms.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recause.config.base import StrictModel


class WheelSource(StrictModel):
    """A data set shipped inside a Python wheel, read as files (the package is never imported)."""

    package: str = "recbole"
    version: str = "1.2.1"
    path: str = "recbole/dataset_example/ml-100k"
    cache_dir: str = "data/external/wheels"


class TableFile(StrictModel):
    """A user-supplied CSV/Parquet table and how its columns map onto recause's names."""

    path: str
    sep: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)


class UserFiles(StrictModel):
    interactions: TableFile
    items: TableFile
    users: TableFile | None = None


class SyntheticParams(StrictModel):
    """MovieLens-like logs of any size (``recause.data.synthetic``): scale tests without real data."""

    interactions: int = Field(default=100_000, ge=1_000)
    seed: int = 0
    n_topics: int = Field(default=20, ge=1)
    taste: float = Field(default=0.6, ge=0.0, le=1.0)
    popularity_exponent: float = Field(default=0.9, gt=0.0)
    min_user_events: int = Field(default=20, ge=1)
    vocabulary_size: int = Field(default=5_000, ge=100)


class DataParams(StrictModel):
    source: Literal["movielens100k", "files", "synthetic"] = "movielens100k"
    movielens100k: WheelSource = WheelSource()
    files: UserFiles | None = None
    synthetic: SyntheticParams = SyntheticParams()
    sample_users: int | None = Field(default=None, ge=1)
    pseudonymise: bool = True
    pseudonym_key_env: str = "RECAUSE_PSEUDONYM_KEY"
    pseudonym_key_file: str = ".recause/pseudonym.key"

    @model_validator(mode="after")
    def _files_given_for_files_source(self) -> DataParams:
        if self.source == "files" and self.files is None:
            raise ValueError("data.source is 'files' but data.files is not set")
        return self
