"""Run rules with Great Expectations and return, per rule, which rows broke it.

GX is imported lazily (it costs seconds) and one in-memory context serves every table of a run,
so its Data Docs can show them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from recause.validation.rules import Rule


@dataclass(frozen=True)
class Outcome:
    """A rule's verdict; ``rows`` are the frame's index labels that broke it (None: table-level)."""

    rule: Rule
    success: bool
    rows: list[Any] | None = None
    examples: list[Any] = field(default_factory=list)
    observed: Any = None

    @property
    def count(self) -> int | None:
        return None if self.rows is None else len(self.rows)


class RuleRunner(Protocol):
    """What runs a rule list on a frame: ``GreatExpectations`` for the gate, ``recause.validation.rows.PandasRows``
    for the online intake's small batches."""

    def run(self, name: str, frame: pd.DataFrame, rules: list[Rule]) -> list[Outcome]: ...


class GreatExpectations:
    """An ephemeral GX context that validates data frames against rule lists."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas("recause")
        self._runs: dict[str, int] = {}

    def run(self, name: str, frame: pd.DataFrame, rules: list[Rule]) -> list[Outcome]:
        """Validate ``frame`` (its index labels identify rows) and return one Outcome per rule."""
        if not rules:
            return []
        gx = self._gx
        self._runs[name] = self._runs.get(name, 0) + 1
        if self._runs[name] > 1:  # GX names must be unique within the context
            name = f"{name}-{self._runs[name]}"
        asset = self._source.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe("whole table")
        suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for position, rule in enumerate(rules):
            suite.add_expectation(getattr(gx.expectations, rule.expectation)(**rule.kwargs, meta={"rule": position}))
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
        outcomes: list[Outcome] = []
        for check in result.results:
            rule = rules[int(check.expectation_config.meta["rule"])]
            details = check.result or {}
            rows = details.get("unexpected_index_list")
            if rows is not None:
                rows = [r if not isinstance(r, dict) else r.get("index", r) for r in rows]
            examples = list(details.get("partial_unexpected_list") or [])
            outcomes.append(Outcome(rule, bool(check.success), rows, examples, details.get("observed_value")))
        return sorted(outcomes, key=lambda o: rules.index(o.rule))
