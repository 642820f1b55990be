"""The daemon runs the scraper of `scrape.targets`: a real loopback Prometheus endpoint, a real DuckDB file, the
samples labelled with the slot the target names and that slot's role and bundle from the loop's last Cube state;
a target naming an unknown slot is bad input with the field named."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from samantha.core.config import SamanthaConfig, ScrapeTarget, load_config
from samantha.core.validated_yaml import DocumentError
from samantha.daemon.parts import build_parts
from samantha.telemetry import queries as q


def test_the_daemon_scrapes_its_targets_with_slot_role_and_bundle(tmp_path) -> None:
    reg = CollectorRegistry()
    Counter("nv_inference_request_success", "ok", ["model", "version"], registry=reg).labels("sensor", "1").inc(4)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=reg)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    cfg = SamanthaConfig(data_dir=str(tmp_path), host_collector={"enabled": False},
                         scrape={"interval_s": 0.2, "targets": [ScrapeTarget(name="triton-a", url=url, slot="A")]})
    parts = build_parts(cfg)
    try:
        assert parts.scraper is not None
        parts.graph.last = {"cube": {"slots": [{"name": "A", "role": "active", "bundle_id": "sensor-1"},
                                               {"name": "B", "role": "standby", "bundle_id": None}]}}
        deadline = time.monotonic() + 15
        labels = {"slot": "A", "role": "active", "bundle": "sensor-1", "model": "sensor"}
        while time.monotonic() < deadline:
            parts.store.flush()
            if q.metric_window(parts.store, "nv_inference_request_success_total", 60, labels=labels).count >= 2:
                break
            time.sleep(0.1)
        w = q.metric_window(parts.store, "nv_inference_request_success_total", 60, labels=labels)
        assert w.count >= 2 and w.last == 4.0
    finally:
        parts.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_scrape_target_naming_an_unknown_slot_is_refused(tmp_path) -> None:
    p = tmp_path / "samantha.yaml"
    p.write_text(f"data_dir: {tmp_path}\nscrape:\n  targets:\n    - {{name: t, url: 'http://127.0.0.1:1/m', slot: C}}\n")
    with pytest.raises(DocumentError) as e:
        load_config(p)
    assert "samantha.yaml:4:46: scrape.targets[0].slot" in str(e.value) and "'A' or 'B'" in str(e.value)
