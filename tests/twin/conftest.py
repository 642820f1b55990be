"""Twin fixtures: a real twin per test, always torn down (its whole process group)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.twin.twinkit import Twin, start_twin, twin_config


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    yield from start_twin(twin_config(tmp_path))
