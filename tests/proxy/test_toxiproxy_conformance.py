"""Toxiproxy conformance: documents toxiproxy-server accepts are accepted with Go's defaults and
meaning (permissive, the default); `X-Samantha-Strict: 1` keeps the strict refusals. Real HTTP."""

from __future__ import annotations

import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from samantha.proxy.toxics import ToxicError, parse_toxic, slicer_is_safe

pytestmark = pytest.mark.timeout(60)

# (document, status, stored attributes or error text) as toxiproxy-server answers (toxics/*.go, api.go)
ROWS = [
    ({"type": "latency"}, 200, {"latency": 0, "jitter": 0}),
    ({"type": "latency", "attributes": {"latency": -5, "jitter": -3}}, 200, {"latency": -5, "jitter": -3}),
    ({"type": "latency", "attributes": {"Latency": 7, "colour": 1}}, 200, {"latency": 7, "jitter": 0}),
    ({"type": "latency", "attributes": {"latency": 1.5}}, 400,
     "bad request body: json: cannot unmarshal number 1.5 into Go struct field LatencyToxic.attributes.latency of type int64"),
    ({"type": "bandwidth", "attributes": {"rate": 0}}, 200, {"rate": 0}),
    ({"type": "bandwidth"}, 200, {"rate": 0}),
    ({"type": "bandwidth", "attributes": {"rate": -1}}, 400, "attributes.rate: -1 is negative"),
    ({"type": "slow_close", "attributes": {"delay": -1}}, 200, {"delay": -1}),
    ({"type": "timeout", "attributes": {"timeout": -10}}, 200, {"timeout": -10}),
    ({"type": "reset_peer"}, 200, {"timeout": 0}),
    ({"type": "slicer", "attributes": {"average_size": 4, "size_variation": 9}}, 400, "never finishes slicing"),
    ({"type": "slicer"}, 400, "never finishes slicing"),
    ({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 3, "delay": -2}}, 200,
     {"average_size": 10, "size_variation": 3, "delay": -2}),
    ({"type": "limit_data", "attributes": {"bytes": -1}}, 200, {"bytes": -1}),
    ({"type": "noop", "unknown_field": True}, 200, {}),
    ({"type": "latency", "toxicity": 2.5}, 200, {"latency": 0, "jitter": 0}),
    ({"type": "latency", "stream": "UPSTREAM"}, 200, {"latency": 0, "jitter": 0}),
    ({"type": "latency", "stream": ""}, 400, "stream was invalid, can be either upstream or downstream"),
    ({"type": "teleport"}, 400, "invalid toxic type"),
    ({"type": 5}, 400, "bad request body: json: cannot unmarshal number 5 into Go struct field ToxicWrapper.type of type string"),
]


@pytest.mark.parametrize(("doc", "status", "expect"), ROWS)
def test_toxic_documents_as_toxiproxy_server_answers(proxy_server, upstream, doc, status, expect):
    u = proxy_server.url
    requests.post(u + "/proxies", json={"name": "p", "upstream": upstream}).raise_for_status()
    r = requests.post(u + "/proxies/p/toxics", json=doc)
    assert r.status_code == status, r.text
    if status == 200:
        body = r.json()
        assert body["attributes"] == expect
        stream = doc.get("stream", "downstream")
        assert body["stream"] == stream and body["name"] == f"{doc['type']}_{stream}"
        assert body["toxicity"] == doc.get("toxicity", 1.0)
        assert requests.get(u + f"/proxies/p/toxics/{body['name']}").json() == body
    else:  # Go's http.Error: compact JSON, a newline, text/plain
        assert r.headers["content-type"] == "text/plain; charset=utf-8" and r.text.endswith("}\n")
        assert r.json() == {"error": expect, "status": status} or expect in r.json()["error"]


