"""Fairness of the recommendations: accuracy by user group, long-tail exposure, counterfactual flips of user
features, and the long-tail re-ranker that mitigates the exposure gap (pure functions; the `fairness` stage reads
and writes)."""

from recause.fairness.longtail import TailExposure, short_head, tail_exposure
from recause.fairness.rerank import TailReranker, rerank_candidates

__all__ = ["TailExposure", "TailReranker", "rerank_candidates", "short_head", "tail_exposure"]
