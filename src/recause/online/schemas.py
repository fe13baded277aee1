"""Request and response bodies of the HTTP API (they are its OpenAPI schema; `/docs` renders them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recause.online.events import ID, Event


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(Strict):
    """The history item without which the recommended item's score drops most (as `recause explain` prints)."""

    item_id: str
    title: str
    score_drop: float
    rank_without: int


class RecommendedItem(Strict):
    position: int = Field(ge=1)
    item_id: str
    title: str
    score: float
    warm: bool = Field(description="The item has training events (else the model knows it from its content only).")
    propensity: float = Field(gt=0, le=1, description="Probability the serving policy shows this item here.")
    reason: Reason | None = None


class Recommendations(Strict):
    user_id: str
    known_user: bool
    cold_start: bool = Field(description="The user is unknown: the most popular items are shown.")
    model: str
    version: str
    policy: str
    request_id: str
    items: list[RecommendedItem]


class FoldIn(Strict):
    """A user the model has not seen, described by the items they liked; scored now, not looked up."""

    liked: list[str] = Field(min_length=1, description="Item ids the user liked (unknown ids are a 422).")
    k: int | None = Field(default=None, ge=1)
    explain: bool = False
    request_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=ID)


class ExplanationReason(Strict):
    item_id: str
    title: str
    score_drop: float
    rank_without: int


class Explanation(Strict):
    user_id: str
    item_id: str
    title: str
    score: float
    rank: int
    model: str
    version: str
    reasons: list[ExplanationReason]
    rank_without_reasons: int
    counterfactual_set: list[str] = Field(description="Without these history items it leaves the top k.")
    rank_without_set: int | None


class EventBatch(Strict):
    events: list[Event] = Field(min_length=1)


class EventsAccepted(Strict):
    accepted: int
    duplicates: int


class Problem(Strict):
    detail: str


class Health(Strict):
    status: str


class Readiness(Strict):
    ready: bool
    model: str | None
    version: str | None
    detail: str | None = None
