"""The control API: Toxiproxy's status codes and error bodies, bad input, populate, the typed client."""

from __future__ import annotations

import pytest
import requests

from samantha.cube.proxy_client import AlreadyExists, InvalidRequest, NotFound

pytestmark = pytest.mark.timeout(60)


def test_shapes_and_status_codes(proxy_server, upstream):
    u = proxy_server.url
    r = requests.post(u + "/proxies", json={"name": "a", "upstream": upstream, "listen": "127.0.0.1:0"})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"} and body["toxics"] == []
    r = requests.post(u + "/proxies/a/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    assert r.status_code == 200
    assert r.json() == {"attributes": {"latency": 5, "jitter": 0}, "name": "latency_downstream",
                        "type": "latency", "stream": "downstream", "toxicity": 1.0}
    assert requests.get(u + "/proxies/a/toxics/latency_downstream").json()["name"] == "latency_downstream"
    r = requests.patch(u + "/proxies/a/toxics/latency_downstream", json={"attributes": {"jitter": 2}, "toxicity": 0.5})
    assert r.status_code == 200 and r.json()["attributes"] == {"latency": 5, "jitter": 2}
    assert r.json()["toxicity"] == 0.5
    assert requests.get(u + "/proxies").json()["a"]["toxics"][0]["toxicity"] == 0.5
    assert requests.delete(u + "/proxies/a/toxics/latency_downstream").status_code == 204
    assert requests.post(u + "/reset").status_code == 204
    assert requests.delete(u + "/proxies/a").status_code == 204


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), [
    ("GET", "/proxies/ghost", None, 404, "proxy not found"),
    ("DELETE", "/proxies/ghost", None, 404, "proxy not found"),
    ("POST", "/proxies", {"name": "p"}, 400, "missing required field: upstream"),
    ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
    ("POST", "/proxies", {"name": "p", "upstream": "nohost"}, 400, "upstream: must be 'host:port'"),
    ("POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1", "listen": "8.8.8.8:0"}, 400, "loopback only"),
    ("POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1", "enabled": "yes"}, 400, "enabled"),
    ("POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1", "colour": 1}, 400, "colour: unknown field"),
    ("POST", "/proxies", "not json", 400, "bad request body"),
    ("POST", "/proxies", [1, 2], 400, "expected a JSON object"),
    ("POST", "/proxies", {"name": "base", "upstream": "127.0.0.1:1"}, 409, "proxy already exists"),
    ("GET", "/proxies/base/toxics/ghost", None, 404, "toxic not found"),
    ("DELETE", "/proxies/base/toxics/ghost", None, 404, "toxic not found"),
    ("POST", "/proxies/ghost/toxics", {"type": "latency"}, 404, "proxy not found"),
    ("POST", "/proxies/base/toxics", {"type": "teleport"}, 400, "invalid toxic type"),
    ("POST", "/proxies/base/toxics", {"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
    ("POST", "/proxies/base/toxics", {"type": "latency", "toxicity": 2}, 400, "toxicity"),
    ("POST", "/proxies/base/toxics", {"type": "latency", "attributes": {"latency": -5}}, 400, "attributes.latency"),
    ("POST", "/proxies/base/toxics", {"type": "latency", "attributes": {"latancy": 5}}, 400, "attributes.latancy: unknown"),
    ("POST", "/proxies/base/toxics", {"type": "slicer", "attributes": {"average_size": 4, "size_variation": 9}}, 400, "size_variation"),
    ("POST", "/proxies/base/toxics", {"type": "http_error", "attributes": {"status_code": 200}}, 400, "status_code"),
    ("POST", "/proxies/base/toxics", {"type": "latency", "ttl_s": -1}, 400, "ttl_s"),
    ("POST", "/proxies/base/toxics", {"type": "latency", "name": "dup"}, 409, "toxic already exists"),
    ("POST", "/populate", {"name": "x"}, 400, "expected a JSON array"),
    ("POST", "/populate", [{"name": "x", "upstream": "127.0.0.1:1"}, {"name": "x", "upstream": "127.0.0.1:2"}], 400, "duplicate"),
    ("GET", "/nowhere", None, 404, "route not found"),
    ("PUT", "/proxies", None, 405, "method not allowed"),
])
def test_bad_requests_get_4xx_with_reason_and_server_keeps_running(proxy_server, upstream, method, path, body, status, error):
    u = proxy_server.url
    requests.post(u + "/proxies", json={"name": "base", "upstream": upstream}).raise_for_status()
    requests.post(u + "/proxies/base/toxics", json={"type": "latency", "name": "dup"}).raise_for_status()
    kw = {"data": body} if isinstance(body, str) else {"json": body} if body is not None else {}
    r = requests.request(method, u + path, headers={"X-Samantha-Strict": "1"}, **kw)  # strict mode
    assert r.status_code == status, r.text
    assert r.json()["status"] == status
    assert error in r.json()["error"], r.json()
    # nothing already stored was lost, and the server still answers
    state = requests.get(u + "/proxies").json()
    assert set(state) == {"base"} and [t["name"] for t in state["base"]["toxics"]] == ["dup"]


def test_populate_creates_keeps_and_replaces(proxy_server, upstream):
    u = proxy_server.url
    r = requests.post(u + "/populate", json=[{"name": "a", "upstream": upstream, "listen": "127.0.0.1:0"},
                                              {"name": "b", "upstream": upstream, "enabled": False}])
    assert r.status_code == 201
    got = {p["name"]: p for p in r.json()["proxies"]}
    assert got["a"]["enabled"] and not got["b"]["enabled"]
    requests.post(u + "/proxies/a/toxics", json={"type": "latency"}).raise_for_status()
    # identical listen/upstream: kept as is, toxics included
    r = requests.post(u + "/populate", json=[{"name": "a", "upstream": upstream, "listen": got["a"]["listen"]}])
    assert r.json()["proxies"][0]["toxics"][0]["type"] == "latency"
    # a failed populate changes nothing
    r = requests.post(u + "/populate", json=[{"name": "c", "upstream": upstream}, {"name": "d"}])
    assert r.status_code == 400 and "upstream at proxy 2" in r.json()["error"]
    assert set(requests.get(u + "/proxies").json()) == {"a", "b"}


def test_typed_client(client, upstream):
    assert client.server_enforces_ttl() is True
    p = client.create_proxy("slot_a", upstream)
    assert p.enabled and p.listen_port > 0
    with pytest.raises(AlreadyExists):
        client.create_proxy("slot_a", upstream)
    t = client.add_toxic("slot_a", "http_error", {"status_code": 500}, toxicity=0.25, ttl_s=60)
    assert t.stream == "upstream" and t.attributes["ttl_s"] == 60 and t.expires_at is not None
    t2 = client.update_toxic("slot_a", t.name, toxicity=0.5)
    assert t2.toxicity == 0.5 and t2.expires_at == t.expires_at
    with pytest.raises(InvalidRequest, match="attributes.status_code"):
        client.add_toxic("slot_a", "http_error", {"status_code": 42}, name="bad")
    assert [x.name for x in client.toxics("slot_a")] == [t.name]
    assert client.disable("slot_a").enabled is False
    client.reset()
    p = client.get_proxy("slot_a")
    assert p is not None and p.enabled and p.toxics == []
    assert client.remove_toxic("slot_a", t.name) is False
    assert client.delete_proxy("slot_a") is True and client.delete_proxy("slot_a") is False
    assert client.get_proxy("slot_a") is None
    with pytest.raises(NotFound):
        client.toxics("slot_a")
