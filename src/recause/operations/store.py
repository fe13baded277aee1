"""Where champions live on disk: the registry file, DVC's cache, raw-input fingerprints."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from recause.errors import RecauseError
from recause.operations.champion import Registry

REGISTRY = Path("models/champion.json")


def read_registry(root: Path) -> Registry:
    path = root / REGISTRY
    if not path.exists():
        return Registry()
    return Registry.model_validate_json(path.read_text(encoding="utf-8"))


def write_registry(root: Path, registry: Registry) -> None:
    path = root / REGISTRY
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(registry.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def fingerprint(paths: list[Path]) -> str:
    """SHA-256 over every file under ``paths`` (relative names and contents, in sorted order)."""
    digest = hashlib.sha256()
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base] if base.exists() else []
        for file in files:
            if file.name.startswith(".") or file.name == "README.md":
                continue  # tool files (.gitignore) and the folder's own instructions are not data
            digest.update(str(file.relative_to(base.parent)).encode())
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _cache_file(root: Path, md5: str) -> Path:
    path = root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    if not path.exists():
        raise RecauseError(f"{md5} is not in the DVC cache of {root} (`dvc pull` from the champion remote?)")
    return path


def materialise(root: Path, md5: str, target: Path) -> Path:
    """Copy one DVC output (a file, or a directory when ``md5`` ends in '.dir') out of the cache."""
    if not md5.endswith(".dir"):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_cache_file(root, md5), target)
        return target
    for entry in json.loads(_cache_file(root, md5).read_text(encoding="utf-8")):
        destination = target / entry["relpath"]
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_cache_file(root, entry["md5"]), destination)
    return target
