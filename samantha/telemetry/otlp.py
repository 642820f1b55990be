"""OTLP/HTTP metrics receiver: `POST /v1/metrics`, protobuf or JSON, optionally gzip.

The wire format is `opentelemetry-proto`'s `ExportMetricsServiceRequest` (never hand-parsed). Each
data point becomes one sample of a series, named the way Prometheus names OTLP metrics:
- metric and attribute names: characters outside `[a-zA-Z0-9_:]` become `_` (`http.server.duration`
  → `http_server_duration`, `service.name` → `service_name`);
- gauge and sum points: one sample each (`as_double` or `as_int`);
- histograms (explicit buckets): `<name>_count`, `<name>_sum` and cumulative `<name>_bucket{le}`;
  exponential histograms and summaries: `_count` and `_sum` (summaries add `{quantile}` samples);
- labels: resource attributes, then the point's attributes (the point wins on a clash); the store's
  label rules and cardinality budget apply as for every other ingest route.

Answers follow OTLP/HTTP: 200 with an `ExportMetricsServiceResponse` in the request's encoding, its
`partial_success` naming the first rejected point by path (`resourceMetrics[0].scopeMetrics[0].
metrics[1](name).dataPoints[2]`), field and reason. Bad input gets the API's error envelope: 415 a
content type other than protobuf/JSON, 400 a truncated or malformed body (or one whose every point
was rejected, non-finite values included), 413 a body or batch over the limit, 429 a spent writer
budget. Who may send is decided in front of it (writer `otlp`, `samantha/api/writers.py`).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from samantha.telemetry.ingest_http import BodyTooLarge, _error, _read_body
from samantha.telemetry.schema import LOCAL_WRITER
from samantha.telemetry.store import SampleBatch, TelemetryStore

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_POINTS = 200_000  # one export's samples after histogram expansion; the SDK sends far fewer
_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_BAD_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


class OtlpError(Exception):
    def __init__(self, status: int, code: str, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.field = status, code, reason, field


def metric_name(name: str) -> str:
    out = _BAD_CHARS.sub("_", name)
    return "_" + out if out[:1].isdigit() else out


def label_name(key: str) -> str:
    out = _BAD_LABEL_CHARS.sub("_", key)
    out = "_" + out if out[:1].isdigit() else out
    return "_" + out.lstrip("_") if out.startswith("__") else out  # `__` is reserved


def _any_value(v: Any) -> str:
    kind = v.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind in ("int_value", "double_value"):
        return str(getattr(v, kind))
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return orjson.dumps(json_format.MessageToDict(v)).decode()  # arrays and kvlists, as JSON text


def _attrs(kvs: Any) -> dict[str, str]:
    return {label_name(kv.key): _any_value(kv.value) for kv in kvs if kv.key}


@dataclass
class Mapped:
    """The request's points grouped per series, each point's path kept to name it when it is rejected."""

    series: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[list[float], list[float], list[str]]] = field(
        default_factory=dict)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (path, field, reason)
    points: int = 0

    def add(self, metric: str, labels: dict[str, str], ts: float, value: float, path: str) -> None:
        self.points += 1
        if self.points > MAX_POINTS:
            raise OtlpError(413, "too_large", f"more than {MAX_POINTS} samples in one export; "
                            "lower the exporter's batch size (max_export_batch_size)")
        if not math.isfinite(value):
            self.rejected.append((path, "value", f"non-finite value {value!r}"))
            return
        ts_l, v_l, p_l = self.series.setdefault((metric, tuple(sorted(labels.items()))), ([], [], []))
        ts_l.append(ts)
        v_l.append(value)
        p_l.append(path)

    def batches(self) -> tuple[list[SampleBatch], list[str]]:
        out, paths = [], []
        for (metric, labels), (ts, vals, ps) in self.series.items():
            out.append(SampleBatch(metric, dict(labels), ts, vals))
            paths.extend(ps)
        return out, paths


def _number(p: Any) -> float:
    return float(p.as_double) if p.WhichOneof("value") == "as_double" else float(p.as_int)


def map_request(req: ExportMetricsServiceRequest, now: float) -> Mapped:
    """Points → samples. A point with no timestamp is stamped `now` (the receiver's clock)."""
    m = Mapped()
    for ri, rm in enumerate(req.resource_metrics):
        res = _attrs(rm.resource.attributes)
        for si, sm in enumerate(rm.scope_metrics):
            for mi, metric in enumerate(sm.metrics):
                base = f"resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}]({metric.name})"
                if not metric.name:
                    m.rejected.append((base, "name", "a metric needs a name"))
                    continue
                name = metric_name(metric.name)
                kind = metric.WhichOneof("data")
                pts = getattr(metric, kind).data_points if kind else []
                for pi, p in enumerate(pts):
                    path = f"{base}.dataPoints[{pi}]"
                    labels = {**res, **_attrs(p.attributes)}
                    ts = p.time_unix_nano / 1e9 if p.time_unix_nano else now
                    if kind in ("gauge", "sum"):
                        m.add(name, labels, ts, _number(p), path)
                    elif kind == "histogram":
                        m.add(f"{name}_count", labels, ts, float(p.count), path)
                        if p.HasField("sum"):
                            m.add(f"{name}_sum", labels, ts, p.sum, path)
                        cum = 0
                        bounds = [*p.explicit_bounds, math.inf]
                        for le, c in zip(bounds, p.bucket_counts, strict=False):
                            cum += c
                            m.add(f"{name}_bucket", {**labels, "le": "+Inf" if le == math.inf else repr(le)},
                                  ts, float(cum), path)
                    elif kind == "exponential_histogram":
                        m.add(f"{name}_count", labels, ts, float(p.count), path)
                        if p.HasField("sum"):
                            m.add(f"{name}_sum", labels, ts, p.sum, path)
                    elif kind == "summary":
                        m.add(f"{name}_count", labels, ts, float(p.count), path)
                        m.add(f"{name}_sum", labels, ts, p.sum, path)
                        for q in p.quantile_values:
                            m.add(name, {**labels, "quantile": repr(q.quantile)}, ts, q.value, path)
    return m


def _gunzip(body: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)  # bounded: a small gzip bomb cannot blow up memory
    except zlib.error as e:
        raise OtlpError(400, "bad_body", f"Content-Encoding is gzip but the body is not valid gzip: {e}",
                        "Content-Encoding") from None
    if len(out) > limit:
        raise OtlpError(413, "too_large", f"body exceeds {limit} bytes once decompressed; send smaller batches")
    if not d.eof:
        raise OtlpError(400, "bad_body", "gzip body is truncated", "body")
    return out


def decode(body: bytes, content_type: str, encoding: str, limit: int) -> ExportMetricsServiceRequest:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype not in (PROTOBUF, JSON):
        raise OtlpError(415, "bad_content_type", f"Content-Type {ctype or '(none)'!r} is not OTLP/HTTP; send "
                        f"{PROTOBUF} or {JSON}", "Content-Type")
    enc = encoding.strip().lower()
    if enc == "gzip":
        body = _gunzip(body, limit)
    elif enc not in ("", "identity"):
        raise OtlpError(415, "bad_content_encoding", f"Content-Encoding {enc!r} is not supported; use gzip or none",
                        "Content-Encoding")
    req = ExportMetricsServiceRequest()
    try:
        if ctype == PROTOBUF:
            req.ParseFromString(body)
        else:
            json_format.Parse(body or b"{}", req, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError, ValueError) as e:
        what = "protobuf ExportMetricsServiceRequest" if ctype == PROTOBUF else "OTLP JSON document"
        raise OtlpError(400, "bad_body", f"body is not a valid {what} (truncated or malformed): "
                        f"{str(e)[:200]}", "body") from None
    return req


Admit = Callable[[str, str, int], float]


def make_otlp_router(store: TelemetryStore, max_body_bytes: int | None = None, *, admit: Admit | None = None,
                     on_ingest: Callable[[], None] | None = None, responses: dict[int | str, Any] | None = None) -> APIRouter:
    limit = max_body_bytes or store.cfg.ingest_max_body_bytes
    router = APIRouter(tags=["ingest"])

    def _answer(ctype: str, rejected: int, message: str) -> Response:
        resp = ExportMetricsServiceResponse()
        if rejected:
            resp.partial_success.rejected_data_points = rejected
            resp.partial_success.error_message = message
        if ctype.startswith(PROTOBUF):
            return Response(resp.SerializeToString(), media_type=PROTOBUF)
        return Response(json_format.MessageToJson(resp, indent=None), media_type=JSON)

    @router.post("/v1/metrics", responses=responses or {}, openapi_extra={"requestBody": {"required": True, "content": {
        PROTOBUF: {"schema": {"type": "string", "format": "binary", "description": "ExportMetricsServiceRequest"}},
        JSON: {"schema": {"type": "object", "description": "ExportMetricsServiceRequest, OTLP JSON"}}}}})
    async def otlp_metrics(request: Request) -> Any:
        """OTLP/HTTP metrics export (protobuf or JSON, gzip): gauges, sums, histograms → series and samples."""
        ctype = request.headers.get("content-type", "").lower()
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            return _error(413, "too_large", f"body exceeds {limit} bytes; send smaller batches")
        writer = getattr(request.state, "writer", None) or LOCAL_WRITER
        try:
            req = decode(body, ctype, request.headers.get("content-encoding", ""), limit)
            mapped = await run_in_threadpool(map_request, req, store.clock.time())
        except OtlpError as e:
            return _error(e.status, e.code, e.reason, e.field)
        batches, paths = mapped.batches()
        if admit is not None and paths:
            wait = admit(writer, "otlp", len(paths))
            if wait > 0:
                if not math.isfinite(wait):
                    return _error(413, "too_large", f"an export of {len(paths)} samples is larger than writer "
                                  f"{writer}'s whole budget; lower the exporter's batch size")
                resp = _error(429, "rate_limited", f"writer {writer} is over its row budget "
                              f"(api.writers.{writer}.max_rows); retry later")
                resp.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return resp
        result = await run_in_threadpool(store.ingest_samples, batches) if batches else None
        rejected = list(mapped.rejected)
        if result is not None:
            rejected += [(paths[r.index], r.field, f"{r.reason} {r.detail}".strip()) for r in result.rejected]
        accepted = result.accepted if result else 0
        if accepted and on_ingest is not None:
            on_ingest()
        first = f"{rejected[0][0]}: {rejected[0][1]}: {rejected[0][2]}" if rejected else ""
        if rejected and not accepted:
            return _error(400, "rejected", f"no data point was stored; {len(rejected)} rejected, first: {first}",
                          rejected[0][1], rejected=[{"path": p, "field": f, "reason": r} for p, f, r in rejected[:20]])
        return _answer(ctype, len(rejected), f"{len(rejected)} data points rejected, first: {first}"
                       if rejected else "")

    return router
