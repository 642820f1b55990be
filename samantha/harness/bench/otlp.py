"""The OTLP line of `samantha telemetry bench`: samples/s through OTLP/HTTP against the JSON-lines push.

Both go to one `samantha telemetry serve` process on loopback (a fresh store), in the same run,
from one client: requests of `per_request` samples, alternating formats so load drifts hit both
alike. Each format's figure is the median of its per-request throughputs (samples / round trip,
committed rows checked at the end).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from samantha.harness.scenario_run import telemetry_server


def _otlp_body(n: int, n_series: int, ts: float) -> bytes:
    points = [{"timeUnixNano": str(int((ts + i * 1e-6) * 1e9)), "asDouble": float(i),
               "attributes": [{"key": "series", "value": {"stringValue": str(i % n_series)}}]} for i in range(n)]
    doc = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name",
                                                              "value": {"stringValue": "bench"}}]},
                                "scopeMetrics": [{"metrics": [{"name": "bench.metric",
                                                               "gauge": {"dataPoints": points}}]}]}]}
    return json_format.ParseDict(doc, ExportMetricsServiceRequest()).SerializeToString()


def _lines_body(n: int, n_series: int, ts: float) -> bytes:
    return b"\n".join(orjson.dumps({"metric": "bench_metric", "labels": {"service_name": "bench",
                                                                         "series": str(i % n_series)},
                                    "ts": ts + i * 1e-6, "value": float(i)}) for i in range(n))


def run(seconds: float = 4.0, per_request: int = 1000, n_series: int = 100) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="samantha-otlp-bench-") as tmp, \
            telemetry_server(Path(tmp) / "state") as (ingest_url, _):
        url = ingest_url.removesuffix("/v1/ingest/requests")
        with httpx.Client(base_url=url, timeout=30.0) as c:
            rates: dict[str, list[float]] = {"otlp": [], "json_lines": []}
            sent = {"otlp": 0, "json_lines": 0}
            end = time.monotonic() + seconds
            k = 0
            while time.monotonic() < end and k < 100_000:
                ts = time.time()
                for fmt in ("otlp", "json_lines"):
                    # bodies are built before the clock starts: the figure is the receiver's, not the encoder's
                    if fmt == "otlp":
                        body, path, ctype = _otlp_body(per_request, n_series, ts), "/v1/metrics", \
                            "application/x-protobuf"
                    else:
                        body, path, ctype = _lines_body(per_request, n_series, ts), "/v1/ingest/samples", \
                            "application/x-ndjson"
                    t0 = time.perf_counter()
                    r = c.post(path, content=body, headers={"Content-Type": ctype})
                    dt = time.perf_counter() - t0
                    r.raise_for_status()
                    rates[fmt].append(per_request / dt)
                    sent[fmt] += per_request
                k += 1
            committed = c.get("/v1/telemetry/stats").json()
    med = {f: round(float(np.median(v)), 0) if v else 0.0 for f, v in rates.items()}
    return {"otlp_samples_per_s_median": med["otlp"], "json_lines_samples_per_s_median": med["json_lines"],
            "otlp_vs_json_lines": round(med["otlp"] / med["json_lines"], 3) if med["json_lines"] else None,
            "requests_per_format": len(rates["otlp"]), "samples_per_request": per_request,
            "sent": sent, "store_accepted": committed.get("accepted")}
