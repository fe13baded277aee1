"""The workspace's pseudonym key: from an environment variable, else a local secret file created once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from recause.config.data import DataParams


def existing_pseudonym_key(params: DataParams, root: Path = Path(".")) -> bytes | None:
    """The key from the environment, else from the workspace's secret file; None when neither exists."""
    from_env = os.environ.get(params.pseudonym_key_env)
    if from_env:
        return from_env.encode("utf-8")
    path = root / params.pseudonym_key_file
    return path.read_text(encoding="utf-8").strip().encode("utf-8") if path.exists() else None


def pseudonym_key(params: DataParams, root: Path = Path(".")) -> bytes:
    """The key from the environment, else a local secret file (created once, never committed)."""
    existing = existing_pseudonym_key(params, root)
    if existing is not None:
        return existing
    path = root / params.pseudonym_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode("utf-8")
