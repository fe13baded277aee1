"""Drift of a table against its last accepted snapshot: new keys and distribution shift (PSI)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.config.validate import DriftParams

_EPSILON = 1e-6
_MAX_CATEGORIES = 20
_QUANTILE_BINS = 10

#: What drift watches per table: key columns whose new values are counted, and the outcome column.
WATCHED = {"interactions": (("user_id", "item_id"), "rating"), "bandit": ((), "click")}


def psi(expected: pd.Series, actual: pd.Series) -> float:
    """Population stability index: sum (a - e) ln(a / e) over categories (or quantile bins)."""
    expected, actual = expected.dropna(), actual.dropna()
    if expected.empty or actual.empty:
        return 0.0
    if expected.nunique() > _MAX_CATEGORIES:
        edges = np.unique(np.quantile(expected, np.linspace(0, 1, _QUANTILE_BINS + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        expected, actual = pd.cut(expected, edges), pd.cut(actual, edges)
    categories = sorted(set(expected.unique()) | set(actual.unique()), key=str)
    e = expected.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy() + _EPSILON
    a = actual.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy() + _EPSILON
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class DriftReport:
    table: str
    measures: dict[str, float]
    breaches: list[str]


def drift(table: str, current: pd.DataFrame, snapshot: pd.DataFrame, params: DriftParams) -> DriftReport:
    """Measure drift of ``current`` against ``snapshot`` and list the thresholds it breaks."""
    keys, outcome = WATCHED[table]
    measures: dict[str, float] = {}
    breaches: list[str] = []
    limits = {"user_id": params.max_new_user_share, "item_id": params.max_new_item_share}
    for key in keys:
        seen = set(snapshot[key].dropna())
        distinct = current[key].dropna().unique()
        share = float(np.mean([value not in seen for value in distinct])) if len(distinct) else 0.0
        measures[f"new_{key.removesuffix('_id')}_share"] = round(share, 6)
        if share > limits[key]:
            breaches.append(f"{share:.1%} of {key} values are new (limit {limits[key]:.0%})")
    value = psi(snapshot[outcome], current[outcome])
    measures[f"psi_{outcome}"] = round(value, 6)
    if value > params.max_psi:
        breaches.append(f"{outcome} distribution shifted: PSI {value:.3f} (limit {params.max_psi:g})")
    return DriftReport(table, measures, breaches)
