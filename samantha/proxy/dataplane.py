"""The TCP data plane: listeners, connections and the per-direction toxic chain.

Each accepted client gets an upstream connection and two links: `upstream` (client ->
server) and `downstream` (server -> client). A link with no toxics and nothing queued
writes straight through from the protocol callback (the fast path). Otherwise chunks are
stamped on arrival, queued, and a worker task pushes each one through the proxy's current
chain for that direction, so adding, updating or removing a toxic applies to existing
connections from their next chunk on, as in Toxiproxy. Each toxic's `toxicity` is rolled
once per connection (again when the toxic is updated); `http_error` rolls per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from samantha.core.clock import Clock
from samantha.proxy.toxics import Toxic, http_error_response

HIGH_WATER = 1 << 20  # queued bytes per link before the source is paused
LOW_WATER = 1 << 18
MAX_HEAD = 64 * 1024  # an HTTP request head longer than this is not parsed by http_error


class _Closed(Exception):
    """The connection is gone; stop pushing."""


Emit = Callable[[bytes], Awaitable[None]]


class ServedProxy(Protocol):
    """What the data plane needs of the proxy it serves (the registry's `Proxy` is one): the clock,
    the live connection set, the current toxic chain per direction and the upstream address."""

    clock: Clock
    connections: set[Connection]

    def chain(self, direction: str) -> list[Toxic]: ...

    def has_toxics(self, direction: str) -> bool: ...

    def upstream_addr(self) -> tuple[str, int]: ...


class Link:
    def __init__(self, conn: Connection, direction: str) -> None:
        self.conn = conn
        self.direction = direction
        self.source: asyncio.Transport | None = None
        self.sink: asyncio.Transport | None = None
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.queued = 0
        self.worker: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.rolls: dict[int, tuple[Toxic, bool]] = {}  # id(toxic) -> (toxic, active on this connection)
        self.state: dict[int, dict[str, Any]] = {}
        self.timers: dict[int, asyncio.Task[None]] = {}
        self.pause_reasons: set[str] = set()
        self.eof_sent = False

    @property
    def clock(self) -> Clock:
        return self.conn.proxy.clock

    def chain(self) -> list[Toxic]:
        return self.conn.proxy.chain(self.direction)

    def active_chain(self) -> list[Toxic]:
        out = []
        for t in self.chain():
            entry = self.rolls.get(id(t))
            if entry is None or entry[0] is not t:
                hit = t.spec.type == "http_error" or random.random() < t.spec.toxicity
                entry = self.rolls[id(t)] = (t, hit)
            if entry[1]:
                out.append(t)
        return out

    # --- flow control -------------------------------------------------
    def _pause(self, reason: str) -> None:
        if not self.pause_reasons and self.source is not None:
            self.source.pause_reading()
        self.pause_reasons.add(reason)

    def _resume(self, reason: str) -> None:
        if reason in self.pause_reasons:
            self.pause_reasons.discard(reason)
            if not self.pause_reasons and self.source is not None and not self.source.is_closing():
                self.source.resume_reading()

    def sink_paused(self) -> None:
        self.writable.clear()
        self._pause("sink")

    def sink_resumed(self) -> None:
        self.writable.set()
        self._resume("sink")

    # --- input --------------------------------------------------------
    def feed(self, data: bytes | None) -> None:
        """Data (or EOF as None) read from the source side."""
        if self.conn.closed:
            return
        if (self.worker is None and not self.queue and self.sink is not None
                and not self.conn.proxy.has_toxics(self.direction)):
            if data is None:
                self._send_eof()
            else:
                self.sink.write(data)
            return
        self.queue.append((self.clock.monotonic(), data))
        if data:
            self.queued += len(data)
            if self.queued > HIGH_WATER:
                self._pause("queue")
        self.kick()

    def kick(self) -> None:
        """Start the worker if there is queued input and somewhere to send it."""
        if self.worker is None and self.queue and self.sink is not None:
            self.worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self.queue:
                ts, data = self.queue.popleft()
                if data is None:
                    await self._slow_close()
                    self._send_eof()
                    continue
                self.queued -= len(data)
                if self.queued < LOW_WATER:
                    self._resume("queue")
                chain = self.active_chain()
                await self._push(chain, 0, ts, data)
        except _Closed:
            pass
        except (ConnectionError, OSError):
            self.conn.close()
        finally:
            self.worker = None

    async def _write(self, data: bytes) -> None:
        if self.conn.closed or self.sink is None:
            raise _Closed
        if not self.writable.is_set():
            await self.writable.wait()
            if self.conn.closed:
                raise _Closed
        self.sink.write(data)

    async def _sleep_until(self, t: float) -> None:
        delay = t - self.clock.monotonic()
        if delay > 0:
            await self.clock.asleep(delay)
        if self.conn.closed:
            raise _Closed

    def _send_eof(self) -> None:
        if self.eof_sent or self.sink is None:
            return
        self.eof_sent = True
        if self.sink.can_write_eof() and not self.sink.is_closing():
            self.sink.write_eof()
        self.conn.maybe_finished()

    async def _slow_close(self) -> None:
        for t in self.active_chain():
            if t.spec.type == "slow_close":
                await self.clock.asleep(t.spec.attributes["delay"] / 1000.0)

    # --- the chain ----------------------------------------------------
    async def _push(self, chain: list[Toxic], i: int, ts: float, data: bytes) -> None:
        if i == len(chain):
            await self._write(data)
            return
        toxic = chain[i]
        a = toxic.spec.attributes
        kind = toxic.spec.type
        st = self.state.setdefault(id(toxic), {})

        async def nxt(d: bytes) -> None:
            await self._push(chain, i + 1, ts, d)

        if kind == "latency":
            jitter = a["jitter"]
            # as Go: jitter only when positive, an integer in [-jitter, jitter); a negative total means no wait
            delay_ms = a["latency"] + (random.randrange(-jitter, jitter) if jitter > 0 else 0)
            await self._sleep_until(ts + max(0.0, delay_ms) / 1000.0)
            await nxt(data)
        elif kind == "bandwidth":
            await self._bandwidth(toxic, st, data, nxt)
        elif kind == "slicer":
            await self._slicer(a, data, nxt)
        elif kind == "limit_data":
            left = a["bytes"] - st.get("sent", 0)
            if left > 0:
                part = data[:left]
                st["sent"] = st.get("sent", 0) + len(part)
                await nxt(part)
            if a["bytes"] - st.get("sent", 0) <= 0:
                self.conn.close()
                raise _Closed
        elif kind == "timeout":
            return  # data is dropped; the timer set in sync() closes the connection
        elif kind == "reset_peer":
            if not st.get("armed"):
                st["armed"] = True
                self._timer(toxic, a["timeout"] / 1000.0, self.conn.reset)
        elif kind == "http_error":
            await self._http_error(toxic, st, data, nxt)
        else:  # slow_close acts on close only
            await nxt(data)

    async def _bandwidth(self, toxic: Toxic, st: dict[str, Any], data: bytes, nxt: Emit) -> None:
        rate = toxic.spec.attributes["rate"]
        if rate <= 0:  # as Go: a rate of 0 (the default) lets nothing through until the toxic goes
            await self._hold_while_present(toxic)
            await nxt(data)
            return
        per_s = rate * 1000.0
        piece = max(1, rate * 100)  # send at most 100 ms worth at a time
        for off in range(0, len(data), piece):
            part = data[off:off + piece]
            start = max(self.clock.monotonic(), st.get("free_at", 0.0))
            st["free_at"] = start + len(part) / per_s
            await self._sleep_until(st["free_at"])
            await nxt(part)

    async def _hold_while_present(self, toxic: Toxic, poll_s: float = 0.1) -> None:
        """Until the toxic is removed or replaced (then the data goes on, not lost) or the connection
        closes; bounded by the toxic's life, as in Go, which re-checks every 100 ms."""
        while any(t is toxic for t in self.chain()):
            await self.clock.asleep(poll_s)
            if self.conn.closed:
                raise _Closed

    async def _slicer(self, a: dict[str, Any], data: bytes, nxt: Emit) -> None:
        avg, var, delay_us = a["average_size"], a["size_variation"], a["delay"]
        off = 0
        while off < len(data):
            size = max(1, avg + (random.randint(-var, var) if var else 0))
            await nxt(data[off:off + size])
            off += size
            if delay_us:
                await self.clock.asleep(delay_us / 1e6)
                if self.conn.closed:
                    raise _Closed

    async def _http_error(self, toxic: Toxic, st: dict[str, Any], data: bytes, nxt: Emit) -> None:
        """Parse HTTP/1.x request framing; answer a fraction of requests without forwarding them.

        Assumes clients do not pipeline (they wait for a response before the next request on a
        connection), as HTTP/1.1 clients do in practice. Chunked request bodies are forwarded
        untouched for the rest of that connection (their end is not tracked).
        """
        out = bytearray()
        buf: bytearray = st.setdefault("buf", bytearray())
        buf += data
        while buf:
            mode = st.get("mode", "head")
            if mode == "pass":
                out += buf
                buf.clear()
            elif mode in ("body", "drop"):
                take = min(st["left"], len(buf))
                if mode == "body":
                    out += buf[:take]
                del buf[:take]
                st["left"] -= take
                if st["left"] == 0:
                    self._request_done(toxic, st)
            else:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD or not _looks_like_request(buf):
                        out += buf  # not HTTP (or not at a request boundary): forward, resync later
                        buf.clear()
                    break
                head = bytes(buf[:end + 4])
                del buf[:end + 4]
                parsed = _parse_head(head)
                if parsed is None:
                    out += head
                    continue
                length, chunked, close = parsed
                fail = random.random() < toxic.spec.toxicity
                st["fail"], st["close"] = fail, close
                if chunked:
                    st["mode"] = "pass"
                    out += head
                    continue
                if not fail:
                    out += head
                st["mode"], st["left"] = ("drop" if fail else "body"), length
                if length == 0:
                    self._request_done(toxic, st)
        if out:
            await nxt(bytes(out))

    def _request_done(self, toxic: Toxic, st: dict[str, Any]) -> None:
        st["mode"] = "head"
        if st.pop("fail", False):
            a = toxic.spec.attributes
            close = st.get("close", False)
            other = self.conn.downstream
            other.feed(http_error_response(a["status_code"], a.get("body"), close))
            if close:
                other.feed(None)

    # --- timers (timeout, reset_peer) ------------------------------------
    def _timer(self, toxic: Toxic, seconds: float, action: Callable[[], None]) -> None:
        async def fire() -> None:
            await self.clock.asleep(seconds)
            if toxic in self.chain():
                action()

        if id(toxic) not in self.timers:
            self.timers[id(toxic)] = asyncio.get_running_loop().create_task(fire())

    def sync(self) -> None:
        """Called when the link starts and whenever the proxy's toxics change."""
        live = {id(t) for t in self.chain()}
        for key in [k for k in self.timers if k not in live]:
            self.timers.pop(key).cancel()
        for key in [k for k in self.rolls if k not in live]:
            self.rolls.pop(key, None)
            self.state.pop(key, None)
        for t in self.active_chain():
            if t.spec.type == "timeout" and t.spec.attributes["timeout"] > 0:
                self._timer(t, t.spec.attributes["timeout"] / 1000.0, self.conn.close)

    def cancel(self) -> None:
        for task in self.timers.values():
            task.cancel()
        self.timers.clear()
        if self.worker is not None:
            self.worker.cancel()
        self.writable.set()


def _looks_like_request(buf: bytearray) -> bool:
    first = bytes(buf[:16]).split(b" ", 1)[0]
    return first.isalpha() and first.isupper() or len(buf) < 3


def _parse_head(head: bytes) -> tuple[int, bool, bool] | None:
    """(content length, chunked, client asked to close) or None if this is not a request head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith(b"HTTP/1."):
        return None
    length, chunked = 0, False
    close = parts[2] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            if length < 0:
                return None
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection":
            close = value == b"close" or (close and value != b"keep-alive")
    return length, chunked, close


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; feeds its reads into one link."""

    def __init__(self, conn: Connection, reads_into: str) -> None:
        self.conn = conn
        self.reads_into = reads_into
        self.transport: asyncio.Transport | None = None

    @property
    def link_in(self) -> Link:
        return self.conn.upstream if self.reads_into == "upstream" else self.conn.downstream

    @property
    def link_out(self) -> Link:  # the link that writes to this socket
        return self.conn.downstream if self.reads_into == "upstream" else self.conn.upstream

    def data_received(self, data: bytes) -> None:
        self.link_in.feed(data)

    def eof_received(self) -> bool:
        self.link_in.feed(None)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.close()

    def pause_writing(self) -> None:
        self.link_out.sink_paused()

    def resume_writing(self) -> None:
        self.link_out.sink_resumed()


class _ClientSide(_Side):
    def __init__(self, proxy: ServedProxy) -> None:
        self.proxy = proxy
        super().__init__(Connection(proxy), "upstream")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.transport = transport
        self.conn.client = transport
        transport.pause_reading()
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proxy.connections.add(self.conn)
        self.conn.connecting = asyncio.get_running_loop().create_task(self.conn.connect_upstream())


class _UpstreamSide(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)


class Connection:
    def __init__(self, proxy: ServedProxy) -> None:
        self.proxy = proxy
        self.client: asyncio.Transport | None = None
        self.server: asyncio.Transport | None = None
        self.upstream = Link(self, "upstream")
        self.downstream = Link(self, "downstream")
        self.connecting: asyncio.Task[None] | None = None
        self.closed = False

    async def connect_upstream(self) -> None:
        host, port = self.proxy.upstream_addr()
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(lambda: _UpstreamSide(self, "downstream"), host, port)
        except OSError:
            self.close()  # as Toxiproxy: a client whose upstream is unreachable is hung up on
            return
        if self.closed:
            transport.abort()
            return
        transport = cast(asyncio.Transport, transport)
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server = transport
        self.upstream.source, self.upstream.sink = self.client, transport
        self.downstream.source, self.downstream.sink = transport, self.client
        self.upstream.sync()
        self.downstream.sync()
        self.upstream.kick()  # bytes the client sent before the upstream answered
        if self.client is not None and not self.client.is_closing():
            self.client.resume_reading()

    def maybe_finished(self) -> None:
        if self.upstream.eof_sent and self.downstream.eof_sent:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for link in (self.upstream, self.downstream):
            link.cancel()
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        for t in (self.client, self.server):
            if t is not None:
                t.close()  # flushes what is buffered (a limit_data prefix, an injected response) first
        self.proxy.connections.discard(self)

    def reset(self) -> None:
        """Close both sockets with RST (SO_LINGER 0): the peer sees 'connection reset'."""
        for t in (self.client, self.server):
            if t is not None:
                with contextlib.suppress(OSError, AttributeError):
                    t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                          struct.pack("ii", 1, 0))
        self.closed = True
        for link in (self.upstream, self.downstream):
            link.cancel()
        for t in (self.client, self.server):
            if t is not None:
                t.abort()
        self.proxy.connections.discard(self)


async def start_listener(proxy: ServedProxy, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _ClientSide(proxy), host, port, reuse_address=True)
