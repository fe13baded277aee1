"""The pseudonymisation audit: after a pipeline run, no artifact outside the raw inputs holds a raw user id.

ML-100K's raw user ids are the numbers 1..943, which every artifact holds by the thousand as something else
(item ids, counts, ranks), so a search for them proves nothing. The audit therefore renames every raw user id
to a token no other value can look like (``rawuser<id>z``), re-runs the tiny pipeline on those raw files, and
then searches every byte of every artifact for the token -- inside compressed Parquet columns and zip members
(npz, torch checkpoints) too, where a plain byte search would miss it.
"""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recause.layout import LAYOUT
from tests.integration.workspaces import Workspace

MARKER = "rawuser"
# as stored: UTF-8 text, and the UTF-16/UTF-32 code units of numpy's and Arrow's wide string arrays
ENCODINGS = ("utf-8", "utf-16-le", "utf-32-le")
RAW_FILES = ("ml-100k.inter", "ml-100k.user")  # the two atomic files with a user_id column (the first)
AUDITED = ("data", "models", "metrics", "reports", "checkpoints")
# raw inputs by definition: the shipped/renamed files, the wheels they come from, and files users drop in
NOT_AUDITED = ("data/raw", "data/external", "data/incoming")


def rename_raw_users(path: Path) -> int:
    """Rewrite the first (user_id) column of a RecBole atomic file as ``rawuser<id>z``; return the rows renamed."""
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    assert header.split("\t")[0].startswith("user_id"), header
    renamed = [re.sub(r"^(\d+)\t", r"rawuser\1z\t", row) for row in rows]
    path.write_text("\n".join([header, *renamed]) + "\n", encoding="utf-8")
    return sum(new != old for new, old in zip(renamed, rows, strict=True))


def readable_parts(path: Path) -> list[tuple[str, bytes]]:
    """A file's bytes, plus what compression hides: each Parquet column as text, each zip member's bytes."""
    data = path.read_bytes()
    parts = [(str(path), data)]
    if data[:4] == b"PAR1":
        table = pq.read_table(path)
        parts += [
            (f"{path}:{name}", "\n".join(map(str, table[name].to_pylist())).encode()) for name in table.column_names
        ]
    elif zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts += [(f"{path}!{member}", archive.read(member)) for member in archive.namelist()]
    return parts


def files_holding(root: Path, marker: str, audited: tuple[str, ...], skipped: tuple[str, ...]) -> list[str]:
    """Every file (or Parquet column, or zip member) under the ``audited`` folders, less ``skipped``, that holds ``marker``."""
    skip = tuple(root / s for s in skipped)
    encoded = [marker.encode(encoding) for encoding in ENCODINGS]
    found = []
    for top in audited:
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and not any(path.is_relative_to(s) for s in skip):
                found += [where for where, data in readable_parts(path) if any(m in data for m in encoded)]
    return found


def test_the_scan_finds_a_raw_id_in_compressed_parquet_and_zip_members(tmp_path: Path) -> None:
    """The scanner's own check: a raw id hidden by zstd in Parquet, or by deflate in an npz, is found."""
    (tmp_path / "data").mkdir()
    ids = [f"u{i:016x}" for i in range(2000)] + ["rawuser42z"]
    pq.write_table(pa.table({"user_id": ids}), tmp_path / "data/users.parquet", compression="zstd")
    np.savez_compressed(tmp_path / "data/model.npz", user_ids=np.array(ids))
    pd.DataFrame({"user_id": ids[:-1]}).to_parquet(tmp_path / "data/clean.parquet")
    assert MARKER.encode() not in (tmp_path / "data/model.npz").read_bytes()  # a plain byte search would miss it
    found = files_holding(tmp_path, MARKER, ("data",), ())
    assert any("users.parquet:user_id" in f for f in found) and any("model.npz!user_ids.npy" in f for f in found)
    assert not any("clean.parquet" in f for f in found)


@pytest.mark.slow
def test_no_artifact_outside_the_raw_inputs_holds_a_raw_user_id(workspace_clone: Workspace) -> None:
    root = workspace_clone.root
    layout = LAYOUT.under(root)
    for name in RAW_FILES:
        assert rename_raw_users(layout.raw / "ml-100k" / name) > 0
    # every user is new to the drift gate, and no finished training run may be resumed on other users
    shutil.rmtree(layout.validation_snapshots)
    for stage_checkpoints in layout.checkpoints.iterdir():
        if stage_checkpoints.name != "pretrain":  # item text only: users never reach it
            shutil.rmtree(stage_checkpoints)
    done = workspace_clone.run("dvc", "repro")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Running stage 'ingest'" in done.stdout and "Running stage 'evaluate'" in done.stdout
    assert files_holding(root, MARKER, ("data/raw",), ())  # the renamed ids are what the pipeline read...
    assert files_holding(root, MARKER, AUDITED, NOT_AUDITED) == []  # ...and no artifact holds one
