"""The online event intake: a batch is accepted whole or not at all, and an event id is written once even when
two server processes (uvicorn workers) receive it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recause.config import ValidateParams
from recause.online.events import Event, EventIntake, EventsRejected


def _intake(tmp_path: Path) -> EventIntake:
    return EventIntake(
        tmp_path / "incoming", ValidateParams(), ["u1", "u2"], ["i1", "i2"], None, tmp_path / "events.lock"
    )


def _event(event_id: str, **changes: object) -> Event:
    return Event(**{"event_id": event_id, "user_id": "u1", "item_id": "i1", "timestamp": 890_000_000, **changes})


def test_an_event_id_is_written_once_whichever_worker_receives_it(tmp_path: Path) -> None:
    first, second = _intake(tmp_path), _intake(tmp_path)  # two processes' intakes on one folder
    assert first.append([_event("a"), _event("b", item_id="i2")]).accepted == 2
    again = second.append([_event("a"), _event("c", user_id="u2")])
    assert (again.accepted, again.duplicates) == (1, 1)
    assert first.append([_event("c", user_id="u2")]).duplicates == 1
    written = pd.concat(pd.read_csv(p, dtype=str) for p in sorted((tmp_path / "incoming").glob("events-*.csv")))
    assert sorted(written["event_id"]) == ["a", "b", "c"]


def test_one_broken_row_rejects_the_whole_batch_and_writes_nothing(tmp_path: Path) -> None:
    intake = _intake(tmp_path)
    with pytest.raises(EventsRejected, match=r"rating within \[1, 5\]"):
        intake.append([_event("a"), _event("b", rating=7.0)])
    with pytest.raises(EventsRejected, match="item_id exists in items"):
        intake.append([_event("c", item_id="i9")])
    assert not list((tmp_path / "incoming").glob("*.csv"))
    assert intake.append([_event("a")]).accepted == 1  # a rejected id was never taken


def test_missing_rating_and_timestamp_take_the_top_rating_and_the_arrival_time(tmp_path: Path) -> None:
    intake = _intake(tmp_path)
    taken = intake.append([Event(event_id="x", user_id="u1", item_id="i2")])
    row = pd.read_csv(taken.file).iloc[0]
    assert row["rating"] == ValidateParams().rating_max and row["timestamp"] > 1_700_000_000
