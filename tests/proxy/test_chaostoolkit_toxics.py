"""Every toxic type, created through the real chaostoolkit-toxiproxy actions, observed on real traffic."""

from __future__ import annotations

import time

import pytest
import requests
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.proxy import probes as proxy_probes
from chaostoxi.toxic import actions as toxic_actions

from tests.proxy.rawhttp import exchange, get

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ctk(proxy_server, upstream):
    """A chaostoolkit configuration pointing at our server, with one proxy 'slot' created by the action."""
    configuration = {"toxiproxy_host": proxy_server.host, "toxiproxy_port": proxy_server.port}
    host, port = upstream.split(":")
    assert proxy_actions.create_proxy("slot", host, int(port), listen_host="127.0.0.1",
                                      configuration=configuration) is True
    configuration["port"] = int(configuration["slot_PORT"])
    yield configuration
    proxy_actions.delete_proxy("slot", configuration=configuration)


def test_probes_and_enable_disable(ctk):
    port = ctk["port"]
    assert proxy_probes.proxy_exist("slot", configuration=ctk) is True
    assert proxy_probes.proxy_exist("nope", configuration=ctk) is False
    assert proxy_probes.get_proxy_attribute("slot", "enabled", configuration=ctk) is True
    assert exchange(port, get("/", close=True)).data.startswith(b"HTTP/1.1 200")

    # An open keep-alive connection is cut when the proxy is disabled, and new ones are refused.
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(get("/"))
    got = b""
    while not got.endswith(b"hello"):
        got += s.recv(1000)
    assert got.startswith(b"HTTP/1.1 200")
    assert proxy_actions.disable_proxy("slot", configuration=ctk) is True
    assert s.recv(1000) == b""
    s.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    assert proxy_actions.enable_proxy("slot", configuration=ctk) is True
    assert exchange(port, get("/", close=True)).data.startswith(b"HTTP/1.1 200")


def test_latency(ctk):
    assert toxic_actions.create_latency_toxic("slot", "lag", latency=150, jitter=10, configuration=ctk)
    ex = exchange(ctk["port"], get("/", close=True))
    assert ex.data.startswith(b"HTTP/1.1 200")
    assert 0.13 <= ex.elapsed_s <= 0.6, ex.elapsed_s
    assert toxic_actions.delete_toxic("slot", "lag", configuration=ctk)
    assert exchange(ctk["port"], get("/", close=True)).elapsed_s < 0.1


def test_bandwidth_bounds_throughput(ctk):
    size = 60_000
    fast = exchange(ctk["port"], get(f"/bytes/{size}", close=True))
    assert len(fast.body) == size
    assert toxic_actions.create_bandwith_degradation_toxic("slot", "thin", rate=100, configuration=ctk)  # 100 KB/s
    slow = exchange(ctk["port"], get(f"/bytes/{size}", close=True), timeout=5)
    assert len(slow.body) == size
    rate = size / slow.elapsed_s
    assert rate <= 100_000 * 1.15, rate  # bounded by the configured rate
    assert slow.elapsed_s >= 0.45 > fast.elapsed_s


def test_slow_close_delays_the_close(ctk):
    base = exchange(ctk["port"], get("/close"))
    assert base.closed and base.eof_after_s < 0.2
    assert toxic_actions.create_slow_connection_close_toxic("slot", "linger", delay=400, configuration=ctk)
    slow = exchange(ctk["port"], get("/close"))
    assert slow.data.startswith(b"HTTP/1.1 200") and slow.closed
    assert slow.eof_after_s >= 0.38, slow.eof_after_s


def test_timeout_stalls_then_closes(ctk):
    assert toxic_actions.create_timeout_toxic("slot", "hang", timeout=300, configuration=ctk)
    ex = exchange(ctk["port"], get("/"), timeout=3)
    assert ex.data == b"" and ex.closed
    assert 0.25 <= ex.eof_after_s <= 1.5, ex.eof_after_s
    assert toxic_actions.delete_toxic("slot", "hang", configuration=ctk)
    # timeout 0: data stalls and the connection stays open
    assert toxic_actions.create_timeout_toxic("slot", "stall", timeout=0, configuration=ctk)
    ex = exchange(ctk["port"], get("/"), timeout=0.6)
    assert ex.data == b"" and ex.timed_out and not ex.closed


def test_reset_peer_resets(ctk):
    assert toxic_actions.create_toxic("slot", "rst", "reset_peer", stream="upstream",
                                      attributes={"timeout": 0}, configuration=ctk)
    ex = exchange(ctk["port"], get("/"), timeout=3)
    assert ex.reset and ex.data == b""
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{ctk['port']}/", timeout=3)


def test_slicer_fragments_arrive_intact(ctk):
    assert toxic_actions.create_slicer_toxic("slot", "slice", average_size=16, size_variation=8,
                                             delay=15_000, configuration=ctk)
    ex = exchange(ctk["port"], get("/bytes/400", close=True), timeout=5)
    assert ex.closed and ex.body == b"x" * 400
    assert len(ex.reads) >= 10, ex.reads  # arrived in many small pieces
    assert max(ex.reads) <= 64, ex.reads


def test_limit_data_closes_after_n_bytes(ctk):
    assert toxic_actions.create_limiter_toxic("slot", "cap", bytes_limit=50, configuration=ctk)
    ex = exchange(ctk["port"], get("/bytes/5000"), timeout=3)
    assert ex.closed and len(ex.data) == 50
    assert ex.data.startswith(b"HTTP/1.1 200")


def test_http_error_answers_a_fraction(ctk):
    assert toxic_actions.create_toxic("slot", "e503", "http_error", stream="upstream", toxicity=0.3,
                                      attributes={"status_code": 503}, configuration=ctk)
    s = requests.Session()  # keep-alive: failed requests must not desynchronise the connection
    url = f"http://127.0.0.1:{ctk['port']}"
    codes = []
    for i in range(300):
        if i % 2:
            r = s.post(url + "/echo", data=f"payload-{i}", timeout=5)
            if r.status_code == 200:
                assert r.text == f"payload-{i}"
        else:
            r = s.get(url + "/", timeout=5)
            if r.status_code == 200:
                assert r.text == "hello"
        codes.append(r.status_code)
    assert set(codes) == {200, 503}
    frac = codes.count(503) / len(codes)
    assert 0.2 <= frac <= 0.4, frac
    r503 = next(r for r in [s.get(url + "/", timeout=5) for _ in range(50)] if r.status_code == 503)
    assert r503.json()["status"] == 503 and r503.headers["X-Samantha-Fault"] == "http_error"


def test_toxicity_zero_is_harmless_and_reset_clears(ctk):
    assert toxic_actions.create_toxic("slot", "never", "latency", toxicity=0.0,
                                      attributes={"latency": 500}, configuration=ctk)
    assert exchange(ctk["port"], get("/", close=True)).elapsed_s < 0.2
    assert toxic_actions.create_latency_toxic("slot", "lag", latency=300, configuration=ctk)
    assert proxy_actions.disable_proxy("slot", configuration=ctk)
    assert proxy_actions.reset(configuration=ctk) is True  # re-enables and removes all toxics
    assert proxy_probes.get_proxy_attribute("slot", "enabled", configuration=ctk) is True
    assert proxy_probes.get_proxy_attribute("slot", "toxics", configuration=ctk) == []
    t0 = time.perf_counter()
    assert exchange(ctk["port"], get("/", close=True)).data.startswith(b"HTTP/1.1 200")
    assert time.perf_counter() - t0 < 0.2
