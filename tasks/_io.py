"""I/O shared by the stage modules: params, atomic writes, model files, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recause.config import Params, parse_params
from recause.errors import InputDataError, ParamsError, RecauseError
from recause.models.base import Recommender

PARAMS_FILE = Path("params.yaml")


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml (missing file = all packaged defaults)."""
    if not path.exists():
        raise ParamsError(f"{path}: file not found (run from the project root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_params(raw, source=str(path))


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
    directory: Path, name: str, registry: dict[str, type[Recommender]]
) -> tuple[Recommender, dict[str, Any]]:
    from safetensors.numpy import load_file

    meta_path = require_file(directory / f"{name}.json", f"model '{name}' metadata")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    arrays = load_file(str(require_file(directory / f"{name}.safetensors", f"model '{name}' weights")))
    return registry[name].from_state(meta["config"], arrays), meta


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; a RecauseError becomes one line on stderr and exit code 2 (not retried)."""
    try:
        main()
    except RecauseError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def _merge_into(node: Any, updates: dict[str, Any]) -> None:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            _merge_into(node[key], value)
        else:
            node[key] = value


def update_params_file(path: Path, updates: dict[str, Any]) -> bool:
    """Merge ``updates`` into params.yaml keeping its comments; validate first; True if it changed."""
    import io

    from ruamel.yaml import YAML

    round_trip = YAML()
    round_trip.preserve_quotes = True
    original = path.read_text(encoding="utf-8") if path.exists() else ""
    document = round_trip.load(original) or {}
    _merge_into(document, updates)
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    parse_params(yaml.safe_load(buffer.getvalue()), source=f"{path} (after overrides)")
    if buffer.getvalue() == original:
        return False
    write_text(path, buffer.getvalue())
    return True


SEEDED_SECTIONS = ("split", "ope", "pretrain", "finetune", "causal")


def apply_params_updates(
    path: Path, profile: Path | None = None, overrides: list[str] | None = None, seed: int | None = None
) -> bool:
    """Write a profile, ``KEY=VALUE`` overrides and a seed into params.yaml (so DVC sees them).

    Precedence: params.yaml < profile < overrides < seed (the seed of the split and every trained step).
    """
    from recause.config import apply_overrides, merge_profile

    updates: dict[str, Any] = {}
    if profile is not None:
        if not profile.exists():
            raise ParamsError(f"profile not found: {profile}")
        updates = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
        if not isinstance(updates, dict):
            raise ParamsError(f"profile {profile}: expected a mapping of params sections")
    updates = merge_profile(updates, apply_overrides({}, overrides or []))
    if seed is not None:
        updates = merge_profile(updates, {section: {"seed": seed} for section in SEEDED_SECTIONS})
    return bool(updates) and update_params_file(path, updates)
