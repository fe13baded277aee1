"""Artifact I/O in one place: atomic writes, Parquet tables, and models as safetensors (arrays) + JSON (config).

A stage that dies half-way never leaves a half-written file: every write goes to a temporary sibling
that replaces the target at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recause.errors import InputDataError

if TYPE_CHECKING:  # types only: artifact I/O sits below the models in the layers
    from recause.models.base import Recommender


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputDataError(f"{what} not found: {path} (run the stage that writes it, or check params.yaml)")
    return path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``path`` (file or directory) at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            trash = path.with_name(f".{path.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            path.rename(trash)
            tmp.rename(path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def read_item_embeddings(path: Path, item_ids: np.ndarray) -> np.ndarray:
    """`embed`'s item embeddings (a safetensors file with its ``item_ids`` in the metadata) in the order of
    ``item_ids``; every item must have one."""
    from safetensors import safe_open

    with safe_open(str(require_file(path, "item embeddings")), framework="np") as handle:
        ids = json.loads(handle.metadata()["item_ids"])
        embeddings = handle.get_tensor("embeddings")
    rows = pd.Index(np.asarray(ids, dtype=str)).get_indexer(np.asarray(item_ids, dtype=str))  # -1: missing
    if (rows < 0).any():
        raise InputDataError(f"{path} lacks {(rows < 0).sum()} of the {len(rows):,} items: re-run `embed`")
    return embeddings[rows]


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: Any) -> None:
    write_text(path, json.dumps(payload, indent=2) + "\n")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_parquet(path: Path, what: str) -> pd.DataFrame:
    return pd.read_parquet(require_file(path, what))


def save_model(directory: Path, model: Recommender, metadata: dict[str, Any]) -> None:
    """``<name>.safetensors`` (arrays) + ``<name>.json`` (config and metadata) inside ``directory``."""
    from safetensors.numpy import save_file

    arrays = {name: np.ascontiguousarray(a) for name, a in model.arrays().items()}
    save_file(arrays, str(directory / f"{model.name}.safetensors"))
    meta = {"model": model.name, "config": model.config(), **metadata}
    (directory / f"{model.name}.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_model(
    directory: Path, name: str, registry: Mapping[str, type[Recommender]]
) -> tuple[Recommender, dict[str, Any]]:
    from safetensors.numpy import load_file

    meta_path = require_file(directory / f"{name}.json", f"model '{name}' metadata")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    arrays = load_file(str(require_file(directory / f"{name}.safetensors", f"model '{name}' weights")))
    return registry[name].from_state(meta["config"], arrays), meta
