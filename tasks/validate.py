"""Stage `validate`: the gate between ingested data and everything that learns from it.

mode `fail` (default): any broken rule or drift breach exits non-zero; nothing downstream runs
and the outputs of the last good run stay as they were. mode `quarantine`: rows that broke a rule
go to data/quarantine/<table>.parquet with the rules they broke; the rest continue.
Always writes reports/validation.md (published by the flow) and Great Expectations Data Docs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from recause.artifacts import atomic_path, read_parquet, write_json, write_text
from recause.config import load_params
from recause.errors import ValidationFailed
from recause.layout import LAYOUT
from recause.validation.drift import WATCHED, DriftReport, drift
from recause.validation.gate import TableCheck, check_table, verdict
from recause.validation.report import validation_markdown
from recause.validation.runner import GreatExpectations
from tasks._stage import run_stage

INTERIM_DIR = LAYOUT.interim
VALIDATED_DIR = LAYOUT.validated
QUARANTINE_DIR = LAYOUT.quarantine
SNAPSHOT_DIR = LAYOUT.validation_snapshots
METRICS = LAYOUT.metrics_file("validation")
REPORT = LAYOUT.report("validation")
DATA_DOCS = LAYOUT.reports / "data_docs"
TABLES = ("users", "items", "interactions")  # referenced tables first; bandit logs: ingest_bandit


def build_data_docs(runner: GreatExpectations, directory: Path) -> str:
    """Write Data Docs HTML for every validation of this run; returns the index page URL."""
    site = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory.resolve())},
    }
    runner.context.add_data_docs_site(site_name="recause", site_config=site)
    return runner.context.build_data_docs(site_names=["recause"])["recause"]


def main() -> None:
    REPORT.unlink(missing_ok=True)  # never let a stale report describe this run
    params = load_params().validate_
    now = int(time.time())
    sources_file = INTERIM_DIR / "sources.json"
    sources = json.loads(sources_file.read_text(encoding="utf-8")) if sources_file.exists() else {}
    runner = GreatExpectations()
    checks: dict[str, TableCheck] = {}
    for table in TABLES:
        path = INTERIM_DIR / f"{table}.parquet"
        references = None
        if table == "interactions":
            references = {
                "user_id": checks["users"].accepted["user_id"].tolist(),
                "item_id": checks["items"].accepted["item_id"].tolist(),
            }
        source = f"{path} (from {sources[table]})" if table in sources else str(path)
        frame = read_parquet(path, f"{table} table")
        checks[table] = check_table(table, frame, source, params, now, runner, references)

    drifts: list[DriftReport] = []
    if params.drift.enabled:
        for table in WATCHED:
            snapshot = SNAPSHOT_DIR / f"{table}.parquet"
            if table in checks and snapshot.exists():
                drifts.append(drift(table, checks[table].accepted, pd.read_parquet(snapshot), params.drift))

    blocking, warnings = verdict(checks, drifts, params)
    write_text(REPORT, validation_markdown(checks, drifts, params.mode, blocking))
    try:
        docs = build_data_docs(runner, DATA_DOCS)
        print(f"validate: Data Docs at {docs}")
    except Exception as error:  # noqa: BLE001 - the report must not decide the gate
        print(f"validate: Data Docs could not be built: {error}", file=sys.stderr)
    for message in warnings:
        print(f"warning: {message}", file=sys.stderr)

    if blocking:
        for message in blocking:
            print(f"validation: {message}", file=sys.stderr)
        more = f" (+{len(blocking) - 1} more, see {REPORT})" if len(blocking) > 1 else ""
        raise ValidationFailed(f"{blocking[0]}{more}")

    for directory, frames in ((VALIDATED_DIR, "accepted"), (QUARANTINE_DIR, "rejected")):
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            for table, check in checks.items():
                getattr(check, frames).to_parquet(tmp / f"{table}.parquet", index=False)
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for table, (keys, outcome) in WATCHED.items():
        if table in checks:
            with atomic_path(SNAPSHOT_DIR / f"{table}.parquet") as tmp:
                checks[table].accepted.loc[:, [*keys, outcome]].to_parquet(tmp, index=False)
    summary = {table: check.summary(params.mode == "quarantine") for table, check in checks.items()}
    for report in drifts:
        summary[report.table]["drift"] = report.measures
    write_json(METRICS, summary)
    print(
        "validate: "
        + ", ".join(
            f"{t} {s['evaluated'] - s['quarantined']:,}/{s['evaluated']:,} rows accepted" for t, s in summary.items()
        )
    )


if __name__ == "__main__":
    run_stage(main)
