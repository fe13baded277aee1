"""The rules each canonical table must satisfy, as plain data (Great Expectations runs them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recause.config import ValidateParams
from recause.data.schemas import Tables


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


def table_rules(tables: Tables, params: ValidateParams) -> dict[str, list[Rule]]:
    """The first suite: keys present and unique, ratings in range, references resolvable."""
    known_users = sorted(tables.users["user_id"].astype(str).unique())
    known_items = sorted(tables.items["item_id"].astype(str).unique())
    return {
        "interactions": [
            Rule("ExpectColumnValuesToNotBeNull", {"column": "user_id"}, "user id present"),
            Rule("ExpectColumnValuesToNotBeNull", {"column": "item_id"}, "item id present"),
            Rule("ExpectColumnValuesToNotBeNull", {"column": "rating"}, "rating present"),
            Rule("ExpectColumnValuesToNotBeNull", {"column": "timestamp"}, "timestamp present"),
            Rule(
                "ExpectColumnValuesToBeBetween",
                {"column": "rating", "min_value": params.rating_min, "max_value": params.rating_max},
                f"rating within [{params.rating_min:g}, {params.rating_max:g}]",
            ),
            Rule(
                "ExpectCompoundColumnsToBeUnique",
                {"column_list": ["user_id", "item_id", "timestamp"]},
                "no duplicate (user, item, timestamp) events",
            ),
            Rule(
                "ExpectColumnValuesToBeInSet", {"column": "user_id", "value_set": known_users}, "user exists in users"
            ),
            Rule(
                "ExpectColumnValuesToBeInSet", {"column": "item_id", "value_set": known_items}, "item exists in items"
            ),
        ],
        "items": [
            Rule("ExpectColumnValuesToNotBeNull", {"column": "item_id"}, "item id present"),
            Rule("ExpectColumnValuesToBeUnique", {"column": "item_id"}, "item id unique"),
            Rule("ExpectColumnValuesToNotBeNull", {"column": "text"}, "item text present"),
        ],
        "users": [
            Rule("ExpectColumnValuesToNotBeNull", {"column": "user_id"}, "user id present"),
            Rule("ExpectColumnValuesToBeUnique", {"column": "user_id"}, "user id unique"),
        ],
    }
