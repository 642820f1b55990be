"""HTTP push ingest: JSON lines, partial acceptance, 404/413; in-process and via a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from samantha.core.config import SamanthaConfig
from samantha.telemetry import TelemetryStore
from samantha.telemetry.ingest_http import make_ingest_router
from tests.conftest import free_port


def _lines(*recs: object) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in recs)


@pytest.fixture
def client(store: TelemetryStore) -> TestClient:
    app = FastAPI()
    app.include_router(make_ingest_router(store, max_body_bytes=10_000))
    return TestClient(app)


def test_requests_partial_acceptance_names_line_field_reason(client: TestClient, store: TelemetryStore) -> None:
    now = time.time()
    good = {"ts": now, "slot": "active", "bundle": "v1", "latency_ms": 3.0, "ok": True}
    body = _lines(good, b"{not json", {**good, "latency_ms": "fast"}, b"", {**good, "slot": "canary"},
                  b"[1, 2]", {**good, "ts": now + 86400}, {**good, "extra": 1}, good)
    r = client.post("/v1/ingest/requests", content=body)
    assert r.status_code == 200
    out = r.json()
    assert out["accepted"] == 2
    got = [(x["line"], x["field"], x["reason"]) for x in out["rejected"]]
    assert got == [(2, "", "bad_json"), (3, "latency_ms", "wrong_type"), (5, "slot", "out_of_range"),
                   (6, "", "wrong_type"), (7, "ts", "ts_in_future"), (8, "extra", "unknown_field")]
    store.flush()
    assert store.query_scalar("SELECT count(*) FROM requests") == 2
    reasons = store.stats()["rejected_by_reason"]
    assert reasons["bad_json"] == 1 and reasons["wrong_type"] == 2


def test_samples_and_events_tables(client: TestClient, store: TelemetryStore) -> None:
    now = time.time()
    r = client.post("/v1/ingest/samples", content=_lines(
        {"metric": "gpu_temp", "labels": {"gpu": "0"}, "ts": now, "value": 61.5},
        b'{"metric": "gpu_temp", "ts": 1, "value": NaN}'))
    assert r.json()["accepted"] == 1
    assert r.json()["rejected"][0]["line"] == 2  # NaN is not JSON; a record whose ts is 1970 would fail too
    r = client.post("/v1/ingest/events", content=_lines({"ts": now, "kind": "deploy", "severity": "loud"},
                                                         {"ts": now, "kind": "deploy", "attrs": {"v": 2}}))
    assert r.json()["accepted"] == 1 and r.json()["rejected"][0]["field"] == "severity"


def test_unknown_table_422_and_oversized_413(client: TestClient, store: TelemetryStore) -> None:
    r = client.post("/v1/ingest/incidents", content=b"{}")
    assert r.status_code == 422 and "incidents" in r.text and "requests" in r.text  # names the table and the choices
    r = client.post("/v1/ingest/samples", content=b"x" * 10_001)
    assert r.status_code == 413 and "10000" in r.json()["error"]["reason"]
    # the store is intact and still ingesting
    now = time.time()
    r = client.post("/v1/ingest/samples", content=_lines({"metric": "m", "ts": now, "value": 1}))
    assert r.json()["accepted"] == 1


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_telemetry_serve_real_server(tmp_path) -> None:
    cfg_file = tmp_path / "samantha.yaml"
    cfg_file.write_text(f"data_dir: {tmp_path / 'state'}\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "samantha", "telemetry", "serve", "--port", str(port),
                             "-c", str(cfg_file)], env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "server never came up"
            time.sleep(0.1)
        now = time.time()
        recs = [{"ts": now - i * 0.01, "slot": "active", "bundle": "v1", "latency_ms": float(i), "ok": i % 5 != 0,
                 "divergence": None, "shadow": False} for i in range(500)]
        r = httpx.post(f"{base}/v1/ingest/requests", content=_lines(*recs, b"oops"), timeout=10)
        assert r.status_code == 200
        assert r.json()["accepted"] == 500 and r.json()["rejected"][0]["line"] == 501
        stats = httpx.get(f"{base}/v1/telemetry/stats", timeout=5).json()
        assert stats["accepted_by_table"]["requests"] == 500
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    # uvicorn shuts down gracefully (lifespan closes the store), then re-raises SIGTERM
    assert proc.returncode in (0, -15), proc.stderr.read().decode()
    cfg = SamanthaConfig(data_dir=str(tmp_path / "state"))
    with TelemetryStore.open(cfg) as s:  # the server's shutdown committed everything
        assert s.query_scalar("SELECT count(*) FROM requests") == 500
        assert s.query_scalar("SELECT count(*) FILTER (WHERE NOT ok) FROM requests") == 100
