"""The model a server answers with, and its hot swap.

``ModelHolder.current`` is one immutable ``LiveModel``; a request reads it once and uses that object to the end,
so a swap (one reference assignment) never mixes two models in one response. ``refresh`` looks at what names the
model (``models/champion.json``, or the fixed name given) and the saved model file; when either changed since the
last load it loads the new model completely, then swaps. A model that fails to load leaves the old one serving.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recause.errors import RecauseError
from recause.layout import LAYOUT
from recause.serving import EXPLAINABLE, Served, champion, load_served, model_location
from recause.training.digest import file_digest

if TYPE_CHECKING:
    from recause.config.fairness import FairnessParams


@dataclass(frozen=True)
class LiveModel:
    served: Served
    name: str
    version: str  # name@<first 12 hex of the model file's digest (recause.training.digest.file_digest)>
    popularity: np.ndarray  # per item, its known events: the cold-start ranking
    explainable: bool  # the list is a function of the history: fold-in and reasons work


class ModelHolder:
    """Holds the served model of the workspace at ``root``: ``model`` by name, or the champion (None); with the
    long-tail re-ranker when ``fairness.rerank.served``."""

    def __init__(self, root: Path, model: str | None = None, fairness: FairnessParams | None = None) -> None:
        self.root = root
        self.fixed = model
        self.fairness = fairness
        self.current: LiveModel | None = None
        self.last_error: str | None = None
        self._signature: tuple | None = None
        self._lock = threading.Lock()  # one load at a time

    def _name(self) -> str:
        return self.fixed or champion(self.root)

    def _signature_now(self) -> tuple[str, Path, bytes, tuple]:
        """The model's name and folder, what named it, and its files' (name, mtime, size)."""
        champion_file = LAYOUT.under(self.root).champion
        named = champion_file.read_bytes() if self.fixed is None and champion_file.exists() else b""
        name = self._name()
        folder, _ = model_location(LAYOUT.under(self.root), name)
        stats = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob(f"{name}.*")))
        return name, folder, named, stats

    def refresh(self) -> bool:
        """Load the model when what names it or its file changed; True when a new model went live."""
        with self._lock:
            try:
                signature = self._signature_now()
                if signature == self._signature:
                    return False
                name, folder = signature[:2]
                served = load_served(self.root, name, self.fairness)
                version = f"{name}@{file_digest(folder / f'{name}.safetensors')[:12]}"
            except (RecauseError, OSError, ValueError, KeyError) as error:
                self.last_error = str(error).splitlines()[0] if str(error) else type(error).__name__
                return False
            popularity = np.asarray(served.history.sum(axis=0), dtype=np.float64).ravel()
            self.current = LiveModel(served, name, version, popularity, name in EXPLAINABLE)
            self._signature, self.last_error = signature, None
            return True
