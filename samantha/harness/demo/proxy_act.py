"""Act: the embedded fault proxy. Toxiproxy's API with no extra binary, plus faults that expire by themselves."""

from __future__ import annotations

import statistics
import time

import httpx

from samantha.cube.proxy_client import ProxyClient
from samantha.harness.proxy_process import spawn_echo_upstream
from samantha.proxy import start_proxy_server

TITLE = "Fault proxy: Toxiproxy API, HTTP errors, faults with a time-to-live"


def _sample(url: str, n: int) -> tuple[float, float]:
    """(p50 latency ms, fraction of non-200) over n keep-alive requests."""
    lat, bad = [], 0
    with httpx.Client(timeout=5) as http:
        for _ in range(n):
            t0 = time.perf_counter()
            r = http.get(url)
            lat.append((time.perf_counter() - t0) * 1000)
            bad += r.status_code != 200
    return statistics.median(lat), bad / n


def run(ctx) -> None:
    con = ctx.console
    n = 20 if ctx.fast else 100
    n_faulty, ttl = (15, 2.5) if ctx.fast else (40, 6.0)  # sampling ends well before the ttl
    with spawn_echo_upstream() as upstream, start_proxy_server(0) as server, ProxyClient(server.url) as client:
        p = client.create_proxy("slot_a", f"127.0.0.1:{upstream.value}")
        url = f"http://127.0.0.1:{p.listen_port}/infer"
        con.print(f"proxy server {server.url} (Toxiproxy v2 API); slot_a {p.listen} -> {p.upstream}")
        p50, err = _sample(url, n)
        con.print(f"  clean:             p50 {p50:6.1f} ms, errors {err:.0%}")
        client.add_toxic("slot_a", "latency", {"latency": 80}, ttl_s=ttl)
        client.add_toxic("slot_a", "http_error", {"status_code": 503}, toxicity=0.3, ttl_s=ttl)
        p50_bad, err_bad = _sample(url, n_faulty)
        con.print(f"  latency 80 ms + 30% HTTP 503, ttl {ttl:g} s: p50 {p50_bad:6.1f} ms, errors {err_bad:.0%}")
        deadline = time.monotonic() + ttl + 3
        while client.toxics("slot_a") and time.monotonic() < deadline:
            time.sleep(0.05)
        left = client.toxics("slot_a")
        p50_after, err_after = _sample(url, n)
        con.print(f"  after the ttl:     p50 {p50_after:6.1f} ms, errors {err_after:.0%}, toxics left: {len(left)}")
        if left or p50_bad < 75 or err_after:
            raise RuntimeError("the proxy did not inject or did not expire its faults")
        ctx.facts["proxy: faults injected then self-expired"] = f"p50 {p50:.1f} -> {p50_bad:.1f} -> {p50_after:.1f} ms"
        _toxiproxy_rules(con, server.url)


def _toxiproxy_rules(con, base: str) -> None:
    """A document toxiproxy-server accepts (a typo'd key it ignores, a negative jitter) is accepted the same
    way; Samantha's own client asks for strict reading, which refuses it."""
    from samantha.proxy.http_api import STRICT_HEADER

    doc = {"type": "latency", "attributes": {"latency": 20, "jitter": -5, "latncy": 80}}
    with httpx.Client(base_url=base, timeout=5) as http:
        plain = http.post("/proxies/slot_a/toxics", json=doc)
        strict = http.post("/proxies/slot_a/toxics", json={**doc, "name": "strict"}, headers={STRICT_HEADER: "1"})
        if plain.status_code == 200:
            http.delete(f"/proxies/slot_a/toxics/{plain.json()['name']}")
    con.print(f"  a document toxiproxy-server accepts (unknown key 'latncy', jitter -5): HTTP {plain.status_code} "
              f"{plain.json().get('attributes', plain.json())}", markup=False, highlight=False)
    con.print(f"  the same with {STRICT_HEADER}: 1 (Samantha's planner): HTTP {strict.status_code} "
              f"{strict.json().get('error', strict.json())}", markup=False, highlight=False)
    if plain.status_code != 200 or strict.status_code != 400:
        raise RuntimeError("the proxy's Toxiproxy-compatible or strict reading is broken")
