"""recause: a reproducible recommender pipeline that learns why users act."""

__version__ = "0.1.0"
