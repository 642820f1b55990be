"""Toxic time-to-live: a forgotten fault cannot outlive its experiment."""

from __future__ import annotations

import asyncio
import time

import pytest
import requests
from toxiproxy import Toxiproxy

from samantha.core.clock import SimClock
from samantha.proxy.registry import Registry
from tests.proxy.rawhttp import exchange, get


def test_ttl_expiry_with_sim_clock(sim_clock: SimClock):
    async def scenario() -> None:
        reg = Registry(sim_clock)
        await reg.create({"name": "p", "upstream": "127.0.0.1:9", "enabled": False})
        await reg.toxic_create("p", {"type": "latency", "name": "short", "ttl_s": 30})
        await reg.toxic_create("p", {"type": "latency", "name": "via_attrs", "attributes": {"ttl_s": 60}})
        await reg.toxic_create("p", {"type": "latency", "name": "forever"})
        shown = reg.toxic_get("p", "short").to_json()
        assert shown["attributes"]["ttl_s"] == 30 and shown["expires_at"] == pytest.approx(sim_clock.time() + 30)
        sim_clock.advance(29.9)
        assert await reg.expire_due() == []
        sim_clock.advance(0.2)
        assert await reg.expire_due() == [("p", "short")]
        # an update that sets ttl_s restarts the countdown; one that does not keeps it
        await reg.toxic_update("p", "via_attrs", {"ttl_s": 100})
        sim_clock.advance(50)
        assert await reg.expire_due() == []
        await reg.toxic_update("p", "via_attrs", {"toxicity": 0.5})
        sim_clock.advance(50)
        assert await reg.expire_due() == [("p", "via_attrs")]
        sim_clock.advance(10**6)
        assert await reg.expire_due() == []
        assert list(reg.get("p").toxics) == ["forever"]

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_ttl_expires_for_real_through_toxiproxy_python(toxi: Toxiproxy, upstream, proxy_server):
    proxy = toxi.create(upstream=upstream, name="slot_a")
    port = int(proxy.listen.rsplit(":", 1)[1])
    # toxiproxy-python only sends attributes, so ttl_s rides there
    proxy.add_toxic(type="latency", attributes={"latency": 250, "ttl_s": 0.8})
    assert exchange(port, get("/", close=True)).elapsed_s >= 0.24
    deadline = time.monotonic() + 5
    while proxy.toxics() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.toxics() == {}
    assert exchange(port, get("/", close=True)).elapsed_s < 0.15
    assert requests.get(proxy_server.url + "/proxies/slot_a").json()["toxics"] == []
