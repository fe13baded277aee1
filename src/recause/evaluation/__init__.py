"""Evaluation: full-ranking top-K and ranking metrics (one implementation of each)."""
