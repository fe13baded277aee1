"""The exposure log: every item a response showed, at which position, with the serving policy's propensity.

It is logged bandit feedback in the schema the OPE stage reads (``recause.ope.logs``: round, timestamp, item_id,
position 1-based, propensity_score), plus who saw it (the user's pseudonym, never a raw id), the policy and the
model version. Clicks arrive later as events (`POST /events` with the response's ``request_id``); ``logged_rounds``
joins the two and hands them, with any other policy's marginals, to ``recause.ope.estimators``.

Each server process appends JSON lines to a file of its own (no lock across processes), flushed per response.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from recause.ope.estimators import LoggedRounds

COLUMNS = ["round", "timestamp", "user_id", "item_id", "position", "propensity_score", "policy", "model"]


class ExposureLog:
    """Appends responses to ``directory``/exposure-<start>-<pid>.jsonl; thread-safe."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.path = directory / f"exposure-{started}-{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self._file = self.path.open("ab")

    def append(
        self, round_id: str, user: str, items: list[str], propensities: list[float], policy: str, model: str
    ) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        lines = b"".join(
            orjson.dumps(
                dict(zip(COLUMNS, (round_id, stamp, user, item, position, propensity, policy, model), strict=True))
            )
            + b"\n"
            for position, (item, propensity) in enumerate(zip(items, propensities, strict=True), start=1)
        )
        with self._lock:
            self._file.write(lines)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_exposure(directory: Path) -> pd.DataFrame:
    """Every exposure file under ``directory`` as one frame (COLUMNS), in file then line order."""
    frames = [pd.read_json(path, lines=True, dtype=False) for path in sorted(directory.glob("exposure-*.jsonl"))]
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)


def logged_rounds(
    exposure: pd.DataFrame,
    clicks: pd.DataFrame,
    item_ids: np.ndarray,
    target: Callable[[str], np.ndarray],
) -> LoggedRounds:
    """One logged round per shown item: reward 1 when ``clicks`` (round, item_id) names it, the logged
    propensity, and ``target(user_id)``: the evaluated policy's (positions, items) probabilities of showing each of
    ``item_ids`` at each position to that user (its marginals, e.g. ``recause.online.policy.marginals``)."""
    column = pd.Index(np.asarray(item_ids, dtype=str)).get_indexer(exposure["item_id"].astype(str))
    if (column < 0).any():
        raise ValueError(f"{int((column < 0).sum())} logged item(s) are not in the catalogue given")
    clicked = set(zip(clicks["round"].astype(str), clicks["item_id"].astype(str), strict=True))
    reward = np.array(
        [(r, i) in clicked for r, i in zip(exposure["round"].astype(str), exposure["item_id"].astype(str), strict=True)]
    )
    cache: dict[str, np.ndarray] = {}
    dist = np.zeros((len(exposure), len(item_ids)))
    for row, (user, position) in enumerate(
        zip(exposure["user_id"].astype(str), exposure["position"].astype(int), strict=True)
    ):
        if user not in cache:
            cache[user] = target(user)
        marginals = cache[user]
        dist[row] = marginals[position - 1] if position - 1 < len(marginals) else 0.0
    return LoggedRounds(column, reward.astype(float), exposure["propensity_score"].to_numpy(float), dist)


def read_clicks(directory: Path) -> pd.DataFrame:
    """(round, item_id) of every event under ``directory`` (``events-*.csv``, as `POST /events` writes them) that
    names the response which showed the item (its ``request_id``)."""
    frames = [pd.read_csv(path, dtype=str) for path in sorted(directory.glob("events-*.csv"))]
    frames = [frame[frame["request_id"].notna()] for frame in frames if "request_id" in frame]
    if not frames:
        return pd.DataFrame(columns=["round", "item_id"])
    return pd.concat(frames, ignore_index=True).rename(columns={"request_id": "round"})[["round", "item_id"]]
