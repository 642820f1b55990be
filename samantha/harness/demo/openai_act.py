"""Act: an OpenAI-compatible Cube. One llama.cpp server (the shipped SmolLM2) behind the cube router as both slots,
shadow on: a whole and a streamed chat completion pass through, each timed (time to first token, tokens per
second), and the shadow answers are compared as text against the incumbent's own A/A variation. Then the same
data path under `samantha cube serve -c samantha.yaml` (the command adapter): a signed bundle of the model verified,
its server started in the standby, flipped to active and answering. Skips where the server cannot start."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from samantha.core.ports import free_port
from samantha.cube.open_inference import HttpxUpstream
from samantha.cube.openai_compat import TPS_METRIC, TTFT_METRIC, OpenAIProtocol
from samantha.harness.llama_server import LlamaServer, LlamaUnavailable
from samantha.harness.openai_cube import OpenAICube
from samantha.twin.http import HttpServer
from samantha.twin.router import Link, Router, RouteTable
from samantha.twin.telemetry_push import TelemetryPusher

TITLE = "Real Cube: a llama.cpp OpenAI-compatible server behind the cube router (streamed, timed, shadowed as text)"
CHAT = {"messages": [{"role": "user", "content": "What is a cube?"}], "max_tokens": 8, "temperature": 0}


async def _exchange(url: str) -> dict[str, Any]:
    """A whole and a streamed answer through the router, shadow on; what the router recorded."""
    up = HttpxUpstream(url)
    pusher = TelemetryPusher(None)  # no ingest here: the pusher's buffer is the record
    # the same server stands in for both slots (one model loaded, the demo stays cheap): an A/A canary
    route = RouteTable(Link("A", up, "smollm2@1"), Link("B", up, "smollm2@1-canary"), 0.0, shadow=True)
    router = Router(route, pusher, timeout_s=60, protocol=OpenAIProtocol(aa_min_samples=1))
    server = HttpServer(router.handle)
    port = await server.start("127.0.0.1", free_port())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            whole = await c.post("/v1/chat/completions", json=CHAT)
            while router._tasks:
                await asyncio.sleep(0.02)
            chunks = 0
            async with c.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as s:
                async for _ in s.aiter_raw():
                    chunks += 1
            while router._tasks:
                await asyncio.sleep(0.02)
    finally:
        await server.close()
        await up.aclose()
    return {"whole": whole, "chunks": chunks, "events": list(pusher.buf), "samples": list(pusher.inputs.out)}


def run(ctx) -> None:
    con = ctx.console
    try:
        llama = LlamaServer(ctx.workdir / "openai-cube", "slot", n_ctx=256).start()
    except LlamaUnavailable as e:
        con.print(f"[yellow]skipped:[/yellow] the llama.cpp server cannot start here ({e})")
        return
    try:
        got = asyncio.run(_exchange(llama.url))
    finally:
        llama.stop()
    text = got["whole"].json()["choices"][0]["message"]["content"]
    live = [s for s in got["samples"] if s["labels"]["shadow"] == "false"]
    for kind in ("false", "true"):
        ttft = next(s["value"] for s in live if s["metric"] == TTFT_METRIC and s["labels"]["stream"] == kind)
        tps = next(s["value"] for s in live if s["metric"] == TPS_METRIC and s["labels"]["stream"] == kind)
        con.print(f"  {'streamed' if kind == 'true' else 'whole   '} answer: time to first token {ttft:.0f} ms, "
                  f"{tps:.0f} tokens/s" + (f" ({got['chunks']} chunks relayed as generated)" if kind == "true"
                                           else f": {text!r}"))
    shadow = [e["divergence"] for e in got["events"] if e["shadow"]]
    con.print(f"  shadow (same model as canary): text divergence over the A/A floor {shadow}; a sampled model's "
              "own variation reads as noise, not as a regression")
    if got["whole"].status_code != 200 or got["chunks"] < 2 or shadow != [0.0, 0.0]:
        raise RuntimeError("the OpenAI-compatible Cube did not behave as expected")
    ctx.facts["real OpenAI Cube: A/A shadow divergence"] = shadow
    _cube_serve(ctx)


def _cube_serve(ctx) -> None:
    """`samantha cube serve` with protocol openai and the command adapter: load into the standby, flip, serve."""
    con = ctx.console
    with OpenAICube(ctx.workdir / "openai-cube-serve") as cube:
        t0 = time.monotonic()
        load = cube.op("load", bundle=cube.bundle("smollm2-1", "1"))
        flip = cube.op("flip")
        took = time.monotonic() - t0
        r = cube.data.post("/v1/chat/completions", json=CHAT)
        junk = cube.op("load", bundle=cube.bundle("junk", "2", b"GGUF not a model")).json().get("error", {})
        if load.status_code != 200 or flip.status_code != 200 or r.status_code != 200 or \
                r.headers.get("x-cube-slot") != "B" or junk.get("code") != "start_failed":
            raise RuntimeError(f"cube serve (command adapter) did not behave as expected: {load.text[:200]} "
                               f"{flip.text[:200]} {r.text[:200]} {junk}")
    con.print(f"  `samantha cube serve -c samantha.yaml` (openai, command): smollm2@1 verified, copied, its "
              f"llama.cpp server started in slot B, warmed up and flipped to active in {took:.1f} s; "
              f"answer through the router from slot {r.headers['x-cube-slot']}")
    con.print(f"  a signed bundle its server cannot run: refused ({junk['code']}), the standby left empty, the "
              "active untouched")
    ctx.facts["real OpenAI Cube: cube serve load + flip (command adapter)"] = f"{took:.1f} s"
