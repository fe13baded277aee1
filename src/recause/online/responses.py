"""Response bodies from a model's numbers: the shown items with titles and reasons, and one item's explanation.

The reasons are `recause explain`'s (``recause.causal.explain``): the same leave-one-out counterfactual, so the API
and the CLI give the same numbers for the same user, item and model.
"""

from __future__ import annotations

import scipy.sparse as sp

from recause.causal.explain import explain, top_reasons
from recause.online.policy import Shown
from recause.online.state import LiveModel


def recommendation_items(model: LiveModel, shown: Shown, history: sp.csr_matrix | None) -> list[dict]:
    """One dict per shown item (schemas.RecommendedItem); with its top reason when ``history`` is given."""
    served = model.served
    ids, titles = served.items.ids, served.item_titles
    reasons = top_reasons(served.model.score, history, shown.items) if history is not None else None
    found = []
    for position, (item, propensity, score) in enumerate(
        zip(shown.items, shown.propensities, shown.scores, strict=True), 1
    ):
        entry = {
            "position": position,
            "item_id": str(ids[item]),
            "title": str(titles[item]),
            "score": float(score),
            "warm": bool(served.warm[item]),
            "propensity": float(propensity),
            "reason": None,
        }
        if reasons is not None and reasons[position - 1].reason is not None:
            why = reasons[position - 1]
            entry["reason"] = {
                "item_id": str(ids[why.reason]),
                "title": str(titles[why.reason]),
                "score_drop": why.score_drop,
                "rank_without": why.rank_without,
            }
        found.append(entry)
    return found


def explanation_body(
    model: LiveModel, user_id: str, history: sp.csr_matrix, column: int, k: int, n_reasons: int
) -> dict:
    """schemas.Explanation of item ``column`` for one user's ``history`` (what `recause explain --item` prints)."""
    served = model.served
    ids, titles = served.items.ids, served.item_titles
    found = explain(served.model.score, history, column, k, n_reasons)
    return {
        "user_id": user_id,
        "item_id": str(ids[column]),
        "title": str(titles[column]),
        "score": float(found.score),
        "rank": int(found.rank),
        "model": model.name,
        "version": model.version,
        "reasons": [
            {
                "item_id": str(ids[r.item]),
                "title": str(titles[r.item]),
                "score_drop": float(r.score_drop),
                "rank_without": int(r.rank_without),
            }
            for r in found.reasons
        ],
        "rank_without_reasons": int(found.rank_without_reasons),
        "counterfactual_set": [str(ids[c]) for c in found.counterfactual_set],
        "rank_without_set": None if found.rank_without_set is None else int(found.rank_without_set),
    }
