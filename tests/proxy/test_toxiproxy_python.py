"""Samantha's proxy driven by the real toxiproxy-python client, with effects seen on real traffic."""

from __future__ import annotations

import statistics
import time

import pytest
import requests
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

pytestmark = pytest.mark.timeout(60)


def _get_ms(session: requests.Session, url: str) -> float:
    t0 = time.perf_counter()
    r = session.get(url, timeout=5)
    assert r.status_code == 200
    return (time.perf_counter() - t0) * 1000


def test_create_list_latency_and_cleanup(toxi, upstream):
    assert b"version" in toxi.version()
    proxy = toxi.create(upstream=upstream, name="slot_a")
    assert proxy.enabled is True
    port = int(proxy.listen.rsplit(":", 1)[1])
    assert port > 0
    assert set(toxi.proxies()) == {"slot_a"}
    with pytest.raises(ProxyExists):
        toxi.create(upstream=upstream, name="slot_a")

    url = f"http://127.0.0.1:{port}/"
    s = requests.Session()
    base = statistics.median(_get_ms(s, url) for _ in range(5))
    proxy.add_toxic(type="latency", attributes={"latency": 120, "jitter": 0})
    assert set(proxy.toxics()) == {"latency_downstream"}
    slow = statistics.median(_get_ms(s, url) for _ in range(5))  # same keep-alive connection
    assert 110 <= slow - base <= 220, (base, slow)

    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    after = statistics.median(_get_ms(s, url) for _ in range(5))
    assert after < 60, after

    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", attributes={"latency": "fast"})
    assert toxi.destroy(proxy) is True
    with pytest.raises(NotFound):
        proxy.destroy()


def test_large_transfers_arrive_intact_with_backpressure(toxi, upstream):
    proxy = toxi.create(upstream=upstream, name="bulk")
    url = f"http://127.0.0.1:{proxy.listen.rsplit(':', 1)[1]}"
    s = requests.Session()
    assert len(s.get(url + "/bytes/8000000", timeout=20).content) == 8_000_000  # fast path
    proxy.add_toxic(type="latency", attributes={"latency": 5})
    payload = bytes(range(256)) * 20_000  # 5 MB each way through the queued path
    assert s.post(url + "/echo", data=payload, timeout=20).content == payload
    proxy.disable()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/", timeout=3)
    proxy.enable()
    assert requests.get(url + "/", timeout=3).text == "hello"
