"""New interactions over HTTP (`POST /events`): checked by the gate's own rules, appended atomically to
``data/incoming/`` (where `ingest` picks them up on the next retraining), idempotent by event id.

A batch is accepted whole or not at all: one broken row rejects it with the gate's message for each broken rule.
Each accepted batch becomes one CSV file, written beside its final name and renamed into place, so a crash never
leaves half a file for `ingest` to read. A file lock (in the workspace's state folder) serialises the check-and-write of every server
process, so an event id is written once however many workers receive it. Events keep the raw user id, as every file in ``data/incoming/`` does
(`ingest` pseudonymises them with the rest); the check against the known users uses the pseudonym.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field

from recause.config.validate import ValidateParams
from recause.data.pseudonym import pseudonymise_ids
from recause.validation.gate import check_table
from recause.validation.rows import PandasRows

ID = r"^[A-Za-z0-9._:@-]+$"
FILE_COLUMNS = ["user_id", "item_id", "rating", "timestamp", "event_id", "request_id"]


class Event(BaseModel):
    """One interaction. ``rating`` absent: the gate's highest rating (an implicit positive); ``timestamp``
    absent: the time it arrives; ``request_id``: the response that showed the item (joins the exposure log)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128, pattern=ID)
    user_id: str = Field(min_length=1, max_length=128, pattern=ID)
    item_id: str = Field(min_length=1, max_length=128, pattern=ID)
    rating: float | None = Field(default=None, allow_inf_nan=False)
    timestamp: int | None = Field(default=None, ge=0, le=2**62)
    request_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=ID)


class EventsRejected(ValueError):
    """A batch broke the gate's rules; the message names each broken rule and an example."""


@dataclass(frozen=True)
class Intake:
    accepted: int
    duplicates: int
    file: str | None


class EventIntake:
    """Checks and appends event batches to ``directory``; remembers every event id written there."""

    def __init__(
        self,
        directory: Path,
        rules: ValidateParams,
        users: list[str],
        items: list[str],
        key: bytes | None,
        lock: Path,
    ) -> None:
        self.directory = directory
        self.lock = lock  # outside ``directory``: the retrain flow fingerprints every file there
        self.rules = rules
        self.references = {"user_id": users, "item_id": items}
        self.key = key
        self._lock = threading.Lock()  # threads of this process
        self._counter = itertools.count()
        self._seen: set[str] = set()
        self._read: set[str] = set()  # event files whose ids are in _seen

    def _catch_up(self) -> None:
        """Add the ids of event files written since the last look (by any process: uvicorn's workers share the
        folder), so an id is accepted once whichever worker receives it."""
        files = sorted(self.directory.glob("events-*.csv")) if self.directory.exists() else []
        for path in files:
            if path.name not in self._read:
                self._seen.update(pd.read_csv(path, usecols=["event_id"], dtype=str)["event_id"].astype(str))
                self._read.add(path.name)

    def _frame(self, events: list[Event]) -> pd.DataFrame:
        now = int(time.time())
        rows = [
            {
                **event.model_dump(),
                "rating": self.rules.rating_max if event.rating is None else event.rating,
                "timestamp": now if event.timestamp is None else event.timestamp,
            }
            for event in events
        ]
        return pd.DataFrame(rows, columns=FILE_COLUMNS)

    def check(self, frame: pd.DataFrame) -> None:
        """Raise EventsRejected unless every row passes the gate's interaction rules."""
        checked = frame[["user_id", "item_id", "rating", "timestamp"]].copy()
        if self.key is not None:
            checked["user_id"] = pseudonymise_ids(checked["user_id"], self.key)
        result = check_table(
            "interactions", checked, "events", self.rules, int(time.time()), PandasRows(), self.references
        )
        if result.failures:
            raise EventsRejected("; ".join(result.failures))

    def append(self, events: list[Event]) -> Intake:
        """Write the batch's new events (first of each id) as one file; ids already written are skipped."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, FileLock(self.lock):
            self._catch_up()
            fresh, ids = [], set()
            for event in events:
                if event.event_id not in self._seen and event.event_id not in ids:
                    fresh.append(event)
                    ids.add(event.event_id)
            if not fresh:
                return Intake(0, len(events), None)
            frame = self._frame(fresh)
            self.check(frame)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            path = self.directory / f"events-{stamp}-{os.getpid()}-{next(self._counter)}.csv"
            partial = path.with_name(f".{path.name}.partial")
            frame.to_csv(partial, index=False)
            os.replace(partial, path)
            self._seen |= ids
            self._read.add(path.name)
            return Intake(len(fresh), len(events) - len(fresh), str(path))
