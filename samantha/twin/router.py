"""The twin's router: splits inference traffic between the active and standby slots.

Each request reads one immutable `RouteTable`; a flip or a weight change replaces
the table with a single assignment, so no request ever sees a half-swapped state.
In shadow mode each request served by the active slot is mirrored to the standby
and the two outputs are compared (total variation distance); the shadow answer is
never returned. Every inference becomes a RequestEvent for the telemetry pusher.

A mirrored answer is read after the live one has been handled, and reaches a slot
that was woken second, so its end-to-end time carries queueing the live path
never sees (it grows with host CPU load). A shadow event's latency is therefore
what the live path would have measured had the standby served this very request:
the standby's own service time plus the live call's path overhead. A real fault on
the standby's path (a slow proxy in front of it) still counts: when the standby's
path overhead, timed at the transport, exceeds the live one's by more than
PATH_FAULT_FLOOR_MS, the excess is added.

A protocol may stream (cube.openai_compat): a request asking for a streamed answer
is relayed chunk by chunk as the slot sends it, read on the way for its text and
its timing (time to first token, tokens per second, recorded as samples beside the
request event). A protocol may also want A/A calibration: a shadowed prompt then
goes to the incumbent a second time, and the two incumbent answers set the floor
the shadow divergence is read against.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from samantha.core.domain import SlotRole
from samantha.cube.open_inference import UpstreamFailure
from samantha.cube.openai_compat import STREAM_CONTENT_TYPE, TPS_METRIC, TTFT_METRIC
from samantha.twin.http import Request, Response, Upstream, error_response, json_response
from samantha.twin.telemetry_push import TelemetryPusher

PATH_FAULT_FLOOR_MS = 20.0  # path delay beyond the live path's that scheduling on a saturated host does not explain


@dataclass(frozen=True)
class Link:
    name: str
    upstream: Upstream  # or any client with the same timed_request (cube.open_inference.HttpxUpstream)
    bundle_id: str | None
    contract: Any = None  # what the slot's answers are checked against (the model's declared outputs)


class ToyProtocol:
    """The twin's data path: POST /infer with {"x": [...]}, answers {"probs": [...], "bundle", "service_ms"}."""

    def matches(self, path: str) -> bool:
        return path == "/infer"

    def parse(self, data: bytes, contract: Any) -> tuple[Any, str | None, float | None]:
        """(answer, bundle id the slot names, its own service time); ValueError names what is wrong."""
        try:
            doc = orjson.loads(data)
            probs = doc["probs"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ValueError("slot answer is not valid JSON") from None
        if not all(isinstance(v, float | int) and math.isfinite(v) for v in probs):
            raise ValueError("model produced a non-finite output")
        service = doc.get("service_ms")
        return probs, doc.get("bundle"), float(service) if isinstance(service, float | int) else None

    def compare(self, live: Any, shadow: Any) -> float:
        return divergence(live, shadow)


@dataclass(frozen=True)
class _Mirror:
    task: asyncio.Task  # the standby's answer (and an A/A replay on the incumbent)
    live_done: asyncio.Future  # resolved when the live answer is in: True if it is a good one


@dataclass(frozen=True)
class RouteTable:
    active: Link
    standby: Link | None  # None: not routable (empty, quarantined, safe mode)
    standby_weight: float  # percent
    shadow: bool


@dataclass
class Outcome:
    status: int
    body: bytes
    latency_ms: float
    probs: Any  # the parsed answer (the toy's class probabilities, V2 output tensors); None unless a good one
    bundle: str | None
    reason: str | None = None
    service_ms: float | None = None  # the slot's own compute time, when it reports one
    transport_ms: float | None = None  # request written to answer parsed, timed in the connection's callbacks
    ttft_ms: float | None = None  # time to first token, for protocols that report one
    tokens_per_s: float | None = None
    streamed: bool = False

    def path_overhead_ms(self, timed_at_transport: bool = False) -> float | None:
        total = self.transport_ms if timed_at_transport else self.latency_ms
        return None if self.service_ms is None or total is None else max(0.0, total - self.service_ms)


def shadow_latency_ms(mirrored: Outcome, live: Outcome) -> float:
    """What the live path would have measured had the standby served this request (see module doc)."""
    live_overhead = live.path_overhead_ms()
    if mirrored.service_ms is None or live_overhead is None:
        return mirrored.latency_ms
    excess = (mirrored.path_overhead_ms(timed_at_transport=True) or 0.0) - \
        (live.path_overhead_ms(timed_at_transport=True) or 0.0)
    return mirrored.service_ms + live_overhead + (excess if excess > PATH_FAULT_FLOOR_MS else 0.0)


def divergence(p: list[float], q: list[float] | None) -> float:
    """Total variation distance between two class distributions, in [0, 1]; 1 when q is missing."""
    if q is None or len(p) != len(q):
        return 1.0
    return min(1.0, 0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True)))


