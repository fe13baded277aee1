"""Params of `validate`: the data gate's rules and drift limits.

What each field means is in ``recause.config.descriptions`` (so rewording one re-runs no stage).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.config.base import StrictModel


class RowCountBounds(StrictModel):
    min: int = Field(default=1, ge=0)
    max: int | None = Field(default=None, ge=1)


ML100K_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
    "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip


class DriftParams(StrictModel):
    """Drift against the last accepted snapshot of a table (none on the first run)."""

    enabled: bool = True
    on_breach: Literal["fail", "warn"] = "fail"
    max_new_user_share: float = Field(default=0.5, ge=0.0, le=1.0)
    max_new_item_share: float = Field(default=0.5, ge=0.0, le=1.0)
    max_psi: float = Field(default=0.2, gt=0.0)


class ValidateParams(StrictModel):
    mode: Literal["fail", "quarantine"] = "fail"
    rating_min: float = 1.0
    rating_max: float = 5.0
    timestamp_min: int = 631_152_000
    future_tolerance_s: int = Field(default=86_400, ge=0)
    text_min_chars: int = Field(default=1, ge=0)
    text_max_chars: int = Field(default=2_000, ge=1)
    bandit_positions: int = Field(default=3, ge=1)
    row_counts: dict[str, RowCountBounds] = Field(
        default_factory=lambda: {t: RowCountBounds() for t in ("interactions", "items", "users", "bandit")}
    )
    value_sets: dict[str, list[str]] = Field(
        default_factory=lambda: {"users.gender": ["M", "F"], "users.occupation": list(ML100K_OCCUPATIONS)}
    )
    drift: DriftParams = DriftParams()
