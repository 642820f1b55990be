"""Shared fixtures. Real parts: tmp DuckDB files, real processes, loopback HTTP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from samantha.clock import SimClock
from samantha.config import SamanthaConfig


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock(start=1_800_000_000.0)


@pytest.fixture
def config(tmp_path: Path) -> SamanthaConfig:
    return SamanthaConfig(data_dir=str(tmp_path / "state"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
