"""Data: table schemas, ingestion helpers, pseudonymisation, splitting and matrices."""
