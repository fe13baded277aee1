"""Operating recause: scheduled retraining behind a champion/challenger gate, and rollback."""
