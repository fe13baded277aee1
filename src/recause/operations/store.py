"""Where champions live on disk: the registry file, DVC's cache, raw-input fingerprints."""

from __future__ import annotations

import hashlib
from pathlib import Path

from recause.artifacts import write_text
from recause.errors import RecauseError
from recause.layout import LAYOUT
from recause.operations.champion import Registry


def read_registry(root: Path) -> Registry:
    path = LAYOUT.under(root).accepted
    if not path.exists():
        return Registry()
    return Registry.model_validate_json(path.read_text(encoding="utf-8"))


def write_registry(root: Path, registry: Registry) -> None:
    write_text(LAYOUT.under(root).accepted, registry.model_dump_json(indent=2) + "\n")


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


def materialise(root: Path, md5: str, target: Path) -> Path:
    """Check one DVC output (a file, or a directory when ``md5`` ends in '.dir') out of the
    workspace's DVC cache into ``target``, by its hash.

    By hash, not by git revision: a champion is a dvc.lock held in the registry, which need not be
    committed anywhere (``retrain.commit: false``, or a workspace outside git).
    """
    from dvc.exceptions import DvcException
    from dvc.fs import localfs
    from dvc.repo import Repo
    from dvc_data.hashfile import load
    from dvc_data.hashfile.checkout import CheckoutError, checkout
    from dvc_data.hashfile.hash_info import HashInfo

    try:
        with Repo(str(root)) as repo:
            cache = repo.cache.local
            checkout(str(target), localfs, load(cache, HashInfo("md5", md5)), cache=cache, quiet=True)
    except (FileNotFoundError, CheckoutError, DvcException):
        raise RecauseError(f"{md5} is not in the DVC cache of {root} (`dvc pull` from the champion remote?)") from None
    return target
