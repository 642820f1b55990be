"""Verification gates: specs, statistics, evaluation over the telemetry store, rollout judge."""
