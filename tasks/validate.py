"""Stage `validate`: the gate. Any broken rule stops the pipeline; nothing downstream runs."""

from __future__ import annotations

import sys
from pathlib import Path

from recause.data.schemas import Tables
from recause.errors import ValidationFailed
from recause.validation.rules import table_rules
from recause.validation.runner import validate_table
from tasks._io import load_params, read_parquet, run_stage, write_json

INTERIM_DIR = Path("data/interim")
REPORT = Path("metrics/validation.json")


def main() -> None:
    params = load_params()
    tables = Tables(
        **{
            name: read_parquet(INTERIM_DIR / f"{name}.parquet", f"{name} table")
            for name in ("interactions", "items", "users")
        }
    )
    rules = table_rules(tables, params.validate_)
    reports = [validate_table(name, getattr(tables, name), table_rules_) for name, table_rules_ in rules.items()]
    failures = [line for report in reports for line in report.failures]
    for line in failures:
        print(f"validation: {line}", file=sys.stderr)
    if failures:
        # The report of the last good run stays untouched: only a passing run writes it.
        raise ValidationFailed(f"{len(failures)} rule(s) failed; first: {failures[0]}")
    write_json(REPORT, {report.table: report.summary() for report in reports})
    print("validate: " + ", ".join(f"{r.table} ok ({r.evaluated:,} rows)" for r in reports))


if __name__ == "__main__":
    run_stage(main)
