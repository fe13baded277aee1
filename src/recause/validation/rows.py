"""The gate's rules on a handful of rows, in pandas: the same ``Rule`` lists as ``GreatExpectations.run``, for
the online intake (`POST /events`), where a GX context (seconds to build, tens of ms per suite) would dominate.

Only the expectations ``recause.validation.rules`` generates are known; any other raises, so a rule added to the
gate can never pass here unchecked. Table-level rules (row counts) judge a whole table, which a request is not:
they pass, and the nightly gate judges the appended table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd

from recause.validation.rules import Rule
from recause.validation.runner import Outcome


def _between(frame: pd.DataFrame, kwargs: dict) -> pd.Series:
    values = pd.to_numeric(frame[kwargs["column"]], errors="coerce")
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    ok = values.notna()
    if low is not None:
        ok &= values > low if kwargs.get("strict_min") else values >= low
    if high is not None:
        ok &= values < high if kwargs.get("strict_max") else values <= high
    return ok | frame[kwargs["column"]].isna()  # GX leaves missing values to the not-null rule


def _lengths_between(frame: pd.DataFrame, kwargs: dict) -> pd.Series:
    lengths = frame[kwargs["column"]].astype("string").str.len()
    return _between(pd.DataFrame({kwargs["column"]: lengths}), kwargs)


def _in_set(frame: pd.DataFrame, kwargs: dict) -> pd.Series:
    column = frame[kwargs["column"]]
    return column.isin(set(kwargs["value_set"])) | column.isna()


def _matches(frame: pd.DataFrame, kwargs: dict) -> pd.Series:
    pattern = re.compile(kwargs["regex"])
    column = frame[kwargs["column"]]
    return column.map(lambda value: bool(pattern.search(str(value)))) | column.isna()


CHECKS: dict[str, Callable[[pd.DataFrame, dict], pd.Series]] = {
    "ExpectColumnValuesToNotBeNull": lambda frame, kwargs: frame[kwargs["column"]].notna(),
    "ExpectColumnValuesToBeUnique": lambda frame, kwargs: ~frame[kwargs["column"]].duplicated(keep=False),
    "ExpectCompoundColumnsToBeUnique": lambda frame, kwargs: ~frame.duplicated(kwargs["column_list"], keep=False),
    "ExpectColumnValuesToBeBetween": _between,
    "ExpectColumnValueLengthsToBeBetween": _lengths_between,
    "ExpectColumnValuesToBeInSet": _in_set,
    "ExpectColumnValuesToMatchRegex": _matches,
}
TABLE_LEVEL = {"ExpectTableRowCountToBeBetween"}


class PandasRows:
    """A rule runner with ``GreatExpectations.run``'s signature and outcomes, for small frames."""

    def run(self, name: str, frame: pd.DataFrame, rules: list[Rule]) -> list[Outcome]:
        outcomes = []
        for rule in rules:
            if rule.expectation in TABLE_LEVEL:
                outcomes.append(Outcome(rule, True, None))
                continue
            if rule.expectation not in CHECKS:
                raise NotImplementedError(f"{name}: no row check for the gate's rule {rule.expectation}")
            ok = CHECKS[rule.expectation](frame, rule.kwargs).to_numpy(dtype=bool)
            broken = frame.index[~ok].tolist()
            examples = frame.loc[broken, rule.column.split(",")[0]].tolist()[:20] if broken else []
            outcomes.append(Outcome(rule, not broken, broken, examples))
        return outcomes
