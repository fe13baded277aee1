"""Which gap the mitigation targets, and whether a setting of the re-ranker meets the target.

Both gaps are on one relative scale: the long-tail exposure gap 1 - APLT / tail interaction share
(``recause.fairness.longtail``) and a user-group gap 1 - min / max of the groups' mean NDCG@k
(``recause.fairness.groups``, small groups pooled). The target is whichever is larger for the plain model; a
setting meets it when it cuts that gap by at least ``gap_reduction`` (0.5: halved) for at most ``max_ndcg_loss``
relative loss of NDCG@k.
"""

from __future__ import annotations

LONG_TAIL = "long_tail"


def largest_group_gap(summaries: dict[str, dict], metric: str) -> tuple[str | None, float]:
    """The attribute whose groups differ most in ``metric`` (relative gap), and that gap; (None, 0) without groups."""
    gaps = {attribute: summary[metric]["relative_gap"] for attribute, summary in summaries.items()}
    if not gaps:
        return None, 0.0
    attribute = max(gaps, key=lambda a: gaps[a])
    return attribute, float(gaps[attribute])


def targeted(long_tail_gap: float, group_attribute: str | None, group_gap: float) -> str:
    """``long_tail``, or the user attribute whose NDCG gap is larger than the long-tail gap."""
    return group_attribute if group_attribute is not None and group_gap > long_tail_gap else LONG_TAIL


def verdict(before: dict, after: dict, gap_reduction: float, max_ndcg_loss: float) -> dict:
    """Did the change from ``before`` to ``after`` (each {"gap", "ndcg"}) meet the target?"""
    loss = 1.0 - after["ndcg"] / before["ndcg"] if before["ndcg"] > 0 else 0.0
    reduction = 1.0 - after["gap"] / before["gap"] if before["gap"] > 0 else 0.0
    return {
        "gap_before": before["gap"],
        "gap_after": after["gap"],
        "gap_reduction": reduction,
        "ndcg_before": before["ndcg"],
        "ndcg_after": after["ndcg"],
        "relative_ndcg_loss": loss,
        "met": bool(reduction >= gap_reduction and loss <= max_ndcg_loss),
    }
