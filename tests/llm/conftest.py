"""The real default model through real llama.cpp, loaded once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from samantha.core.config import LlmConfig
from samantha.llm.engine import LlmEngine
from samantha.llm.records import LlmCallRecord


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[LlmCallRecord] = []

    def __call__(self, record: LlmCallRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="session")
def llm_sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory, llm_sink: RecordingSink) -> Iterator[LlmEngine]:
    # generous timeout: the 2 cores are shared with other test suites
    eng = LlmEngine(LlmConfig(timeout_s=90), data_dir=tmp_path_factory.mktemp("llm-state"), sink=llm_sink)
    status = eng.start()
    assert status.available, status.error
    try:
        yield eng
    finally:
        eng.close()


def make_engine(tmp_path: Path, **cfg) -> tuple[LlmEngine, RecordingSink]:
    sink = RecordingSink()
    return LlmEngine(LlmConfig(**cfg), data_dir=tmp_path, sink=sink), sink
