"""Digests of what a training run depends on, so a checkpoint is resumed only by the run that wrote it.

``run_fingerprint`` hashes a run's inputs (params, input digests, code digests); it is unrelated to
``recause.operations.store.fingerprint``, which hashes the raw input files a champion was trained on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any


def file_digest(*paths: Path) -> str:
    """SHA-256 over the names and bytes of these files (folders: every file in them, in sorted order)."""
    digest = hashlib.sha256()
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def code_digest(*modules: ModuleType) -> str:
    """Digest of the source of these modules (packages: every file in them), so changed code never
    resumes a checkpoint that older code wrote."""
    paths = [Path(m.__file__).parent if m.__file__.endswith("__init__.py") else Path(m.__file__) for m in modules]
    return file_digest(*paths)


def run_fingerprint(*parts: Any) -> str:
    """What a run depends on; a checkpoint written under another fingerprint is not resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