class SlotStats:
    """Live per-role counters for status views: totals and the latest latencies."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latencies: deque[float] = deque(maxlen=2000)
        self.recent: deque[tuple[float, bool]] = deque(maxlen=20000)  # (monotonic, ok) for rates
        self.divergences: deque[float] = deque(maxlen=2000)  # shadow only

    def add(self, latency_ms: float, ok: bool, div: float | None = None) -> None:
        if div is not None:
            self.divergences.append(div)
        self.requests += 1
        self.errors += not ok
        self.latencies.append(latency_ms)
        self.recent.append((time.monotonic(), ok))

    def snapshot(self, window_s: float = 2.0) -> dict[str, Any]:
        now = time.monotonic()
        recent = [ok for t, ok in self.recent if now - t <= window_s]
        lat = np.asarray(self.latencies) if self.latencies else None
        return {"requests": self.requests, "errors": self.errors,
                "rps": round(len(recent) / window_s, 1),
                "error_rate": round(1 - sum(recent) / len(recent), 4) if recent else 0.0,
                "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat is not None else None,
                "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat is not None else None,
                "divergence_mean": round(float(np.mean(self.divergences)), 4) if self.divergences else None}


class Router:
    def __init__(self, route: RouteTable, pusher: TelemetryPusher, *, timeout_s: float = 5.0,
                 probe_percent: float = 0.0, protocol: Any = None):
        self.route = route
        self.protocol = protocol or ToyProtocol()
        self.probe_percent = probe_percent
        self.pusher = pusher
        self.timeout_s = timeout_s
        self.stats: dict[str, SlotStats] = {"active": SlotStats(), "standby": SlotStats(), "shadow": SlotStats()}
        self.noise_fraction = 0.0
        self.noise_sigma = 0.0
        self._tasks: set[asyncio.Task] = set()

    async def handle(self, req: Request) -> Response:
        if self.protocol.matches(req.path):
            if req.method != "POST":
                return error_response(405, "method_not_allowed", f"POST {req.path}")
            return await self.infer(req.body, req.path)
        if req.path == "/health":
            return json_response({"ok": True})
        return error_response(404, "not_found", f"no route {req.path}")

    def _noisy(self, body: bytes) -> bytes:
        try:
            doc = orjson.loads(body)
            x = np.asarray(doc["x"], dtype=np.float64)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return body  # the slot answers bad input with a 4xx; noise has nothing to act on
        doc["x"] = (x + np.random.normal(0.0, self.noise_sigma, x.shape)).tolist()
        return orjson.dumps(doc)

    async def call(self, link: Link, body: bytes, path: str = "/infer") -> Outcome:
        t0 = time.perf_counter()
        try:
            status, data, elapsed = await link.upstream.timed_request("POST", path, body, timeout=self.timeout_s)
        except UpstreamFailure as e:
            return Outcome(502, b"", (time.perf_counter() - t0) * 1000, None, link.bundle_id, str(e))
        latency = (time.perf_counter() - t0) * 1000
        if status != 200:
            return Outcome(status, data, latency, None, link.bundle_id, f"slot answered {status}")
        try:
            probs, bundle, service = self.protocol.parse(data, link.contract)
        except ValueError as e:
            return Outcome(502, data, latency, None, link.bundle_id, str(e))
        ttft, tps = self._rates(probs, latency)
        return Outcome(200, data, latency, probs, bundle or link.bundle_id, transport_ms=elapsed * 1000,
                       service_ms=service, ttft_ms=ttft, tokens_per_s=tps)

    def _record(self, role: SlotRole, out: Outcome, *, shadow: bool = False, div: float | None = None) -> None:
        ok = out.probs is not None
        (self.stats["shadow"] if shadow else self.stats[role]).add(out.latency_ms, ok, div)
        if out.bundle is None:
            return
        ts = time.time()
        self.pusher.add({"ts": ts, "slot": role, "bundle": out.bundle, "latency_ms": round(out.latency_ms, 3),
                         "ok": ok, "divergence": div, "shadow": shadow})
        if ok and (out.ttft_ms is not None or out.tokens_per_s is not None):
            labels = {"slot": role, "bundle": out.bundle, "shadow": str(shadow).lower(),
                      "stream": str(out.streamed).lower()}
            for metric, value in ((TTFT_METRIC, out.ttft_ms), (TPS_METRIC, out.tokens_per_s)):
                if value is not None:
                    self.pusher.add_sample(metric, labels, round(value, 3), ts)

    def _streams(self, body: bytes) -> bool:
        streams = getattr(self.protocol, "streams", None)
        return bool(streams and streams(body))

    def _rates(self, answer: Any, latency_ms: float) -> tuple[float | None, float | None]:
        rates = getattr(self.protocol, "rates", None)
        return rates(answer, latency_ms) if rates else (None, None)

    async def stream(self, link: Link, body: bytes, path: str) -> AsyncIterator[bytes | Outcome]:
        """The slot's answer chunks as they arrive, read by the protocol on the way; the last item is the Outcome
        (the only item when the slot failed or did not answer 200)."""
        t0 = time.perf_counter()
        reader = self.protocol.reader()
        try:
            async with link.upstream.stream("POST", path, body, timeout=self.timeout_s) as (status, chunks):
                if status != 200:
                    data = b"".join([c async for c in chunks])
                    yield Outcome(status, data, (time.perf_counter() - t0) * 1000, None, link.bundle_id,
                                  f"slot answered {status}")
                    return
                async for c in chunks:
                    reader.feed(c, time.perf_counter() - t0)
                    yield c
        except UpstreamFailure as e:
            yield Outcome(502, b"", (time.perf_counter() - t0) * 1000, None, link.bundle_id, str(e))
            return
        latency = (time.perf_counter() - t0) * 1000
        try:
            answer = reader.answer()
        except ValueError as e:
            yield Outcome(502, b"", latency, None, link.bundle_id, str(e), streamed=True)
            return
        ttft, tps = self._rates(answer, latency)
        yield Outcome(200, b"", latency, answer, link.bundle_id, ttft_ms=ttft, tokens_per_s=tps, streamed=True)

    async def fetch(self, link: Link, body: bytes, path: str, streamed: bool) -> Outcome:
        """One whole answer from a slot (a mirror or a replay: nobody waits on its chunks)."""
        if not streamed:
            return await self.call(link, body, path)
        async for item in self.stream(link, body, path):
            if isinstance(item, Outcome):
                return item
        raise AssertionError("Router.stream ends with an Outcome")

    async def _mirror(self, rt: RouteTable, body: bytes, path: str, streamed: bool,
                      live_done: asyncio.Future) -> tuple[Outcome, Outcome | None]:
        """The standby's answer and, when the protocol calibrates on A/A, the incumbent's second one: asked once the
        live answer is in, so that a server serving one request at a time (llama.cpp) never delays it."""
        assert rt.standby is not None
        out = await self.fetch(rt.standby, body, path, streamed)
        wants = getattr(self.protocol, "wants_replay", None)
        if not (wants and wants(rt.active.bundle_id)) or not await live_done:
            return out, None
        return out, await self.fetch(rt.active, body, path, streamed)

    async def infer(self, body: bytes, path: str = "/infer") -> Response:
        rt = self.route
        if self.noise_fraction and random.random() < self.noise_fraction:
            body = self._noisy(body)
        self.pusher.add_input(body)  # what the model sees, noise included
        to_standby = rt.standby is not None and rt.standby_weight > 0 and random.random() * 100 < rt.standby_weight
        link = rt.standby if to_standby and rt.standby is not None else rt.active
        role: SlotRole = "standby" if to_standby else "active"
        streamed = self._streams(body)
        mirror = None
        probe = (not rt.shadow and rt.standby_weight <= 0 and self.probe_percent > 0
                 and random.random() * 100 < self.probe_percent)
        if (rt.shadow or probe) and not to_standby and rt.standby is not None:
            live_done = asyncio.get_running_loop().create_future()  # True once a good live answer is in
            mirror = _Mirror(asyncio.get_running_loop().create_task(
                self._mirror(rt, body, path, streamed, live_done)), live_done)
            self._tasks.add(mirror.task)
        headers = {"x-cube-slot": link.name, "x-cube-role": role}
        if streamed:
            chunks = self.stream(link, body, path)
            first = await anext(chunks)
            if not isinstance(first, Outcome):
                return Response(200, content_type=STREAM_CONTENT_TYPE, headers=headers,
                                stream=self._relay(first, chunks, role, mirror, probe))
            await chunks.aclose()  # type: ignore[attr-defined]
            out = first
        else:
            out = await self.call(link, body, path)
        if 400 <= out.status < 500:  # the caller's mistake, not the model's: pass it on, record nothing
            self._settle(role, None, mirror, probe)
            return Response(out.status, out.body)
        self._settle(role, out, mirror, probe)
        if out.probs is not None:
            return Response(200, out.body, headers=headers)
        return json_response({"error": {"code": "inference_failed", "reason": out.reason, "slot": link.name}}, 502) \
            if out.status == 502 else Response(out.status, out.body, headers=headers)

    async def _relay(self, first: bytes, chunks: AsyncIterator[bytes | Outcome], role: SlotRole,
                     mirror: _Mirror | None, probe: bool) -> AsyncIterator[bytes]:
        """The live answer's chunks to the caller, unchanged; recorded when it ended (nothing if the caller left)."""
        out = None
        try:
            yield first
            async for item in chunks:
                if isinstance(item, Outcome):
                    out = item
                else:
                    yield item
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
            self._settle(role, out, mirror, probe)

    def _settle(self, role: SlotRole, live: Outcome | None, mirror: _Mirror | None, probe: bool) -> None:
        """Record the live answer and have the mirror compared against it when it is in; None: record nothing."""
        if live is not None:
            self._record(role, live)
        if mirror is None:
            return
        mirror.live_done.set_result(live is not None and live.probs is not None)
        if live is None:
            mirror.task.add_done_callback(self._tasks.discard)
        else:
            mirror.task.add_done_callback(lambda t, live=live, probe=probe: self._shadow_done(t, live, probe))

    def _shadow_done(self, task: asyncio.Task, live: Outcome, probe: bool = False) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        out, replay = task.result()
        div = None
        if live.probs is not None:  # only a good incumbent answer is a reference
            if replay is not None and replay.probs is not None:
                self.protocol.calibrate(live.bundle, live.probs, replay.probs)
            div = self.protocol.compare(live.probs, out.probs)
        if 400 <= out.status < 500:
            return
        out.latency_ms = (out.transport_ms or out.latency_ms) if probe else shadow_latency_ms(out, live)
        self._record("standby", out, shadow=True, div=div)
