"""Run rules with Great Expectations (imported lazily: it costs seconds) and summarise the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recause.validation.rules import Rule

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class TableReport:
    table: str
    success: bool
    evaluated: int  # rows checked
    failed: int  # rules that did not hold
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"success": self.success, "evaluated": self.evaluated, "failed": self.failed}


def _failure_message(table: str, rule: Rule, result: dict[str, Any]) -> str:
    count = result.get("unexpected_count")
    examples = list(result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]
    where = f"{table}.{rule.column}" if rule.column else table
    broke = f"{count:,} row(s) break it" if count is not None else "it does not hold"
    shown = f"; e.g. {examples}" if examples else ""
    return f"{where}: rule '{rule.label or rule.expectation}' failed: {broke}{shown}"


def validate_table(table: str, frame: pd.DataFrame, rules: list[Rule]) -> TableReport:
    """Validate one table against its rules in an in-memory GX context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(f"{table}_source").add_dataframe_asset(name=table)
    batch = asset.add_batch_definition_whole_dataframe(f"{table}_batch")
    suite = gx.ExpectationSuite(name=f"{table}_suite")
    for position, rule in enumerate(rules):
        expectation = getattr(gx.expectations, rule.expectation)(**rule.kwargs, meta={"rule": position})
        suite.add_expectation(expectation)
    suite = context.suites.add(suite)
    run = gx.ValidationDefinition(name=f"{table}_validation", data=batch, suite=suite).run(
        batch_parameters={"dataframe": frame}
    )
    failures = [
        _failure_message(table, rules[int(outcome.expectation_config.meta["rule"])], outcome.result or {})
        for outcome in run.results
        if not outcome.success
    ]
    return TableReport(table, bool(run.success), evaluated=len(frame), failed=len(failures), failures=failures)
