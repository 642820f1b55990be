"""The engine through real llama.cpp with the real default model."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from samantha.llm.check import load_fixtures
from samantha.llm.engine import LlmEngine, LlmRequest
from samantha.llm.triage import TriageAnswer, triage, triage_request

from .conftest import make_engine

pytestmark = [pytest.mark.llm, pytest.mark.timeout(240)]

INCIDENT = load_fixtures()[0].incident


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_constrained_output_validates_and_is_recorded(engine: LlmEngine, llm_sink) -> None:
    req = triage_request(INCIDENT, ["alert", "hold_rollout"])
    reply = engine.complete(req)
    assert reply.outcome == "ok", reply.record.error
    assert isinstance(reply.value, TriageAnswer)
    assert reply.value.suggested_action in ("alert", "hold_rollout", "none")
    rec = reply.record
    assert rec is llm_sink.records[-1]
    assert rec.model == "SmolLM2-135M-Instruct.Q4_1.gguf" and len(rec.model_sha256) == 64
    assert rec.template == req.prompt.template == "triage.v2" and rec.template_sha256 == req.prompt.template_sha256
    assert rec.prompt_chars == req.prompt.chars and rec.prompt_tokens > 100 and rec.completion_tokens > 5
    assert 0 < rec.infer_s <= rec.latency_s


def test_the_worker_runs_under_sched_idle_so_the_fast_path_always_wins(engine: LlmEngine) -> None:
    pid = engine.status().worker_pid
    assert pid is not None and pid != os.getpid()
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert os.sched_getscheduler(os.getpid()) == os.SCHED_OTHER  # the daemon itself keeps normal priority


def test_tiny_timeout_kills_the_worker_and_falls_back_then_recovers(tmp_path: Path) -> None:
    eng, sink = make_engine(tmp_path, timeout_s=0.05)
    try:
        assert eng.start().available
        pid = eng.status().worker_pid
        t0 = time.monotonic()
        res = triage(INCIDENT, eng)
        assert time.monotonic() - t0 < 5  # the caller is released at the deadline, not when the C call ends
        assert res.source == "rules" and res.llm_outcome == "timeout" and res.cause == res.rule_cause
        assert "worker killed" in res.llm_error and sink.records[-1].outcome == "timeout"
        assert not _alive(pid)  # abandoned for real: the process running the C call is gone
        eng._respawn.join(120)  # a fresh worker is started off the caller's path
        new_pid = eng.status().worker_pid
        assert new_pid not in (None, pid) and _alive(new_pid)
        eng.config = eng.config.model_copy(update={"timeout_s": 90})
        again = triage(INCIDENT, eng)
        assert again.source == "llm", again.llm_error
        assert eng.status().worker_pid == new_pid
    finally:
        eng.close()


def test_missing_model_gives_clear_error_and_rules_answer_at_once(tmp_path: Path) -> None:
    eng, sink = make_engine(tmp_path, model_path=str(tmp_path / "absent.gguf"))
    with eng:
        st = eng.start()
        assert not st.available and "does not exist" in st.error and "absent.gguf" in st.error
        t0 = time.monotonic()
        res = triage(INCIDENT, eng)
        assert time.monotonic() - t0 < 1.0
        assert res.source == "rules" and res.llm_outcome == "unavailable" and "absent.gguf" in res.llm_error
        assert sink.records[-1].outcome == "unavailable"


def test_corrupt_model_fails_in_the_worker_and_the_caller_goes_on(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(256 * 1024))
    eng, sink = make_engine(tmp_path, model_path=str(bad))
    with eng:
        st = eng.start()
        assert not st.available and "cannot load" in st.error and "corrupt.gguf" in st.error
        res = triage(INCIDENT, eng)
        assert res.source == "rules" and res.llm_outcome == "unavailable"
        assert eng.status().worker_pid is None


def test_disabled_engine_never_starts_a_worker(tmp_path: Path) -> None:
    eng, sink = make_engine(tmp_path, enabled=False)
    with eng:
        res = triage(INCIDENT, eng)
        assert res.llm_outcome == "disabled" and res.source == "rules"
        assert eng.status().worker_pid is None and sink.records[-1].outcome == "disabled"


def test_invalid_output_is_a_typed_outcome_naming_the_field(engine: LlmEngine) -> None:
    # The grammar only allows "low|medium|high"; a stricter pydantic model makes valid JSON invalid.
    from typing import Literal

    from pydantic import BaseModel

    class Stricter(BaseModel):
        cause: str
        confidence: Literal["certain"]
        suggested_action: str
        summary: str

    base = triage_request(INCIDENT)
    reply = engine.complete(LlmRequest(task="triage", prompt=base.prompt, schema=base.schema, output=Stricter,
                                       max_tokens=base.max_tokens))
    assert reply.outcome == "invalid_output" and reply.value is None
    assert "confidence" in reply.record.error and reply.text


def test_acomplete_leaves_the_event_loop_free(engine: LlmEngine) -> None:
    import asyncio

    async def main() -> tuple[str, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        reply = await engine.acomplete(triage_request(INCIDENT))
        t.cancel()
        return reply.outcome, ticks

    outcome, ticks = asyncio.run(main())
    assert outcome == "ok" and ticks >= 5


def test_a_call_that_cannot_get_the_worker_in_time_is_busy(tmp_path: Path) -> None:
    eng, sink = make_engine(tmp_path, timeout_s=0.2)
    with eng:
        eng._lock.acquire()  # another call holds the worker
        try:
            t0 = time.monotonic()
            res = triage(INCIDENT, eng)
            assert time.monotonic() - t0 < 2
        finally:
            eng._lock.release()
        assert res.llm_outcome == "busy" and res.source == "rules" and sink.records[-1].outcome == "busy"