def test_strict_header_refuses_what_permissive_accepts(proxy_server, upstream):
    u = proxy_server.url
    requests.post(u + "/proxies", json={"name": "p", "upstream": upstream}).raise_for_status()
    strict = {"X-Samantha-Strict": "1"}
    for doc, field in [({"type": "latency", "attributes": {"latancy": 5}}, "attributes.latancy"),
                       ({"type": "latency", "attributes": {"latency": -5}}, "attributes.latency"),
                       ({"type": "latency", "toxicity": 2}, "toxicity")]:
        r = requests.post(u + "/proxies/p/toxics", json=doc, headers=strict)
        assert r.status_code == 400 and field in r.json()["error"]
    assert requests.get(u + "/proxies/p/toxics").json() == []


def test_update_keeps_fields_it_does_not_name(proxy_server, upstream):
    u = proxy_server.url
    requests.post(u + "/proxies", json={"name": "p", "upstream": upstream}).raise_for_status()
    requests.post(u + "/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 9}}).raise_for_status()
    r = requests.patch(u + "/proxies/p/toxics/latency_downstream", json={"attributes": {"jitter": -1}, "junk": 1})
    assert r.status_code == 200 and r.json()["attributes"] == {"latency": 9, "jitter": -1}


def test_negative_latency_forwards_without_delay(proxy_server, upstream):
    from tests.proxy.rawhttp import exchange, get

    u = proxy_server.url
    info = requests.post(u + "/proxies", json={"name": "p", "upstream": upstream}).json()
    requests.post(u + "/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": -500, "jitter": -9}})
    ex = exchange(int(info["listen"].rsplit(":", 1)[1]), get("/", close=True))
    assert ex.data.startswith(b"HTTP/1.1 200") and ex.elapsed_s < 0.4


def test_bandwidth_rate_zero_holds_data_until_the_toxic_goes_then_delivers_it(proxy_server, upstream):
    """Go's BandwidthToxic with rate 0 (its default) passes nothing; removing it flushes what it held."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.proxy.rawhttp import exchange, get

    u = proxy_server.url
    info = requests.post(u + "/proxies", json={"name": "p", "upstream": upstream}).json()
    requests.post(u + "/proxies/p/toxics", json={"type": "bandwidth"}).raise_for_status()
    port = int(info["listen"].rsplit(":", 1)[1])
    with ThreadPoolExecutor(1) as pool:
        held = exchange(port, get("/", close=True), timeout=0.8)
        assert held.data == b"" and held.timed_out
        later = pool.submit(exchange, port, get("/", close=True), timeout=5.0)
        time.sleep(0.5)
        assert not later.done()
        requests.delete(u + "/proxies/p/toxics/bandwidth_downstream").raise_for_status()
        ex = later.result(timeout=10)
    assert ex.data.startswith(b"HTTP/1.1 200") and ex.closed


GO_INT = st.integers(-(2**63), 2**63 - 1)


@given(st.sampled_from(["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "limit_data", "noop"]),
       st.dictionaries(st.text(max_size=8), GO_INT, max_size=4), st.floats(-1e30, 1e30),
       st.sampled_from(["upstream", "Downstream", None]))
def test_permissive_parser_accepts_every_go_valid_document(kind, attrs, toxicity, stream):
    if kind == "bandwidth":  # a negative rate is refused (Go would crash): see the row above
        attrs = {k: v for k, v in attrs.items() if k.lower() != "rate"}
    doc = {"type": kind, "attributes": attrs, "toxicity": toxicity, "stream": stream, "extra": [1]}
    spec = parse_toxic(doc, strict=False)
    assert spec.type == kind and spec.toxicity == toxicity


@given(st.text(min_size=1, max_size=10).filter(lambda k: k not in {"name", "type", "stream", "toxicity",
                                                                    "attributes", "ttl_s"}))
def test_strict_mode_rejects_any_unknown_field(key):
    with pytest.raises(ToxicError, match="unknown field"):
        parse_toxic({"type": "latency", key: 1}, strict=True)


@given(st.integers(-50, 50), st.integers(-50, 0))
def test_slicer_without_variation_is_safe_exactly_when_go_halving_ends(avg, var):
    # Go halves a packet while len - avg > var; halving reaches len 1, so it ends iff 1 - avg <= var
    assert slicer_is_safe(avg, var) == (1 - avg <= var)
