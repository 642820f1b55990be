"""Proxies and their toxics: the state behind the Toxiproxy HTTP API.

Every operation validates its whole input before changing anything, raises `ApiError`
with Toxiproxy's message and status, and leaves the existing state untouched on error.
Runs on the data plane's event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from samantha.core.clock import Clock
from samantha.proxy.dataplane import Connection, start_listener
from samantha.proxy.toxics import MAX_NAME, Toxic, ToxicError, parse_toxic, update_toxic

log = logging.getLogger("samantha.proxy")

STREAM_ORDER = ("upstream", "downstream")  # Toxiproxy lists upstream toxics first


class ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)
TOXIC_EXISTS = ("toxic already exists", 409)


def _err(pair: tuple[str, int]) -> ApiError:
    return ApiError(*pair)


def _bad(reason: str) -> ApiError:
    return ApiError(f"bad request body: {reason}", 400)


def _missing(field: str) -> ApiError:
    return ApiError(f"missing required field: {field}", 400)


_ANY_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def parse_address(value: Any, field: str, *, listen: bool) -> tuple[str, int]:
    """'host:port' -> (host, port). Listen addresses are confined to loopback.

    A wildcard listen host (Toxiproxy's and chaostoolkit-toxiproxy's default 0.0.0.0) binds
    127.0.0.1 instead: a Cube never exposes a fault proxy beyond the machine.
    """
    if not isinstance(value, str) or ":" not in value:
        raise _bad(f"{field}: must be 'host:port', got {value!r}")
    host, _, port_s = value.rpartition(":")
    try:
        port = int(port_s)
    except ValueError:
        raise _bad(f"{field}: port must be an integer, got {port_s!r}") from None
    if not 0 <= port <= 65535 or (not listen and port == 0):
        raise _bad(f"{field}: port out of range: {port}")
    if listen:
        if host in _ANY_HOSTS or host == "localhost":
            return "127.0.0.1", port
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise _bad(f"{field}: host must be a loopback IP address, got {host!r}") from None
        if not ip.is_loopback:
            raise _bad(f"{field}: Samantha's proxy listens on loopback only, got {host!r}")
        return str(ip), port
    if not host:
        raise _bad(f"{field}: host is missing")
    return host.strip("[]"), port


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, clock: Clock) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.clock = clock
        self.toxics: dict[str, Toxic] = {}
        self._chains: dict[str, list[Toxic]] = {s: [] for s in STREAM_ORDER}
        self.connections: set[Connection] = set()
        self.server: asyncio.Server | None = None

    @property
    def enabled(self) -> bool:
        return self.server is not None

    def chain(self, direction: str) -> list[Toxic]:
        return self._chains[direction]

    def has_toxics(self, direction: str) -> bool:
        return bool(self._chains[direction])

    def upstream_addr(self) -> tuple[str, int]:
        return parse_address(self.upstream, "upstream", listen=False)

    def toxics_changed(self) -> None:
        self._chains = {s: [t for t in self.toxics.values() if t.spec.acts_on == s] for s in STREAM_ORDER}
        for conn in list(self.connections):
            if conn.server is not None:
                conn.upstream.sync()
                conn.downstream.sync()

    def toxic_list(self) -> list[dict[str, Any]]:
        return [t.to_json() for s in STREAM_ORDER for t in self.toxics.values() if t.spec.stream.lower() == s]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": self.toxic_list()}

    async def start(self) -> None:
        if self.server is not None:
            return
        host, port = parse_address(self.listen, "listen", listen=True)
        try:
            self.server = await start_listener(self, host, port)
        except OSError as e:
            raise ApiError(f"listen {host}:{port}: {e.strerror or e}", 409) from None
        bound = self.server.sockets[0].getsockname()
        self.listen = f"{host}:{bound[1]}" if ":" not in host else f"[{host}]:{bound[1]}"
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        """Close the listener and every connection (a disabled proxy is 'down')."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.connections):
            conn.close()


_PROXY_KEYS = {"name", "listen", "upstream", "enabled", "toxics"}  # 'toxics' (from a GET) is ignored


def _proxy_input(body: Any, where: str = "") -> tuple[str, str, str, bool]:
    if not isinstance(body, dict):
        raise _bad(f"{where}expected a JSON object")
    unknown = sorted(set(body) - _PROXY_KEYS)
    if unknown:
        raise _bad(f"{where}{unknown[0]}: unknown field (allowed: name, listen, upstream, enabled)")
    name = body.get("name")
    if not name:
        raise _missing(f"name{' at ' + where.rstrip(': ') if where else ''}")
    if not isinstance(name, str) or len(name) > MAX_NAME or "/" in name:
        raise _bad(f"{where}name: must be a string of at most {MAX_NAME} characters without '/'")
    upstream = body.get("upstream")
    if not upstream:
        raise _missing(f"upstream{' at ' + where.rstrip(': ') if where else ''}")
    parse_address(upstream, f"{where}upstream", listen=False)
    listen = body.get("listen") or "127.0.0.1:0"
    host, port = parse_address(listen, f"{where}listen", listen=True)
    enabled = body.get("enabled", True)
    if enabled is None:
        enabled = True
    if not isinstance(enabled, bool):
        raise _bad(f"{where}enabled: must be true or false")
    return name, f"{host}:{port}", upstream, enabled


