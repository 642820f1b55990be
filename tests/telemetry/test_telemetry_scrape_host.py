"""Prometheus scrape of real loopback endpoints, and the psutil host collector, into a real DuckDB file."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from samantha.core.clock import SimClock
from samantha.core.config import ScrapeTarget
from samantha.telemetry import TelemetryStore
from samantha.telemetry import queries as q
from samantha.telemetry.host import HostCollector
from samantha.telemetry.scrape import PrometheusScraper, parse_exposition
from tests.loopback_text import serve_text

BROKEN = """# HELP good_total fine
# TYPE good_total counter
good_total{path="/a"} 5
# HELP temp a gauge
# TYPE temp gauge
temp{zone="1"} 40.5
temp{zone="2" 41
temp{zone="3"} hot
temp{zone="4"} 42
temp{zone="5"} NaN
this is not exposition
"""


@pytest.fixture
def prom_endpoint() -> Iterator[tuple[str, CollectorRegistry]]:
    reg = CollectorRegistry()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=reg)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", reg
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def broken_endpoint() -> Iterator[str]:
    with serve_text(BROKEN) as url:
        yield url


def test_scrape_prometheus_client_endpoint(store: TelemetryStore, prom_endpoint) -> None:
    url, reg = prom_endpoint
    Counter("slot_requests", "requests", ["slot"], registry=reg).labels(slot="active").inc(7)
    Gauge("queue_depth", "depth", registry=reg).set(3)
    h = Histogram("lat_seconds", "latency", buckets=(0.1, 1.0), registry=reg)
    for x in (0.05, 0.5, 2.0):
        h.observe(x)
    scraper = PrometheusScraper(store, [ScrapeTarget(name="twin", url=url, labels={"cube": "c1"})])
    try:
        info = scraper.scrape_target(scraper.targets[0])
    finally:
        scraper.stop()
    assert info["up"] == 1 and info["error"] is None and info["accepted"] > 0
    store.flush()
    w = q.metric_window(store, "slot_requests_total", 60, labels={"slot": "active", "cube": "c1",
                                                                   "scrape_target": "twin"})
    assert w.count == 1 and w.last == 7.0
    assert q.metric_window(store, "queue_depth", 60).last == 3.0
    buckets = q.metric_window_by(store, "lat_seconds_bucket", "le", 60)
    assert {k: b.last for k, b in buckets.items()} == {"0.1": 1.0, "1.0": 2.0, "+Inf": 3.0}
    assert q.metric_window(store, "samantha_scrape_up", 60, labels={"target": "twin"}).last == 1.0


def test_scrape_malformed_exposition_keeps_good_lines(store: TelemetryStore, broken_endpoint) -> None:
    scraper = PrometheusScraper(store, [ScrapeTarget(name="bad", url=broken_endpoint)])
    try:
        info = scraper.scrape_target(scraper.targets[0])
    finally:
        scraper.stop()
    assert info["up"] == 1
    assert [r["line"] for r in info["rejected"] if "line" in r] == [7, 8, 11]
    assert [r["reason"] for r in info["rejected"] if "sample" in r] == ["not_finite"]  # zone 5 parsed, then refused
    store.flush()
    zones = q.metric_window_by(store, "temp", "zone", 60)
    assert {k: v.last for k, v in zones.items()} == {"1": 40.5, "4": 42.0}
    assert q.metric_window(store, "good_total", 60).last == 5.0
    reasons = store.stats()["rejected_by_reason"]
    assert reasons["bad_exposition"] == 3 and reasons["not_finite"] == 1


def test_scrape_down_target_records_up_zero(store: TelemetryStore) -> None:
    from tests.conftest import free_port

    scraper = PrometheusScraper(store, [ScrapeTarget(name="gone", url=f"http://127.0.0.1:{free_port()}/metrics")],
                                timeout_s=1.0)
    try:
        info = scraper.scrape_target(scraper.targets[0])
    finally:
        scraper.stop()
    assert info["up"] == 0 and "ConnectError" in info["error"]
    store.flush()
    assert q.metric_window(store, "samantha_scrape_up", 60, labels={"target": "gone"}).last == 0.0


def test_parse_uses_sample_timestamps_in_seconds() -> None:
    r = parse_exposition("up 1 1700000000000\nup{x=\"y\"} 2\n", ts=5.0)
    assert [(s["ts"], s["value"]) for s in r.samples] == [(1_700_000_000.0, 1.0), (5.0, 2.0)]


def test_host_collector_with_injected_clock(config, tmp_path) -> None:
    clock = SimClock(start=time.time())
    with TelemetryStore.open(config, clock) as s:
        hc = HostCollector(s, clock=clock, interval_s=10.0, disk_path=tmp_path)
        for _ in range(3):
            time.sleep(0.12)  # CPU percentages are real deltas; readings closer than 0.1 s are skipped
            assert hc.collect_once() > 0
            clock.advance(10.0)
        s.flush()
        metrics = {r["metric"] for r in s.read_arrow("SELECT DISTINCT metric FROM series").to_pylist()}
        assert {"host_cpu_percent", "host_memory_available_bytes", "host_disk_used_bytes", "host_load",
                "samantha_rss_bytes", "samantha_cpu_percent"} <= metrics
        ts = s.read_arrow("SELECT DISTINCT ts FROM samples ORDER BY ts").column(0).to_pylist()
        assert ts == [clock.time() - 30, clock.time() - 20, clock.time() - 10]  # stamped by the injected clock
        rss = q.metric_window(s, "samantha_rss_bytes", 60, clock=clock)
        assert rss.count == 3 and rss.min > 10 * 2**20  # a Python process with DuckDB loaded


def test_host_collector_thread_runs_and_stops(store: TelemetryStore, tmp_path) -> None:
    hc = HostCollector(store, interval_s=0.1, disk_path=tmp_path).start()
    time.sleep(0.5)
    hc.stop()
    n = hc.collections
    assert 3 <= n <= 8
    time.sleep(0.25)
    assert hc.collections == n  # stopped means stopped
