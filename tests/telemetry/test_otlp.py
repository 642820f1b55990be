"""OTLP/HTTP metrics in: the real opentelemetry-sdk exporter into a running daemon, and bad input.

`test_sdk_exporter_into_the_daemon` runs `samantha run` as a process and exports with the SDK's
OTLP/HTTP protobuf exporter (gzip); the samples are read back from the daemon and a gate evaluates
on them. The bad-input cases use the real router and a real DuckDB store in process.
"""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from samantha.api.client import writer_headers
from samantha.core.config import SamanthaConfig
from samantha.core.ports import free_port
from samantha.gates.engine import GateEngine
from samantha.gates.spec import ThresholdGate
from samantha.harness.daemon_process import DaemonProcess, write_config
from samantha.telemetry.otlp import make_otlp_router
from samantha.telemetry.store import TelemetryStore


def _doc(value: object, *, name: str = "queue.depth", now: float | None = None) -> dict:
    ts = str(int((now or time.time()) * 1e9))
    return {"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "edge-app"}}]},
        "scopeMetrics": [{"metrics": [{"name": name, "gauge": {"dataPoints": [
            {"timeUnixNano": ts, "asDouble": value, "attributes": [{"key": "q", "value": {"stringValue": "a"}}]}]}}]}]}]}


@pytest.fixture
def client(store: TelemetryStore) -> TestClient:
    app = FastAPI()
    app.include_router(make_otlp_router(store, max_body_bytes=50_000))
    return TestClient(app)


def test_json_and_protobuf_map_to_series(client: TestClient, store: TelemetryStore) -> None:
    r = client.post("/v1/metrics", json=_doc(3.5))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    req = json_format.ParseDict(_doc(4.5), ExportMetricsServiceRequest())
    r = client.post("/v1/metrics", content=gzip.compress(req.SerializeToString()),
                    headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    resp = ExportMetricsServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_data_points == 0
    store.flush()
    rows = store.read_arrow("SELECT s.metric, s.labels, v.value FROM samples v JOIN series s ON s.id = v.series_id "
                            "ORDER BY v.value").to_pylist()
    assert [r["metric"] for r in rows] == ["queue_depth", "queue_depth"]
    assert [r["value"] for r in rows] == [3.5, 4.5]
    assert "service_name" in str(rows[0]["labels"]) and "edge-app" in str(rows[0]["labels"])


@pytest.mark.parametrize(("headers", "body", "status", "code", "field"), [
    ({"Content-Type": "text/plain"}, b"x", 415, "bad_content_type", "Content-Type"),
    ({"Content-Type": "application/x-protobuf"}, b"\x0a\xff\xff\x01", 400, "bad_body", "body"),  # truncated
    ({"Content-Type": "application/json"}, b'{"resourceMetrics": [', 400, "bad_body", "body"),
    ({"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, b"not gzip", 400, "bad_body",
     "Content-Encoding"),
    ({"Content-Type": "application/json"}, b" " * 60_000, 413, "too_large", None),
    ({"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, gzip.compress(b"\0" * 200_000), 413,
     "too_large", None),  # a gzip bomb is refused once decompressed past the limit
])
def test_bad_bodies_get_a_clear_error(client: TestClient, headers: dict, body: bytes, status: int, code: str,
                                      field: str | None) -> None:
    r = client.post("/v1/metrics", content=body, headers=headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["field"] == field and err["reason"]


def test_non_finite_values_are_named_and_the_rest_kept(client: TestClient, store: TelemetryStore) -> None:
    r = client.post("/v1/metrics", json=_doc("NaN"))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["field"] == "value" and "non-finite" in err["reason"]
    assert "metrics[0](queue.depth).dataPoints[0]" in err["reason"]
    doc = _doc(1.0)
    doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"].append(
        {"timeUnixNano": str(int(time.time() * 1e9)), "asDouble": "Infinity"})
    r = client.post("/v1/metrics", json=doc)
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedDataPoints"] == "1"
    assert "dataPoints[1]" in r.json()["partialSuccess"]["errorMessage"]
    store.flush()
    assert store.query_scalar("SELECT count(*) FROM samples") == 1


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sdk_exporter_into_the_daemon(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    port = free_port()
    cfg = SamanthaConfig.model_validate({
        "data_dir": str(tmp_path / "state"), "api": {"port": port}, "llm": {"enabled": False},
        "sre": {"cube_url": f"http://127.0.0.1:{free_port()}", "cube_timeout_s": 0.5}})
    path = write_config(cfg, tmp_path / "samantha.yaml")
    with DaemonProcess(cfg, path).start() as daemon:
        daemon.wait_ready()
        headers = {k: v for k, v in writer_headers(cfg, "otlp").items() if k == "Authorization"}
        exporter = OTLPMetricExporter(endpoint=f"{daemon.url}/v1/metrics", headers=headers,
                                      compression=Compression.Gzip)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "edge-app"}))
        meter = provider.get_meter("test")
        meter.create_counter("app.requests").add(7, {"route": "/infer"})
        hist = meter.create_histogram("app.latency", unit="ms")
        for v in (3.0, 8.0, 40.0, 400.0):
            hist.record(v, {"route": "/infer"})
        meter.create_gauge("gpu.temp").set(71.0)
        assert provider.force_flush(10_000)
        provider.shutdown()

        r = daemon.request("GET", "/v1/export/samples", params={"since": time.time() - 600})
        assert r.status_code == 200, r.text
        table = pq.read_table(io.BytesIO(r.content))
        # counter 1, gauge 1, histogram: count + sum + 16 default buckets
        assert table.num_rows >= 1 + 1 + 2 + 5, table.num_rows
        bad = httpx.post(f"{daemon.url}/v1/metrics", content=b"\x0a\xff", headers={
            **headers, "Content-Type": "application/x-protobuf"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
        assert daemon.request("GET", "/healthz").status_code == 200  # bad input never stops the daemon
        anon = httpx.post(f"{daemon.url}/v1/metrics", content=b"", headers={"Content-Type": "application/x-protobuf",
                                                                            "Authorization": "Bearer nope"})
        assert anon.status_code == 401

    store = TelemetryStore.open(cfg)
    try:
        now = time.time()
        gates = [ThresholdGate(name="gpu-hot", metric="gpu_temp", aggregate="max", op="<=", value=85,
                               window=600, min_samples=1),
                 ThresholdGate(name="few-slow", metric="app_latency_bucket", labels={"le": "+Inf"},
                               aggregate="max", op="<=", value=3, window=600, min_samples=1)]
        v_hot, v_slow = GateEngine(store).evaluate(gates, now=now)
        assert v_hot.status == "pass", v_hot
        assert v_slow.status == "fail" and "4" in v_slow.reason, v_slow  # 4 recorded > 3
        labels = store.read_arrow("SELECT labels FROM series WHERE metric = 'app_requests'").to_pylist()
        assert labels and "route" in str(labels[0]) and "service_name" in str(labels[0])
    finally:
        store.close()
