"""The Cube runtime's router in front of real llama.cpp OpenAI-compatible servers (the shipped SmolLM2 model), all
over loopback HTTP: whole and streamed answers pass through byte for byte, each request lands in a real DuckDB
telemetry store through the real ingest with its time to first token and tokens per second, and shadow answers are
compared as text against the incumbent's own A/A variability."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from samantha.core.config import StoreConfig
from samantha.core.ports import free_port
from samantha.cube.open_inference import HttpxUpstream
from samantha.cube.openai_compat import OpenAIProtocol
from samantha.gates.engine import GateEngine
from samantha.gates.spec import ThresholdGate
from samantha.harness.llama_server import LlamaServer
from samantha.telemetry.ingest_http import make_ingest_router
from samantha.telemetry.store import TelemetryStore
from samantha.twin.http import HttpServer
from samantha.twin.router import Link, Router, RouteTable
from samantha.twin.telemetry_push import TelemetryPusher

pytestmark = [pytest.mark.slow, pytest.mark.llm]
MAX_TOKENS = 8
PROMPTS = ["What is a cube?", "Name a colour.", "Say hello.", "What is two plus two?", "Describe the sea.",
           "Name an animal.", "What is rain?", "Give me a word."]


@pytest.fixture(scope="module")
def llamas(tmp_path_factory):
    """Incumbent A, an identical canary B, and C: the same weights behind another chat template (alpaca), a
    misconfigured bundle whose answers differ grossly."""
    root = tmp_path_factory.mktemp("llama")
    servers = [LlamaServer(root, "A", n_ctx=256), LlamaServer(root, "B", n_ctx=256),
               LlamaServer(root, "C", n_ctx=256, chat_format="alpaca")]
    try:
        yield tuple(s.start() for s in servers)
    finally:
        for s in servers:
            s.stop()


def _chat(prompt: str, **kw: object) -> dict:
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": MAX_TOKENS, "temperature": 0, **kw}


@contextlib.asynccontextmanager
async def _cube(tmp_path, active: str, standby: str | None, protocol: OpenAIProtocol) -> AsyncIterator:
    """Router (shadow on when there is a standby) -> llama servers; its pusher -> real ingest -> DuckDB."""
    store = TelemetryStore(tmp_path / "telemetry.duckdb", StoreConfig(flush_interval_ms=20))
    app = FastAPI()
    app.include_router(make_ingest_router(store))
    ingest = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    ingest_task = asyncio.create_task(ingest.serve())
    while not ingest.started:
        await asyncio.sleep(0.02)
    pusher = TelemetryPusher(f"http://127.0.0.1:{ingest.config.port}/v1/ingest/requests", batch_ms=20)
    push_task = asyncio.create_task(pusher.run())
    ups = [HttpxUpstream(active)] + ([HttpxUpstream(standby)] if standby else [])
    route = RouteTable(Link("A", ups[0], "smollm2-a"), Link("B", ups[1], "smollm2-b") if standby else None, 0.0,
                       shadow=standby is not None)
    router = Router(route, pusher, timeout_s=60, protocol=protocol)
    server = HttpServer(router.handle)
    port = await server.start("127.0.0.1", free_port())
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120)
    env = SimpleNamespace(router=router, pusher=pusher, store=store, client=client)
    try:
        yield env
    finally:
        deadline = time.monotonic() + 60
        while (router._tasks or pusher.buf or pusher.inputs.out) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # mirrors finished, every event and sample posted
        await client.aclose()
        await server.close()
        push_task.cancel()
        ingest.should_exit = True
        await ingest_task
        for u in ups:
            await u.aclose()
        store.flush()


def _samples(store: TelemetryStore, metric: str) -> list[tuple[dict, float]]:
    rows = store.read_arrow("SELECT s.labels::VARCHAR AS labels, v.value FROM samples v JOIN series s "
                            "ON v.series_id = s.id WHERE s.metric = ? ORDER BY v.ts", [metric]).to_pylist()
    return [(json.loads(r["labels"]), r["value"]) for r in rows]


def _unstamped(data: bytes) -> bytes:
    """An answer without what differs between two calls of one server: its id and creation time."""
    return re.sub(rb'"created": ?\d+', b'"created": 0', re.sub(rb'"id": ?"[^"]*"', b'"id": ""', data))


def test_whole_and_streamed_answers_pass_through_unchanged_with_ttft_and_tps_recorded(llamas, tmp_path):
    a = llamas[0]
    direct = httpx.Client(base_url=a.url, timeout=120)
    want_chat = direct.post("/v1/chat/completions", json=_chat("What is a cube?")).content
    want_comp = direct.post("/v1/completions", json={"prompt": "The sea is", "max_tokens": MAX_TOKENS,
                                                     "temperature": 0}).content
    with direct.stream("POST", "/v1/chat/completions", json=_chat("Say hello.", stream=True)) as r:
        want_stream = r.read()
    direct.close()

    async def run() -> tuple:
        async with _cube(tmp_path, a.url, None, OpenAIProtocol()) as cube:
            chat = await cube.client.post("/v1/chat/completions", json=_chat("What is a cube?"))
            comp = await cube.client.post("/v1/completions", json={"prompt": "The sea is",
                                                                   "max_tokens": MAX_TOKENS, "temperature": 0})
            arrivals, parts = [], []
            async with cube.client.stream("POST", "/v1/chat/completions",
                                          json=_chat("Say hello.", stream=True)) as s:
                assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
                assert s.headers["transfer-encoding"] == "chunked" and s.headers["x-cube-role"] == "active"
                async for c in s.aiter_raw():
                    arrivals.append(time.perf_counter())
                    parts.append(c)
        return chat, comp, b"".join(parts), arrivals, cube.store

    chat, comp, streamed, arrivals, store = asyncio.run(run())
    assert chat.status_code == 200 and chat.headers["x-cube-slot"] == "A"
    assert _unstamped(chat.content) == _unstamped(want_chat)  # byte for byte, but for the server's own stamps
    assert _unstamped(comp.content) == _unstamped(want_comp)
    assert _unstamped(streamed) == _unstamped(want_stream) and streamed.rstrip().endswith(b"data: [DONE]")
    assert len(arrivals) >= 3 and arrivals[-1] > arrivals[0]  # relayed as it was generated, not buffered

    rows = store.read_arrow("SELECT slot, bundle, ok, shadow, latency_ms FROM requests ORDER BY ts").to_pylist()
    assert [(r["slot"], r["bundle"], r["ok"], r["shadow"]) for r in rows] == [("active", "smollm2-a", True, False)] * 3
    ttft, tps = _samples(store, "llm_ttft_ms"), _samples(store, "llm_tokens_per_s")
    assert [lab["stream"] for lab, _ in ttft] == ["false", "false", "true"]
    assert all(lab["slot"] == "active" and lab["bundle"] == "smollm2-a" and lab["shadow"] == "false"
               for lab, _ in ttft + tps)
    stream_ttft, stream_latency = ttft[2][1], rows[2]["latency_ms"]
    assert 0 < stream_ttft < stream_latency  # the first token came before the whole answer
    assert ttft[0][1] == pytest.approx(rows[0]["latency_ms"], abs=0.01)  # unstreamed: it came with the rest
    assert len(tps) == 3 and all(v > 0 for _, v in tps)
    # gates read the series like any other metric: a streamed time-to-first-token bound on the active slot
    gates = [ThresholdGate(name=f"ttft-{bound}", metric="llm_ttft_ms", aggregate="max", op="<", value=bound,
                           labels={"slot": "active", "stream": "true"}, window=600) for bound in (60_000, 1)]
    verdicts = {v.gate: v.status for v in GateEngine(store).evaluate(gates, time.time())}
    assert verdicts == {"ttft-60000": "pass", "ttft-1": "fail"}
    store.close()


def _shadow_divergences(store: TelemetryStore) -> list[float | None]:
    return [r["divergence"] for r in store.read_arrow(
        "SELECT divergence FROM requests WHERE shadow ORDER BY ts").to_pylist()]


def test_shadow_divergence_on_text_is_read_against_the_incumbents_own_variation(llamas, tmp_path):
    a, b, c = llamas
    aa_min = 3

    async def run(temperature: float, stream: bool, sub: str, canary: str = b.url) -> tuple[list, list, list]:
        """Each prompt through the router with shadow on: the shadow events' divergence, the A/A distances."""
        proto = OpenAIProtocol(aa_min_samples=aa_min)
        (tmp_path / sub).mkdir()
        raw = []
        async with _cube(tmp_path / sub, a.url, canary, proto) as cube:
            for p in PROMPTS[:6]:
                r = await cube.client.post("/v1/chat/completions", json=_chat(p, temperature=temperature,
                                                                              stream=stream))
                assert r.status_code == 200
                while cube.router._tasks:
                    await asyncio.sleep(0.02)
            raw = list(proto.baseline.samples)
        divs = _shadow_divergences(cube.store)
        tps = _samples(cube.store, "llm_tokens_per_s")
        cube.store.close()
        return divs, raw, tps

    # greedy: the incumbent repeats itself exactly (floor 0), and so does the identical canary
    divs, floor_samples, tps = asyncio.run(run(0.0, True, "greedy"))
    assert len(divs) == 6 and divs[:aa_min - 1] == [None] * (aa_min - 1)  # calibrating: recorded, not compared
    assert floor_samples and set(floor_samples) == {0.0}
    assert divs[aa_min - 1:] == [0.0] * (6 - aa_min + 1)
    assert {lab["shadow"] for lab, _ in tps} == {"true", "false"}  # the shadow's speed is recorded too

    # the misconfigured canary, against the same greedy incumbent: gross divergence
    divs, floor_samples, _ = asyncio.run(run(0.0, False, "gross", canary=c.url))
    compared = [d for d in divs if d is not None]
    assert set(floor_samples) == {0.0} and len(compared) == 6 - aa_min + 1
    assert sum(compared) / len(compared) > 0.5, divs

    # sampled: the incumbent does not repeat itself, so raw text distance is large for an identical model too,
    # and the calibrated divergence stays well under it
    divs, floor_samples, _ = asyncio.run(run(1.5, False, "sampled"))
    compared = [d for d in divs if d is not None]
    assert len(divs) == 6 and len(compared) == 6 - aa_min + 1
    assert sum(floor_samples) / len(floor_samples) > 0.3, floor_samples  # the model's own variation is large
    assert all(0.0 <= d <= 1.0 for d in compared)
    assert sum(compared) / len(compared) < sum(floor_samples) / len(floor_samples)
