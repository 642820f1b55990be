"""The router's openai path over loopback HTTP against a scripted slot (a real HTTP server answering what each case
needs): bad answers fail with the field named, a stream cut short is a failure, a caller's mistake passes through
unrecorded, a caller that leaves mid-stream leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import orjson

from samantha.core.ports import free_port
from samantha.cube.open_inference import HttpxUpstream
from samantha.cube.openai_compat import OpenAIProtocol
from samantha.twin.http import HttpServer, Request, Response
from samantha.twin.router import Link, Router, RouteTable
from samantha.twin.telemetry_push import TelemetryPusher


def _event(content: str) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"delta": {"content": content}}]}) + b"\n\n"


async def _slot(req: Request) -> Response:
    """Answers by the prompt: what each case needs from a misbehaving OpenAI server."""
    prompt = orjson.loads(req.body)["messages"][0]["content"]
    if prompt == "html":
        return Response(200, b"<html>busy</html>", content_type="text/html")
    if prompt == "bad-request":
        return Response(400, b'{"error": {"message": "max_tokens too large"}}')

    async def events() -> AsyncIterator[bytes]:
        for w in ("one", " two", " three"):
            yield _event(w)
            await asyncio.sleep(0.05 if prompt != "slow" else 0.5)
        if prompt != "cut":
            yield b"data: [DONE]\n\n"

    return Response(200, content_type="text/event-stream", stream=events())


@contextlib.asynccontextmanager
async def _routed() -> AsyncIterator[tuple[httpx.AsyncClient, Router, TelemetryPusher]]:
    slot = HttpServer(_slot)
    slot_port = await slot.start("127.0.0.1", free_port())
    up = HttpxUpstream(f"http://127.0.0.1:{slot_port}")
    pusher = TelemetryPusher(None)
    router = Router(RouteTable(Link("A", up, "v1"), None, 0.0, False), pusher, protocol=OpenAIProtocol())
    front = HttpServer(router.handle)
    port = await front.start("127.0.0.1", free_port())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        yield c, router, pusher
    await front.close()
    await up.aclose()
    await slot.close()


def _chat(prompt: str, stream: bool = False) -> dict:
    return {"messages": [{"role": "user", "content": prompt}], "stream": stream}


def test_an_answer_that_is_not_json_fails_with_the_field_named():
    async def run():
        async with _routed() as (c, _, pusher):
            r = await c.post("/v1/chat/completions", json=_chat("html"))
            return r, list(pusher.buf)

    r, events = asyncio.run(run())
    assert r.status_code == 502
    assert r.json()["error"] == {"code": "inference_failed", "reason": "body: answer is not JSON", "slot": "A"}
    assert [(e["ok"], e["bundle"]) for e in events] == [(False, "v1")]


def test_a_callers_mistake_passes_through_and_is_not_recorded():
    async def run():
        async with _routed() as (c, _, pusher):
            whole = await c.post("/v1/chat/completions", json=_chat("bad-request"))
            streamed = await c.post("/v1/chat/completions", json=_chat("bad-request", stream=True))
            return whole, streamed, list(pusher.buf)

    whole, streamed, events = asyncio.run(run())
    assert whole.status_code == streamed.status_code == 400
    assert whole.json()["error"]["message"] == "max_tokens too large" and events == []


def test_a_stream_relayed_whole_is_ok_and_one_cut_short_is_a_failure():
    async def run():
        async with _routed() as (c, _, pusher):
            good = (await c.post("/v1/chat/completions", json=_chat("fine", stream=True))).content
            cut = (await c.post("/v1/chat/completions", json=_chat("cut", stream=True))).content
            return good, cut, list(pusher.buf), list(pusher.inputs.out)

    good, cut, events, samples = asyncio.run(run())
    assert good == _event("one") + _event(" two") + _event(" three") + b"data: [DONE]\n\n"
    assert cut == _event("one") + _event(" two") + _event(" three")  # what was sent, and no more
    assert [e["ok"] for e in events] == [True, False]
    ttft = [s["value"] for s in samples if s["metric"] == "llm_ttft_ms"]
    tps = [s["value"] for s in samples if s["metric"] == "llm_tokens_per_s"]
    assert len(ttft) == len(tps) == 1  # a failed answer has no speed
    assert 0 < ttft[0] < events[0]["latency_ms"]
    assert 0 < tps[0] <= 20.5  # 2 tokens after the first, at least 0.1 s apart (the slot sleeps between them)


def test_a_caller_leaving_mid_stream_records_nothing_and_leaves_no_task():
    async def run():
        async with _routed() as (c, router, pusher):
            async with c.stream("POST", "/v1/chat/completions", json=_chat("slow", stream=True)) as s:
                async for _ in s.aiter_raw():
                    break  # the first chunk, then gone
            await asyncio.sleep(1.2)  # the slot would have finished by now
            after = await c.post("/v1/chat/completions", json=_chat("fine", stream=True))
            return after, list(pusher.buf), set(router._tasks)

    after, events, tasks = asyncio.run(run())
    assert after.status_code == 200 and after.content.endswith(b"data: [DONE]\n\n")
    assert [e["ok"] for e in events] == [True] and tasks == set()  # only the second request was recorded
