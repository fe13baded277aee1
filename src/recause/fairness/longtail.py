"""Long-tail exposure of top-k lists: the short head, APLT and ACLT.

The short head is the most popular items (train interactions) that together hold ``head_share`` of the train
interactions; every other item (never-seen ones included) is the long tail. With ``head_share`` 0.2 this is the
head group H of Abdollahpouri et al., "User-centered evaluation of popularity bias in recommender systems" (UMAP
2021), whose tail here is their M and T groups together.

APLT and ACLT are those of Abdollahpouri, Burke & Mobasher, "Managing popularity bias in recommender systems with
personalized re-ranking" (FLAIRS 2019): over the users' lists L_u,

    APLT = mean_u |L_u ∩ T| / |L_u|      (average percentage of long-tail items)
    ACLT = mean_u |L_u ∩ T|              (average coverage of long-tail items)

The exposure gap compares APLT with the tail's share of the train interactions, ``1 - APLT / share``: 0 when tail
items fill the lists in proportion to the interactions they get, 1 when the lists hold none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def short_head(counts: np.ndarray, head_share: float) -> np.ndarray:
    """Per item: in the short head, the fewest most-popular items (ties to the lower index) whose train
    interactions reach ``head_share`` of all of them."""
    counts = np.asarray(counts, dtype=np.float64)
    if not 0.0 < head_share < 1.0:
        raise ValueError(f"head_share must be in (0, 1), got {head_share}")
    if counts.ndim != 1 or counts.sum() <= 0:
        raise ValueError("counts must be one non-negative count per item, with at least one interaction")
    order = np.argsort(-counts, kind="stable")
    cumulative = np.cumsum(counts[order]) / counts.sum()
    n_head = int(np.searchsorted(cumulative, head_share, side="left")) + 1
    head = np.zeros(len(counts), dtype=bool)
    head[order[:n_head]] = True
    return head


@dataclass(frozen=True)
class TailExposure:
    aplt: float  # mean share of long-tail items per list
    aclt: float  # mean number of long-tail items per list
    catalogue_share: float  # the tail's share of the catalogue
    interaction_share: float  # the tail's share of the train interactions

    @property
    def gap(self) -> float:
        """``1 - APLT / interaction_share``: how far the lists under-expose the tail (0: in proportion)."""
        return 1.0 - self.aplt / self.interaction_share if self.interaction_share > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "gap": self.gap}


def tail_exposure(top: np.ndarray, tail: np.ndarray, counts: np.ndarray) -> TailExposure:
    """APLT and ACLT of the lists ``top`` (n_users, k item indices, -1 pads) for the ``tail`` items, with the
    tail's shares of the catalogue and of the train ``counts``."""
    tail, counts = np.asarray(tail, dtype=bool), np.asarray(counts, dtype=np.float64)
    if tail.shape != counts.shape:
        raise ValueError(f"tail has shape {tail.shape}, counts {counts.shape}: one value per item each")
    listed = top >= 0
    in_tail = (tail[np.clip(top, 0, None)] & listed).sum(axis=1)
    lengths = listed.sum(axis=1)
    shares = np.divide(in_tail, lengths, out=np.zeros(len(top)), where=lengths > 0)
    n_users = max(len(top), 1)
    return TailExposure(
        aplt=float(shares.sum() / n_users),
        aclt=float(in_tail.sum() / n_users),
        catalogue_share=float(tail.mean()),
        interaction_share=float(counts[tail].sum() / max(counts.sum(), 1.0)),
    )