class Registry:
    def __init__(self, clock: Clock, *, strict: bool = False) -> None:
        self.clock = clock
        self.strict = strict  # every request strict (`--strict`), not only those that ask for it
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise _err(PROXY_NOT_FOUND)
        return proxy

    # --- proxies ---------------------------------------------------------
    def list_json(self) -> dict[str, Any]:
        return {name: p.to_json() for name, p in self.proxies.items()}

    async def create(self, body: Any) -> dict[str, Any]:
        name, listen, upstream, enabled = _proxy_input(body)
        async with self._lock:
            if name in self.proxies:
                raise _err(PROXY_EXISTS)
            proxy = Proxy(name, listen, upstream, self.clock)
            if enabled:
                await proxy.start()
            self.proxies[name] = proxy
            return proxy.to_json()

    async def populate(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise _bad("expected a JSON array of proxies")
        inputs, seen = [], set()
        for i, item in enumerate(body):
            parsed = _proxy_input(item, where=f"proxy {i + 1}: ")
            if parsed[0] in seen:
                raise _bad(f"proxy {i + 1}: duplicate proxy name {parsed[0]!r}")
            seen.add(parsed[0])
            inputs.append(parsed)
        out = []
        async with self._lock:
            for name, listen, upstream, enabled in inputs:
                existing = self.proxies.get(name)
                if existing is not None and existing.listen == listen and existing.upstream == upstream:
                    out.append(existing.to_json())
                    continue
                if existing is not None:
                    existing.stop()
                    del self.proxies[name]
                proxy = Proxy(name, listen, upstream, self.clock)
                if enabled:
                    await proxy.start()
                self.proxies[name] = proxy
                out.append(proxy.to_json())
        return out

    async def update(self, name: str, body: Any) -> dict[str, Any]:
        async with self._lock:
            proxy = self.get(name)
            if not isinstance(body, dict):
                raise _bad("expected a JSON object")
            unknown = sorted(set(body) - _PROXY_KEYS)
            if unknown:
                raise _bad(f"{unknown[0]}: unknown field (allowed: listen, upstream, enabled)")
            if body.get("name") not in (None, "", name):
                raise _bad("name: a proxy cannot be renamed (delete and re-create it)")
            listen, upstream = proxy.listen, proxy.upstream
            if body.get("listen"):
                host, port = parse_address(body["listen"], "listen", listen=True)
                listen = f"{host}:{port}"
            if body.get("upstream"):
                parse_address(body["upstream"], "upstream", listen=False)
                upstream = body["upstream"]
            enabled = body.get("enabled", proxy.enabled)
            if not isinstance(enabled, bool):
                raise _bad("enabled: must be true or false")
            if listen != proxy.listen or upstream != proxy.upstream:
                was = proxy.enabled
                proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
                enabled = enabled if "enabled" in body else was
            if enabled:
                await proxy.start()
            else:
                proxy.stop()
            return proxy.to_json()

    async def delete(self, name: str) -> None:
        async with self._lock:
            self.get(name).stop()
            del self.proxies[name]

    async def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        async with self._lock:
            for proxy in self.proxies.values():
                proxy.toxics.clear()
                proxy.toxics_changed()
            for proxy in self.proxies.values():
                await proxy.start()

    # --- toxics ----------------------------------------------------------
    def _deadline(self, ttl_s: float | None) -> tuple[float | None, float | None]:
        if ttl_s is None:
            return None, None
        return self.clock.monotonic() + ttl_s, self.clock.time() + ttl_s

    def toxic_get(self, proxy_name: str, toxic_name: str) -> Toxic:
        toxic = self.get(proxy_name).toxics.get(toxic_name)
        if toxic is None:
            raise _err(TOXIC_NOT_FOUND)
        return toxic

    async def toxic_create(self, proxy_name: str, body: Any, *, strict: bool = False) -> dict[str, Any]:
        async with self._lock:
            proxy = self.get(proxy_name)
            try:
                spec = parse_toxic(body, strict=strict or self.strict)
            except ToxicError as e:
                raise ApiError(e.message, e.status) from None
            if spec.name in proxy.toxics:
                raise _err(TOXIC_EXISTS)
            toxic = Toxic(spec, *self._deadline(spec.ttl_s))
            proxy.toxics[spec.name] = toxic
            proxy.toxics_changed()
            log.info("toxic %s (%s, %s) added to %s", spec.name, spec.type, spec.stream, proxy_name)
            return toxic.to_json()

    async def toxic_update(self, proxy_name: str, toxic_name: str, body: Any, *,
                           strict: bool = False) -> dict[str, Any]:
        async with self._lock:
            proxy = self.get(proxy_name)
            old = self.toxic_get(proxy_name, toxic_name)
            try:
                spec, ttl_reset = update_toxic(old.spec, body, strict=strict or self.strict)
            except ToxicError as e:
                raise ApiError(e.message, e.status) from None
            deadline, expires = self._deadline(spec.ttl_s) if ttl_reset else (old.deadline, old.expires_at)
            toxic = Toxic(spec, deadline, expires)
            proxy.toxics[toxic_name] = toxic  # same position in the chain
            proxy.toxics_changed()
            return toxic.to_json()

    async def toxic_delete(self, proxy_name: str, toxic_name: str) -> None:
        async with self._lock:
            proxy = self.get(proxy_name)
            self.toxic_get(proxy_name, toxic_name)
            del proxy.toxics[toxic_name]
            proxy.toxics_changed()

    async def expire_due(self) -> list[tuple[str, str]]:
        """Remove every toxic whose ttl has run out; returns (proxy, toxic) pairs removed."""
        now = self.clock.monotonic()
        removed = []
        async with self._lock:
            for proxy in self.proxies.values():
                due = [n for n, t in proxy.toxics.items() if t.deadline is not None and t.deadline <= now]
                for n in due:
                    del proxy.toxics[n]
                    removed.append((proxy.name, n))
                    log.info("toxic %s on proxy %s expired (ttl) and was removed", n, proxy.name)
                if due:
                    proxy.toxics_changed()
        return removed

    def stop_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
