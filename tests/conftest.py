"""Shared fixtures. Real parts: tmp DuckDB files, real processes, loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from samantha.core.clock import SimClock
from samantha.core.config import SamanthaConfig
from samantha.core.ports import free_port as free_port  # tests import it from here


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock(start=1_800_000_000.0)


@pytest.fixture
def config(tmp_path: Path) -> SamanthaConfig:
    return SamanthaConfig(data_dir=str(tmp_path / "state"))
