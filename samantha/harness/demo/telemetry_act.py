"""Act 1: host telemetry flowing into a fresh DuckDB file, read back live through window queries.

Then, briefly, what the store does with trouble: bad records rejected with reasons, a label
explosion folded by the cardinality guard, a Prometheus endpoint scraped, retention run.
"""

from __future__ import annotations

import time

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from rich.live import Live
from rich.table import Table

from samantha.core.config import ScrapeTarget
from samantha.telemetry import SampleBatch, TelemetryStore
from samantha.telemetry import queries as q
from samantha.telemetry.host import HostCollector
from samantha.telemetry.scrape import PrometheusScraper

TITLE = "Host telemetry into DuckDB"

_ROWS = [("host_cpu_percent", "CPU", "{:.0f} %"), ("host_memory_used_percent", "memory used", "{:.1f} %"),
         ("host_load", "load (1m)", "{:.2f}"), ("host_disk_used_percent", "disk used", "{:.1f} %"),
         ("samantha_rss_bytes", "Samantha RSS", "{:.0f} MiB"), ("samantha_cpu_percent", "Samantha CPU", "{:.0f} %")]


def _view(store: TelemetryStore, elapsed: float) -> Table:
    t = Table(title=f"read back from DuckDB through window queries ({elapsed:.1f} s)", expand=False)
    for col in ("metric", "last", "mean (10 s)", "p95 (10 s)", "points"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for metric, label, fmt in _ROWS:
        labels = {"window": "1m"} if metric == "host_load" else None
        w = q.metric_window(store, metric, 10.0, labels=labels, clock=store.clock)
        scale = 2**20 if metric.endswith("_bytes") else 1
        cells = [fmt.format(v / scale) if v is not None else "-" for v in (w.last, w.mean, w.p95)]
        t.add_row(label, *cells, str(w.count))
    st = store.stats()
    lag = st["visibility_lag_ms"] or {}
    t.caption = (f"{st['committed_by_table'].get('samples', 0):,} samples committed in {st['commits']} group commits"
                 f"; visible after p99 {lag.get('p99', 0):.0f} ms")
    return t


def _fast_path(ctx, store: TelemetryStore) -> None:
    """Gate passes over what was just collected: after the first, each reads only the newest rows, from memory."""
    from samantha.gates.engine import GateEngine
    from samantha.gates.spec import ThresholdGate
    from samantha.gates.windows import RequestFrame

    engine = GateEngine(store, store.clock)
    gate = ThresholdGate(name="demo-memory", metric="host_memory_used_percent", aggregate="mean", value=100, window=10)
    before = store.recent.stats()
    t0 = time.perf_counter()
    for _ in range(5):
        verdict = engine.evaluate([gate])[0]
    after = store.recent.stats()
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    ctx.console.print(f"fast path: 5 gate passes in {(time.perf_counter() - t0) * 1000:.1f} ms ({verdict.status}); "
                      f"{hits} reads of the newest rows from memory, {misses} from DuckDB (a first pass reads its window "
                      "there: DuckDB is the record a restart rebuilds from)", highlight=False)
    ctx.facts["gate reads from memory"] = hits
    now, commits = store.clock.time(), store.stats()["commits"]
    store.ingest_request_columns([now], "active", "demo@1", [5.0], [True])
    seen = RequestFrame.fetch(store, now - 1.0, now + 1.0).ts.size
    ctx.console.print(f"fast path: a request pushed just now is in the gates' window ({seen} row) after "
                      f"{store.stats()['commits'] - commits} commits: DuckDB commits on its own rhythm", highlight=False)
    ctx.facts["rows seen before their commit"] = seen


def run(ctx) -> None:
    console = ctx.console
    seconds = 2.0 if ctx.fast else 6.0
    store = TelemetryStore.open(ctx.config)
    console.print(f"fresh DuckDB file: {store.path}")
    collector = HostCollector(store, interval_s=0.25, disk_path=ctx.workdir).start()
    try:
        t0 = time.monotonic()
        with Live(_view(store, 0.0), console=console, refresh_per_second=4, transient=False) as live:
            while (elapsed := time.monotonic() - t0) < seconds:
                time.sleep(0.25)
                live.update(_view(store, elapsed))
        console.print()
    finally:
        collector.stop()
    store.flush()
    stats = store.stats()
    ctx.facts["host samples stored"] = stats["committed_by_table"].get("samples", 0)
    ctx.facts["telemetry visible after (p99 ms)"] = (stats["visibility_lag_ms"] or {}).get("p99")
    _fast_path(ctx, store)
    try:
        _trouble(ctx, store)
    finally:
        store.close()


def _trouble(ctx, store: TelemetryStore) -> None:
    console = ctx.console
    now = store.clock.time()
    r = store.ingest_samples([
        {"metric": "gpu_temp", "labels": {"gpu": "0"}, "ts": now, "value": 61.0},
        {"metric": "gpu_temp", "labels": {"gpu": "0"}, "ts": now, "value": float("nan")},
        {"metric": "gpu_temp", "labels": {"gpu": "0"}, "ts": now + 86400, "value": 60.0},
        {"metric": "gpu temp", "ts": now, "value": 60.0},
    ])
    console.print(f"bad input: {r.accepted} of 4 records kept; rejected: "
                  + "; ".join(f"#{x.index} {x.field}: {x.reason}" for x in r.rejected))

    budget = store.cfg.series_budget
    n = 5 * budget
    for i in range(0, n, 1000):
        store.ingest_samples([{"metric": "requests_by_user", "labels": {"user": f"u{j}"}, "ts": now, "value": 1.0}
                              for j in range(i, min(n, i + 1000))])
    store.flush()
    series = store.query_scalar("SELECT count(*) FROM series WHERE metric = 'requests_by_user'")
    console.print(f"cardinality guard: {n:,} label values -> {series} series (budget {budget} + __overflow__), "
                  f"{store.stats()['folds']:,} folds, event emitted")

    reg = CollectorRegistry()
    Gauge("twin_queue_depth", "requests waiting", ["slot"], registry=reg).labels(slot="active").set(4)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=reg)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        scraper = PrometheusScraper(store, [ScrapeTarget(name="twin", url=url)], clock=store.clock)
        info = scraper.scrape_target(scraper.targets[0])
        scraper.stop()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    store.flush()
    depth = q.metric_window(store, "twin_queue_depth", 60, labels={"slot": "active"}, clock=store.clock)
    console.print(f"prometheus scrape of {url}: up={info['up']}, {info['accepted']} samples, "
                  f"twin_queue_depth{{slot=active}} = {depth.last}")

    _otlp(ctx, store, now)

    store.ingest_request_columns(now - np.arange(600) * 0.1, "active", "v1", np.random.default_rng(1).gamma(2, 5, 600),
                                 np.arange(600) % 50 != 0)
    store.ingest_samples(SampleBatch("demo_old", {}, now - 7200 + np.arange(100.0), np.ones(100)))
    report = store.retention.run()
    w = q.request_window(store, 60, slot="active", clock=store.clock)
    console.print(f"retention: rolled {report['rolled_rows']} raw rows older than the horizon into 1-minute "
                  f"rollups; {report['used_bytes'] / 2**20:.1f} MiB of {report['budget_bytes'] / 2**20:.0f} MiB budget")
    console.print(f"window query (active, 60 s): {w.count} requests, p99 {w.latency_p99_ms:.1f} ms, "
                  f"error ratio {w.error_ratio:.3f}")


