"""Prefect wiring: flows that run the DVC stages as tasks. No pipeline logic lives here."""
