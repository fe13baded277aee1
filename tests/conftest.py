"""Shared fixtures: the real MovieLens-100K files, read out of the recbole wheel once per session."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from recause.config import WheelSource
from recause.data.schemas import Tables
from recause.data.wheels import extract_wheel_files, load_movielens, locate_wheel

ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHE = ROOT / "data" / "external" / "wheels"

for key, value in {
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def ml100k_wheel() -> Path:
    return locate_wheel(WheelSource(cache_dir=str(WHEEL_CACHE)))


@pytest.fixture(scope="session")
def ml100k_raw(ml100k_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The raw atomic files (raw user ids), by table."""
    return extract_wheel_files(ml100k_wheel, WheelSource().path, tmp_path_factory.mktemp("raw") / "ml-100k")


@pytest.fixture(scope="session")
def open_bandit_random(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Open Bandit Dataset sample logged by the uniform-random policy (campaign 'all')."""
    wheel = locate_wheel(WheelSource(package="obp", version="0.4.1", cache_dir=str(WHEEL_CACHE)))
    target = tmp_path_factory.mktemp("obd") / "random_all.csv"
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read("obp/dataset/obd/random/all/all.csv"))
    return target


@pytest.fixture(scope="session")
def ml100k(ml100k_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Tables:
    tables, _ = load_movielens(
        WheelSource(cache_dir=str(ml100k_wheel.parent)), tmp_path_factory.mktemp("raw") / "ml-100k"
    )
    return tables
