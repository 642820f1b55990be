"""The DuckDB telemetry store: schema, write buffer with group commit, retention, window queries, ingest."""

from samantha.telemetry.store import SampleBatch, TelemetryStore
from samantha.telemetry.validation import IngestResult, Reject

__all__ = ["IngestResult", "Reject", "SampleBatch", "TelemetryStore"]