def _otlp(ctx, store: TelemetryStore, now: float) -> None:
    """An OTLP/HTTP export (protobuf, gzip) through the daemon's receiver, and a truncated one refused."""
    import gzip

    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from samantha.telemetry.otlp import make_otlp_router

    app = FastAPI()
    app.include_router(make_otlp_router(store))
    doc = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "edge"}}]},
                                "scopeMetrics": [{"metrics": [{"name": "app.latency", "histogram": {"dataPoints": [
                                    {"timeUnixNano": str(int(now * 1e9)), "count": "5", "sum": 61.0,
                                     "explicitBounds": [10, 50], "bucketCounts": ["3", "1", "1"]}]}}]}]}]}
    body = json_format.ParseDict(doc, ExportMetricsServiceRequest()).SerializeToString()
    with TestClient(app) as c:
        ok = c.post("/v1/metrics", content=gzip.compress(body),
                    headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
        bad = c.post("/v1/metrics", content=body[:-3], headers={"Content-Type": "application/x-protobuf"})
    store.flush()
    n = store.query_scalar("SELECT count(*) FROM series WHERE metric LIKE 'app_latency%'")
    ctx.console.print(f"OTLP/HTTP histogram export: {ok.status_code}, {n} series (app_latency_count/_sum/_bucket{{le}}); "
                      f"a truncated body: {bad.status_code} {bad.json()['error']['reason'][:70]}")
    ctx.facts["OTLP series from one histogram"] = n
