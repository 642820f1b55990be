"""Router telemetry reaches a real ingest endpoint (`samantha telemetry serve` + DuckDB), shadow divergence included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from samantha.core.config import SamanthaConfig
from samantha.telemetry.store import TelemetryStore
from tests.conftest import free_port
from tests.twin.twinkit import start_twin, twin_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _serve_store(tmp_path: Path) -> tuple[subprocess.Popen, SamanthaConfig, str]:
    cfg_file = tmp_path / "store.yaml"
    cfg_file.write_text(f"data_dir: {tmp_path / 'store'}\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "samantha", "telemetry", "serve", "--port", str(port),
                             "--config", str(cfg_file)], env=os.environ.copy(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve did not start")
    return proc, SamanthaConfig(data_dir=str(tmp_path / "store")), f"http://127.0.0.1:{port}/v1/ingest/requests"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_shadow_divergence_reaches_the_store(tmp_path: Path) -> None:
    serve, store_cfg, url = _serve_store(tmp_path)
    try:
        for twin in start_twin(twin_config(tmp_path, ingest_url=url)):
            close = twin.bundle("close", seed=1)  # a retrained model: a little different
            twin.cube.load("close", request_id="l1")
            twin.cube.set_shadow(True, request_id="s1")
            twin.set_load(rps=150)
            time.sleep(2.5)
            biased = twin.bundle("biased", seed=1, version="3", output_bias=4.0)  # a wrong model
            twin.cube.load("biased", request_id="l2")
            time.sleep(2.5)
            twin.set_load(rps=0)
            time.sleep(0.5)
            tel = twin.router_stats()["telemetry"]
            assert tel["dropped"] == 0 and tel["sent"] > 500, tel
    finally:
        _stop(serve)
    with TelemetryStore.open(store_cfg) as store:
        rows = store.read_arrow(
            "SELECT bundle, shadow, slot, count(*) AS n, avg(divergence) AS div, avg(latency_ms) AS lat, "
            "avg(ok::INT) AS ok FROM requests GROUP BY ALL").to_pylist()
    by = {(r["bundle"], r["shadow"]): r for r in rows}
    assert by[(close.bundle_id, True)]["n"] > 150 and by[(biased.bundle_id, True)]["n"] > 150
    assert all(r["slot"] == "standby" for (b, sh), r in by.items() if sh)
    d_close, d_biased = by[(close.bundle_id, True)]["div"], by[(biased.bundle_id, True)]["div"]
    assert 0 < d_close < 0.05 and d_biased > max(0.1, 4 * d_close), (d_close, d_biased)
    active = [r for (b, sh), r in by.items() if not sh]
    assert active and all(r["slot"] == "active" and r["ok"] == 1.0 and r["div"] is None for r in active)


def test_shadow_latency_is_the_standbys_own_service_time_on_the_live_path(tmp_path: Path) -> None:
    """A mirrored answer is read late, so its latency is rebuilt: the standby's service time + the live path's
    overhead on the same request. A slow standby must still show every millisecond of its slowness."""
    serve, store_cfg, url = _serve_store(tmp_path)
    try:
        for twin in start_twin(twin_config(tmp_path, ingest_url=url)):
            twin.bundle("slow", seed=0, latency_ms=25.0)
            twin.cube.load("slow", request_id="l1")
            twin.cube.set_shadow(True, request_id="s1")
            twin.set_load(rps=100)
            time.sleep(2.5)
            twin.set_load(rps=0)
            time.sleep(0.5)
    finally:
        _stop(serve)
    with TelemetryStore.open(store_cfg) as store:
        rows = store.read_arrow("SELECT shadow, count(*) AS n, min(latency_ms) AS lo, median(latency_ms) AS p50 "
                                "FROM requests WHERE ok GROUP BY ALL").to_pylist()
    by = {r["shadow"]: r for r in rows}
    assert by[True]["n"] > 150 and by[False]["n"] > 150, rows
    assert by[True]["lo"] >= 24.0, rows  # the injected 25 ms is inside the service time (event-loop timers: ms grain)
    assert by[False]["p50"] < 25.0 <= by[True]["p50"], rows


def test_router_keeps_serving_and_bounds_its_buffer_when_the_ingest_is_down(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1/ingest/requests"
    for twin in start_twin(twin_config(tmp_path, ingest_url=dead, telemetry_buffer_max=200)):
        twin.set_load(rps=200)
        time.sleep(2.0)
        twin.set_load(rps=0)
        time.sleep(0.3)
        tel = twin.router_stats()["telemetry"]
        lg = twin.loadgen_stats()
        assert lg["ok"] > 300 and lg["failed"] == 0
        assert tel["sent"] == 0 and tel["buffered"] == 200 and tel["dropped"] >= lg["ok"] - 200 - 5
        assert tel["failed_posts"] >= 1 and "Connect" in tel["last_error"]


def test_input_feature_means_reach_the_store_and_follow_the_drift(tmp_path: Path) -> None:
    serve, store_cfg, url = _serve_store(tmp_path)
    try:
        for twin in start_twin(twin_config(tmp_path, ingest_url=url)):
            twin.set_load(rps=150)
            time.sleep(2.0)
            t_shift = time.time()
            twin.set_load(rps=150, shift=1.5)
            time.sleep(2.0)
            twin.set_load(rps=0)
            time.sleep(0.5)
            tel = twin.router_stats()["telemetry"]
            assert tel["input_samples_sent"] >= 8 * 10 and tel["input_samples_buffered"] == 0, tel
    finally:
        _stop(serve)
    with TelemetryStore.open(store_cfg) as store:
        rows = store.read_arrow(
            "SELECT s.labels->>'feature' AS feature, avg(v.value) FILTER (WHERE v.ts < ?) AS before, "
            "avg(v.value) FILTER (WHERE v.ts > ? + 0.3) AS after, count(*) AS n FROM samples v "
            "JOIN series s ON s.id = v.series_id WHERE s.metric = 'input_feature_mean' GROUP BY ALL",
            [t_shift, t_shift]).to_pylist()
    assert sorted(r["feature"] for r in rows) == [str(i) for i in range(8)]  # one series per feature, no more
    moved = [r["after"] - r["before"] for r in rows]  # the loadgen shifted every feature by 1.5
    assert all(0.7 < m < 2.3 for m in moved) and 1.2 < sum(moved) / len(moved) < 1.8, rows
