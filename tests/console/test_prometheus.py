"""`/metrics` on the real daemon: promtool accepts it, and a real Prometheus scrapes it and answers queries."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.console.kit import console_daemon
from tests.sre.kit import wait_for


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"Debian's {binary} is missing: run `make system-deps` (apt-get install -y chromium prometheus)")
    return path


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_promtool_accepts_and_prometheus_scrapes_the_daemon(tmp_path: Path) -> None:
    promtool, prometheus = _need("promtool"), _need("prometheus")
    with console_daemon(tmp_path) as d:
        r = httpx.get(f"{d.url}/metrics", headers=d.bearer("viewer"), timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        for series in ("samantha_build_info", "samantha_ingest_accepted_rows_total", "samantha_series",
                       "samantha_gate_evaluation_seconds_bucket", "samantha_cycle_seconds_count", "samantha_cube_up",
                       "samantha_seconds_since_sync", "samantha_outbox_depth", "samantha_actions{",
                       "samantha_audit_records_total"):
            assert series in text, series
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert httpx.get(f"{d.url}/metrics", timeout=10).status_code == 401  # scrapes authenticate too

        port = free_port()
        host, api_port = d.url.removeprefix("http://").split(":")
        (tmp_path / "token").write_text(d.tokens["viewer"])
        conf = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [{"job_name": "samantha", "metrics_path": "/metrics",
                                    "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")},
                                    "static_configs": [{"targets": [f"{host}:{api_port}"]}]}]}
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(conf))
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"

            def query(q: str) -> list:
                body = httpx.get(f"{base}/api/v1/query", params={"query": q}, timeout=5).json()
                assert body["status"] == "success", body
                return body["data"]["result"]

            up = wait_for(lambda: query('up{job="samantha"} == 1'), 60, "Prometheus scraping the daemon", 0.5)
            assert up[0]["metric"]["instance"] == f"{host}:{api_port}"
            rows = wait_for(lambda: query('samantha_ingest_accepted_rows_total{table="samples"}'), 30, "a series", 0.5)
            assert float(rows[0]["value"][1]) > 0  # the host collector's samples, counted by the store
            # the steady-state loop keeps running under the scrape: its cycle count grows between scrapes
            wait_for(lambda: [x for x in query("increase(samantha_cycle_seconds_count[15s])") if float(x["value"][1]) > 0],
                     30, "cycles counted across scrapes", 0.5)
            info = query("samantha_build_info")
            assert info[0]["metric"]["version"]
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            log.close()
    time.sleep(0)  # nothing left running: both processes are reaped above


def test_grafana_dashboard_queries_only_exported_series() -> None:
    import json
    import re

    from samantha.api import metrics

    dash = json.loads((Path(__file__).resolve().parents[2] / "packaging/grafana/samantha.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    families = {m.name for m in metrics.METRICS.registry.collect()}
    known = families | {"samantha_ingest_accepted_rows", "samantha_ingest_rejected_rows", "samantha_ingest_shed_rows",
                        "samantha_cardinality_folds", "samantha_series", "samantha_ingest_buffer_rows",
                        "samantha_store_commits", "samantha_cube_up", "samantha_cube_slot_healthy",
                        "samantha_cube_slot_weight_percent", "samantha_cube_slot_bundle_info", "samantha_cube_safe_mode",
                        "samantha_actions", "samantha_audit_records", "samantha_seconds_since_sync"}
    for e in exprs:
        for name in re.findall(r"samantha_[a-z0-9_]+", e):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert base in known, f"{name} in {e!r} is not exported"
