"""Recommender models, grouped by family (baselines here; language and joint models join later)."""
