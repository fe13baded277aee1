"""Validating MovieLens-100K (all three tables) in a fresh process, Great Expectations import included.

Peer, measured in the same run: the same core checks written directly in pandas (nulls, keys,
duplicates, rating range, references, value sets), which have no report, Data Docs or quarantine.
Goal: recause's gate <= 15 s on 2 cores.

Run: .venv/bin/python benchmarks/validate_ml100k.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recause.layout import LAYOUT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = LAYOUT.under(ROOT)

GATE = """
import json, sys, time
started = time.perf_counter()
from recause.config import ValidateParams, WheelSource
from recause.validation.gate import check_table
from recause.validation.runner import GreatExpectations
from recause.data.wheels import load_movielens
from recause.layout import LAYOUT
wheels = LAYOUT.under(__import__("pathlib").Path(sys.argv[1])).wheels
tables, _ = load_movielens(WheelSource(cache_dir=str(wheels)), __import__("pathlib").Path(sys.argv[2]))
loaded = time.perf_counter()
runner = GreatExpectations()
imported = time.perf_counter()
params, now, checks = ValidateParams(), int(time.time()), {}
for table in ("users", "items"):
    checks[table] = check_table(table, getattr(tables, table), table, params, now, runner)
refs = {"user_id": checks["users"].accepted["user_id"].tolist(), "item_id": checks["items"].accepted["item_id"].tolist()}
checks["interactions"] = check_table("interactions", tables.interactions, "interactions", params, now, runner, refs)
done = time.perf_counter()
assert all(c.success for c in checks.values())
print(json.dumps({"total": done - started, "read": loaded - started, "gx_import": imported - loaded, "rules": done - imported}))
"""


def pandas_peer(tables) -> float:  # noqa: ANN001
    started = time.perf_counter()
    inter, items, users = tables.interactions, tables.items, tables.users
    problems = sum(
        [
            int(inter[["user_id", "item_id", "rating", "timestamp"]].isna().any(axis=None)),
            int(inter.duplicated(["user_id", "item_id", "timestamp"]).any()),
            int((~inter["rating"].between(1, 5)).any()),
            int((~inter["user_id"].isin(set(users["user_id"]))).any()),
            int((~inter["item_id"].isin(set(items["item_id"]))).any()),
            int(items["item_id"].duplicated().any() or users["user_id"].duplicated().any()),
            int((items["text"].str.len() < 1).any()),
            int((~users["gender"].isin({"M", "F"})).any()),
        ]
    )
    assert problems == 0
    return time.perf_counter() - started


def main() -> None:
    from recause.config import WheelSource
    from recause.data.wheels import load_movielens

    with tempfile.TemporaryDirectory() as raw:
        child = subprocess.run(
            [sys.executable, "-c", GATE, str(ROOT), str(Path(raw) / "ml-100k")],
            capture_output=True,
            text=True,
            check=True,
        )
        gate = json.loads(child.stdout.strip().splitlines()[-1])
        tables, _ = load_movielens(WheelSource(cache_dir=str(WORKSPACE.wheels)), Path(raw) / "ml-100k")
    peer = pandas_peer(tables)
    print("validating MovieLens-100K (943 users, 1,682 items, 100,000 interactions), fresh process")
    print(f"  recause gate, total            {gate['total']:6.2f} s   (goal <= 15 s)")
    print(f"    reading the raw files        {gate['read']:6.2f} s")
    print(f"    Great Expectations import    {gate['gx_import']:6.2f} s")
    print(f"    every rule, three tables     {gate['rules']:6.2f} s   {gate['rules'] / peer:6.1f}x the peer")
    print(f"  pandas checks (peer)           {peer:6.2f} s   1.0x")


if __name__ == "__main__":
    main()
