"""Telemetry fixtures: a real DuckDB file under tmp_path, opened through the public API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samantha.core.clock import REAL_CLOCK
from samantha.core.config import SamanthaConfig
from samantha.telemetry import TelemetryStore


@pytest.fixture
def store(config: SamanthaConfig) -> Iterator[TelemetryStore]:
    s = TelemetryStore.open(config, REAL_CLOCK)
    try:
        yield s
    finally:
        s.close()
