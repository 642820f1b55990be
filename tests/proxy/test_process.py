"""The proxy as a real process: ready line, control API, data plane, SIGTERM, CLI, bench."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from samantha.cube.proxy_client import ProxyClient
from samantha.harness.proxy_process import spawn_echo_upstream, spawn_proxy
from tests.proxy.rawhttp import exchange, get


@pytest.mark.timeout(60)
def test_process_serves_and_stops_cleanly_on_sigterm():
    with spawn_echo_upstream() as upstream:
        proxy = spawn_proxy(0)
        try:
            with ProxyClient(proxy.value) as client:
                info = client.create_proxy("slot_a", f"127.0.0.1:{upstream.value}")
                client.add_toxic("slot_a", "latency", {"latency": 80})
                ex = exchange(info.listen_port, get("/", close=True))
                assert ex.data.startswith(b"HTTP/1.1 200") and ex.elapsed_s >= 0.075
                # the CLI reads the same server
                out = subprocess.run([sys.executable, "-m", "samantha", "proxy", "list", "--json", "--url", proxy.value],
                                     capture_output=True, text=True, env=os.environ, timeout=30)
                assert out.returncode == 0, out.stderr
                listed = json.loads(out.stdout)
                assert listed["slot_a"]["toxics"][0]["attributes"]["latency"] == 80
        finally:
            rc = proxy.stop()
        assert rc == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", info.listen_port), timeout=2).close()


@pytest.mark.timeout(30)
def test_cli_list_reports_an_unreachable_proxy_as_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "samantha", "proxy", "list", "--json", "--url",
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, env=os.environ, timeout=30)
    assert out.returncode == 1 and "cannot reach the proxy" in out.stderr


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_bench_prints_one_json_object():
    out = subprocess.run([sys.executable, "-m", "samantha", "proxy", "bench", "--json", "--seconds", "1",
                          "--toxic-seconds", "1"], capture_output=True, text=True, env=os.environ, timeout=80)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["errors"] == 0
    assert r["direct_samples"] == r["proxied_samples"] == 200
    assert r["latency_toxic_p50_ms"] >= 100  # the toxic really delays
    assert r["proxy_overhead_p50_ms"] == pytest.approx(r["proxied_p50_ms"] - r["direct_p50_ms"], abs=0.002)
