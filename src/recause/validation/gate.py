"""The gate for one table: type rules, then value rules on the rows whose types are right.

Every broken rule becomes one message naming the file, the column, the rule, how many rows broke
it and up to five examples. Rows that broke any row-level rule are set apart (for quarantine),
each with the rules it broke; a broken table-level rule (e.g. row count) cannot be quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recause.config.validate import ValidateParams
from recause.data.schemas import coerce, finalise
from recause.validation.drift import DriftReport
from recause.validation.rules import schema_of, type_rules, value_rules
from recause.validation.runner import Outcome, RuleRunner

MAX_EXAMPLES = 5


@dataclass
class TableCheck:
    table: str
    source: str
    evaluated: int
    failures: list[str] = field(default_factory=list)
    table_level_failures: list[str] = field(default_factory=list)
    accepted: pd.DataFrame = field(default_factory=pd.DataFrame)
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def success(self) -> bool:
        return not self.failures

    def summary(self, quarantined: bool) -> dict[str, Any]:
        return {
            "success": self.success,
            "evaluated": self.evaluated,
            "failed": len(self.rejected),
            "quarantined": len(self.rejected) if quarantined else 0,
        }


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "null"
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 60 else text[:57] + "..."


def failure_message(source: str, outcome: Outcome) -> str:
    rule = outcome.rule
    where = f"{source}: column '{rule.column}'" if rule.column else source
    if outcome.rows is None:
        return f"{where}: rule '{rule.label}' broken (observed {outcome.observed!r})"
    examples = ", ".join(_shown(v) for v in outcome.examples[:MAX_EXAMPLES])
    return f"{where}: rule '{rule.label}' broken by {outcome.count:,} row(s); e.g. [{examples}]"


def check_table(
    table: str,
    frame: pd.DataFrame,
    source: str,
    params: ValidateParams,
    now: int,
    runner: RuleRunner,
    references: dict[str, list[str]] | None = None,
) -> TableCheck:
    """Validate one table; ``accepted`` holds the rows that broke nothing, in strict dtypes."""
    schema = schema_of(table)
    frame = frame.reset_index(drop=True)
    check = TableCheck(table=table, source=source, evaluated=len(frame))
    broken: dict[Any, list[str]] = {}

    def record(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.success:
                continue
            message = failure_message(source, outcome)
            check.failures.append(message)
            if outcome.rows is None:
                check.table_level_failures.append(message)
            for row in outcome.rows or []:
                broken.setdefault(row, []).append(outcome.rule.label)

    record(runner.run(f"{table}-types", frame, type_rules(schema, frame)))
    typed = coerce(frame.drop(index=list(broken)), schema)
    record(runner.run(f"{table}-values", typed, value_rules(schema, params, now, references)))

    check.accepted = finalise(typed.drop(index=[r for r in broken if r in typed.index]), schema).reset_index(drop=True)
    rows = sorted(broken)
    check.rejected = (
        frame.loc[rows]
        .assign(row=rows, broken_rules=["; ".join(dict.fromkeys(broken[r])) for r in rows])
        .reset_index(drop=True)
    )
    return check


def verdict(
    checks: dict[str, TableCheck], drifts: list[DriftReport], params: ValidateParams
) -> tuple[list[str], list[str]]:
    """(blocking, warnings): what stops the pipeline and what is only reported.

    In ``fail`` mode every broken rule blocks; in ``quarantine`` mode only table-level ones do
    (rows can be set apart, a wrong table cannot). Drift breaches block or warn per
    ``drift.on_breach``.
    """
    quarantine = params.mode == "quarantine"
    blocking = [m for c in checks.values() for m in (c.table_level_failures if quarantine else c.failures)]
    breaches = [f"{d.table}: drift: {b}" for d in drifts for b in d.breaches]
    if params.drift.on_breach == "fail":
        return blocking + breaches, []
    return blocking, breaches
