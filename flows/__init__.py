"""Prefect wiring: flows that run the DVC stages, one Prefect task per stage. No pipeline logic lives here."""
