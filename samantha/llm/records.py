"""The record of every LLM call, and where records go (an injected sink callable)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field

from samantha.core.domain import Record

log = logging.getLogger(__name__)

# ok: validated output; invalid_output: text that failed pydantic validation; timeout: the hard
# limit hit (worker killed); unavailable: no model / load failed; disabled: llm.enabled is false;
# busy: another call held the worker until the deadline; error: the worker reported an error.
Outcome = Literal["ok", "invalid_output", "timeout", "unavailable", "disabled", "busy", "error"]


class LlmCallRecord(Record):
    ts: float = Field(description="wall time at the start of the call")
    task: str
    template: str = Field(description="template name, e.g. triage.v1")
    template_sha256: str
    model: str | None = Field(description="model file name")
    model_sha256: str | None
    prompt_chars: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = Field(description="caller-side wall time of the call, monotonic")
    infer_s: float | None = Field(None, description="time inside llama.cpp, measured in the worker")
    outcome: Outcome
    error: str | None = None
    dropped: list[str] = Field(default_factory=list, description="output values dropped by post-validation")
    rejected: list[str] = Field(default_factory=list,
                                description="why the verifier refused the output against the evidence (never shown)")


Sink = Callable[[LlmCallRecord], None]


class JsonlSink:
    """Appends each record as one JSON line. Thread-safe; a write failure is logged, never raised."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, record: LlmCallRecord) -> None:
        line = record.model_dump_json() + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line)
            except OSError as e:
                log.warning("llm call record not written to %s: %s", self.path, e)


def deliver(sink: Sink | None, record: LlmCallRecord) -> None:
    """Hand a record to the sink; a broken sink must not break the caller."""
    if sink is None:
        return
    try:
        sink(record)
    except Exception:
        log.exception("llm call record sink failed")
