"""The rules each table must satisfy, generated from its typed schema and ``validate`` params.

Rules are plain data (a Great Expectations expectation name, its arguments, a label a person can
read); ``recause.validation.runner`` runs them. Type rules come first and alone: value rules only
make sense on rows whose values have the right type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from recause.config.validate import ValidateParams
from recause.data.schemas import SCHEMAS, TableSchema

NUMBER = r"^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$"
INTEGER = r"^\s*[-+]?\d+\s*$"
DATETIME = r"^\s*\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?\s*$"
TYPE_PATTERNS = {"float": (NUMBER, "a number"), "int": (INTEGER, "an integer"), "datetime": (DATETIME, "a date/time")}


@dataclass(frozen=True)
class Rule:
    """One expectation: the GX expectation class name, its keyword arguments, and a plain label."""

    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def column(self) -> str:
        columns = self.kwargs.get("column") or self.kwargs.get("column_list") or []
        return columns if isinstance(columns, str) else ",".join(columns)


def _is_text(values: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(values)


def type_rules(schema: TableSchema, frame: pd.DataFrame) -> list[Rule]:
    """Numbers, integers and dates that arrived as text: each value must look like one."""
    rules = []
    for column in schema.columns:
        if column.kind in TYPE_PATTERNS and _is_text(frame[column.name]):
            pattern, what = TYPE_PATTERNS[column.kind]
            rules.append(
                Rule(
                    "ExpectColumnValuesToMatchRegex",
                    {"column": column.name, "regex": pattern},
                    f"{column.name} is {what}",
                )
            )
    return rules


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d")


def value_rules(
    schema: TableSchema,
    params: ValidateParams,
    now: int,
    references: dict[str, list[str]] | None = None,
) -> list[Rule]:
    """Value rules for a table whose columns already have their schema's types.

    ``references`` maps a column to the ids it must come from (e.g. interactions.user_id -> the
    accepted users); ``now`` (epoch seconds) bounds timestamps so none lies in the future.
    """
    rules = [
        Rule("ExpectColumnValuesToNotBeNull", {"column": c.name}, f"{c.name} present")
        for c in schema.columns
        if not c.nullable
    ]
    if schema.key:
        rules.append(Rule("ExpectColumnValuesToBeUnique", {"column": schema.key}, f"{schema.key} unique"))
    if schema.unique_together:
        columns = list(schema.unique_together)
        rules.append(
            Rule(
                "ExpectCompoundColumnsToBeUnique", {"column_list": columns}, f"no duplicate ({', '.join(columns)}) rows"
            )
        )

    latest = now + params.future_tolerance_s
    for column in schema.columns:
        if column.name == "timestamp":
            rules.append(
                Rule(
                    "ExpectColumnValuesToBeBetween",
                    {"column": "timestamp", "min_value": params.timestamp_min, "max_value": latest},
                    f"timestamp within [{_when(params.timestamp_min)}, now] (not in the future)",
                )
            )
    by_table: dict[str, list[Rule]] = {
        "interactions": [
            Rule(
                "ExpectColumnValuesToBeBetween",
                {"column": "rating", "min_value": params.rating_min, "max_value": params.rating_max},
                f"rating within [{params.rating_min:g}, {params.rating_max:g}]",
            )
        ],
        "items": [
            Rule(
                "ExpectColumnValueLengthsToBeBetween",
                {"column": "text", "min_value": params.text_min_chars, "max_value": params.text_max_chars},
                f"item text of {params.text_min_chars}..{params.text_max_chars} characters",
            ),
            Rule(
                "ExpectColumnValuesToBeBetween",
                {"column": "year", "min_value": 1870, "max_value": datetime.fromtimestamp(latest, tz=UTC).year + 1},
                "year plausible",
            ),
        ],
        "users": [
            Rule(
                "ExpectColumnValuesToBeBetween",
                {"column": "age", "min_value": 0, "max_value": 120},
                "age within [0, 120]",
            )
        ],
        "bandit": [
            Rule(
                "ExpectColumnValuesToBeBetween",
                {"column": "propensity_score", "min_value": 0.0, "max_value": 1.0, "strict_min": True},
                "propensity in (0, 1]",
            ),
            Rule("ExpectColumnValuesToBeInSet", {"column": "click", "value_set": [0, 1]}, "click in {0, 1}"),
            Rule(
                "ExpectColumnValuesToBeBetween",
                {"column": "position", "min_value": 1, "max_value": params.bandit_positions},
                f"position within 1..{params.bandit_positions}",
            ),
        ],
    }
    rules += by_table.get(schema.name, [])
    for target, allowed in params.value_sets.items():
        table, _, column = target.partition(".")
        if table == schema.name and column in schema.names:
            rules.append(
                Rule(
                    "ExpectColumnValuesToBeInSet",
                    {"column": column, "value_set": list(allowed)},
                    f"{column} in {target} value set",
                )
            )
    for column, known in (references or {}).items():
        owner = "users" if column == "user_id" else "items"
        rules.append(
            Rule(
                "ExpectColumnValuesToBeInSet",
                {"column": column, "value_set": list(known)},
                f"{column} exists in {owner}",
            )
        )
    bounds = params.row_counts.get(schema.name)
    if bounds is not None:
        label = f"row count within [{bounds.min}, {bounds.max if bounds.max is not None else 'any'}]"
        rules.append(Rule("ExpectTableRowCountToBeBetween", {"min_value": bounds.min, "max_value": bounds.max}, label))
    return rules


def schema_of(table: str) -> TableSchema:
    if table not in SCHEMAS:
        raise KeyError(f"unknown table '{table}'; known: {', '.join(SCHEMAS)}")
    return SCHEMAS[table]
