"""The base of every params model (kept apart so feature packages can declare their own sections)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors and values are frozen: a typo never falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
